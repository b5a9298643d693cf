/**
 * `effect-scheduler-registry/tracing`: trace export over OpenTelemetry. Needs the optional peers
 * `@effect/opentelemetry`, `@opentelemetry/sdk-trace-base` and `@effect/platform-node`.
 *
 * @since 0.2.0
 */

/**
 * Trace export (`layerOtlp`, `layer`).
 *
 * @since 0.2.0
 * @category modules
 */
export * as Tracing from "./Tracing.js"
