import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Fiber, Layer } from "effect"
import * as SchedulerRegistry from "../src/SchedulerRegistry.js"
import * as Tracing from "../src/tracing/Tracing.js"
import { idOf, messageOf } from "./fixtures/ids.js"
import { registryLayer } from "./fixtures/registry.js"

describe("Tracing", () => {
  it.scopedLive("find and schedule are children of the request's span; each server runs under a root span", () => {
    const exporter = new InMemorySpanExporter()
    const tracing = Tracing.layer({ spanProcessor: new SimpleSpanProcessor(exporter) })
    return Effect.gen(function* () {
      const scheduler = yield* Effect.gen(function* () {
        const scheduler = yield* SchedulerRegistry.find(idOf(90), true)
        yield* scheduler.schedule(messageOf(1))
        return scheduler
      }).pipe(Effect.withSpan("request"))
      yield* Fiber.interrupt(scheduler.fiber) // ends the server's span
      const spans = exporter.getFinishedSpans()
      const byName = (name: string) => spans.find((s) => s.name === name)
      const request = byName("request")
      const schedule = byName("Scheduler.schedule")
      const server = byName("Scheduler.server")
      expect(spans.map((s) => s.name).sort()).toEqual([
        "Scheduler.schedule",
        "Scheduler.server",
        "SchedulerRegistry.find",
        "request"
      ])
      expect(byName("SchedulerRegistry.find")?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId)
      expect(byName("SchedulerRegistry.find")?.attributes.genIfNotHosted).toBe(true)
      expect(schedule?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId)
      expect(schedule?.spanContext().traceId).toBe(request?.spanContext().traceId)
      expect(schedule?.attributes.mode).toBe("local_confirmation")
      // the server was started inside the request, yet its span is a root in a trace of its own
      expect(server?.parentSpanContext).toBeUndefined()
      expect(server?.spanContext().traceId).not.toBe(request?.spanContext().traceId)
    }).pipe(Effect.provide(registryLayer().pipe(Layer.provideMerge(tracing))))
  })
})
