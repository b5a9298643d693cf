/**
 * Resumes in the check phase of this turn of Node's event loop (`setImmediate`), after the I/O and the worker
 * messages that arrived in its poll phase were handled; an interruption cancels the wait.
 */
import { Effect } from "effect"

export const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})
