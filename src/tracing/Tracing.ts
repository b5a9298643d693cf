/**
 * Optional trace export with `@effect/opentelemetry`. The library's spans (`Scheduler.schedule`, the root span
 * `Scheduler.server` of each server, `SchedulerRegistry.find`, the HTTP server's spans) go nowhere until one of
 * these layers is provided, so tracing costs only span bookkeeping when it is off.
 *
 * Provide the layer *under* the registry (`SchedulerRegistry.layer().pipe(Layer.provide(Tracing.layer…))`) so
 * the servers, which run with the registry's captured context, export their spans too.
 *
 * @since 0.1.0
 */

import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import type { Resource } from "@effect/opentelemetry/Resource"
import { NodeHttpClient } from "@effect/platform-node"
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Layer } from "effect"

/**
 * Default OpenTelemetry service name.
 *
 * @since 0.1.0
 * @category constants
 */
export const SERVICE_NAME = "effect-scheduler-registry"

/**
 * Exports spans through an OpenTelemetry SDK `SpanProcessor` (for example a `BatchSpanProcessor` around any
 * exporter, or a `SimpleSpanProcessor(new InMemorySpanExporter())` in tests). `serviceName` defaults to
 * `effect-scheduler-registry`.
 *
 * @example
 * ```ts
 * import { BatchSpanProcessor, ConsoleSpanExporter } from "@opentelemetry/sdk-trace-base"
 * import { Effect } from "effect"
 * import { Tracing } from "effect-scheduler-registry/tracing"
 *
 * const TracingLive = Tracing.layer({ spanProcessor: new BatchSpanProcessor(new ConsoleSpanExporter()) })
 * const program = Effect.log("traced").pipe(Effect.withSpan("example"), Effect.provide(TracingLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: {
  readonly spanProcessor: SpanProcessor
  readonly serviceName?: string | undefined
}): Layer.Layer<Resource> =>
  NodeSdk.layer(() => ({
    resource: { serviceName: options.serviceName ?? SERVICE_NAME },
    spanProcessor: options.spanProcessor
  }))

/**
 * Exports spans as OTLP/HTTP JSON to `url` (a collector's `/v1/traces`, e.g. `http://127.0.0.1:4318/v1/traces`),
 * batched every `exportIntervalMs` ms [5,000], without the OpenTelemetry SDK. Export failures are logged by the
 * exporter and never fail the node.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Tracing } from "effect-scheduler-registry/tracing"
 *
 * const TracingLive = Tracing.layerOtlp({ url: "http://127.0.0.1:4318/v1/traces", exportIntervalMs: 1_000 })
 * const program = Effect.log("traced").pipe(Effect.withSpan("example"), Effect.provide(TracingLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerOtlp = (options: {
  readonly url: string
  readonly serviceName?: string | undefined
  readonly exportIntervalMs?: number | undefined
}): Layer.Layer<never> =>
  OtlpTracer.layer({
    url: options.url,
    resource: { serviceName: options.serviceName ?? SERVICE_NAME },
    exportInterval: options.exportIntervalMs ?? 5_000
  }).pipe(Layer.provide(Layer.mergeAll(NodeHttpClient.layerUndici, OtlpSerialization.layerJson)))
