import { Effect } from "effect"

/** Effect's built-in tracer, whose spans go nowhere (the default when no tracing layer is provided). */
export const nativeTracer = Effect.runSync(Effect.tracer)

/** Whether a real tracer (e.g. `Tracing.layer`) is installed in the current context. */
export const isTracing: Effect.Effect<boolean> = Effect.map(Effect.tracer, (tracer) => tracer !== nativeTracer)
