/**
 * Whether this runner's `AssignmentStore` still answers, for the cluster registry's request path: one probe at
 * a time (`latest` of a process id no process has), every `timeoutMs / 3`, never interrupted (an interrupted
 * query would leave its pooled client busy). The store is **lost** once no probe has completed for `timeoutMs`
 * (the shard-lock lease): at most `timeoutMs` after it stopped answering, since the last good probe came before
 * that. The next completed probe makes it answer again.
 *
 * `guard(effect, onLost)` runs `effect` unless the store is lost (then `onLost` at once, `effect` not run), and
 * ends it with `onLost` if the store is lost while it runs; `effect` is left behind (disconnected), not waited
 * for, as a call stuck on a hung connection would be.
 */
import { Clock, Effect, type Scope } from "effect"
import type { AssignmentStore } from "../../AssignmentStore.js"
import type { ProcessId } from "../../ProcessId.js"

/** A process id no process has (43 characters, not base64url), read by the probe. */
const PROBE = "~store-probe~store-probe~store-probe~store-" as ProcessId

export interface StoreWatch {
  /** The lease in ms, for messages. */
  readonly timeoutMs: number
  readonly lost: Effect.Effect<boolean>
  readonly guard: <A, E, E2>(effect: Effect.Effect<A, E>, onLost: () => E2) => Effect.Effect<A, E | E2>
}

export const make = (
  store: AssignmentStore["Type"],
  timeoutMs: number
): Effect.Effect<StoreWatch, never, Scope.Scope> =>
  Effect.gen(function* () {
    let lastOk = yield* Clock.currentTimeMillis
    const probe = store.latest(PROBE).pipe(
      Effect.zipRight(Clock.currentTimeMillis),
      Effect.tap((now) =>
        Effect.sync(() => {
          lastOk = now
        })
      ),
      Effect.ignore
    )
    yield* Effect.forkScoped(
      Effect.forever(Effect.zipRight(probe, Effect.sleep(Math.max(1, Math.floor(timeoutMs / 3)))))
    )
    const lost = Effect.map(Clock.currentTimeMillis, (now) => now - lastOk >= timeoutMs)
    /** Completes once the store is lost. */
    const whenLost: Effect.Effect<void> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const due = lastOk + timeoutMs - now
      return due <= 0
        ? Effect.void
        : Effect.zipRight(
            Effect.sleep(due),
            Effect.suspend(() => whenLost)
          )
    })
    const guard = <A, E, E2>(effect: Effect.Effect<A, E>, onLost: () => E2): Effect.Effect<A, E | E2> =>
      Effect.flatMap(lost, (isLost) =>
        isLost
          ? Effect.fail(onLost())
          : Effect.raceFirst(
              Effect.disconnect(effect),
              Effect.zipRight(
                whenLost,
                Effect.failSync(() => onLost())
              )
            )
      )
    return { timeoutMs, lost, guard }
  })
