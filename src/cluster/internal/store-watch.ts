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
 *
 * `bound(store, timeoutMs)` applies it to the cluster registry's request path (nothing bounded without a
 * `timeoutMs`): its store reads, its entity calls, and the mapping of a lost read to the caller's error. Its
 * `reads` are also the store the runner's HTTP API reads (`ClusterRegistry.layerCluster` gives them as the
 * `AssignmentStore`): a lost read fails with a retryable `StoreError` (`retryable: true`, HTTP 503).
 */
import { Clock, Effect, type Scope } from "effect"
import type { AssignmentStore } from "../../AssignmentStore.js"
import { OutcomeUnknown, SchedulerStopped, StoreError } from "../../errors.js"
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

/** The cluster registry's request path bounded by a store watch (see the module doc). */
export interface Bounded {
  /**
   * The store with every read (`latest`, `range`, `page`, `getMessage`, `getProcess`, `listProcesses`,
   * `maxBlockHeight`) failing with a lost-read `StoreError` (`retryable: true`) once the store is lost, and
   * ended with it if the store is lost while it runs; `append`, `claim` and `outbox` as they are.
   */
  readonly reads: AssignmentStore["Type"]
  /** An entity call that writes nothing: `SchedulerStopped` once the store is lost. */
  readonly call: <A, E>(effect: Effect.Effect<A, E>, processId: string) => Effect.Effect<A, E | SchedulerStopped>
  /**
   * A `schedule` call: not sent if the store is lost (`SchedulerStopped`); `OutcomeUnknown` if it is lost while
   * the call runs (it may be written; no lookup, the store is what does not answer).
   */
  readonly schedule: <A, E>(
    effect: Effect.Effect<A, E>,
    processId: string,
    messageId: string
  ) => Effect.Effect<A, E | SchedulerStopped | OutcomeUnknown>
  /** A lost read of `reads` as `SchedulerStopped` (503: nothing was written). */
  readonly stopLost: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | SchedulerStopped>
  /** A lost read as `OutcomeUnknown` if it read a message found stored, else `SchedulerStopped`. */
  readonly unlost: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | SchedulerStopped | OutcomeUnknown>
}

export const bound = (
  store: AssignmentStore["Type"],
  timeoutMs: number | undefined
): Effect.Effect<Bounded, never, Scope.Scope> =>
  Effect.gen(function* () {
    const watch = timeoutMs === undefined ? undefined : yield* make(store, timeoutMs)
    const reason = `this runner's store has not answered for ${timeoutMs} ms; retry, another node may answer`
    const stopped = (processId: string) => () => new SchedulerStopped({ processId, reason })
    const guard = <A, E, E2>(effect: Effect.Effect<A, E>, onLost: () => E2): Effect.Effect<A, E | E2> =>
      watch === undefined ? effect : watch.guard(effect, onLost)
    const lostReads = new WeakMap<StoreError, { readonly processId: string; readonly messageId?: string }>()
    const lostRead = (operation: string, processId: string, messageId?: string) => () => {
      const error = new StoreError({ operation, reason, retryable: true })
      lostReads.set(error, messageId === undefined ? { processId } : { processId, messageId })
      return error
    }
    const isLostRead = (e: unknown): boolean => e instanceof StoreError && lostReads.has(e)
    const readOf = (e: unknown) => lostReads.get(e as StoreError)!
    return {
      reads: {
        ...store,
        latest: (processId) => guard(store.latest(processId), lostRead("latest", processId)),
        range: (processId, query) => guard(store.range(processId, query), lostRead("range", processId)),
        page: (processId, query) => guard(store.page(processId, query), lostRead("page", processId)),
        getProcess: (processId) => guard(store.getProcess(processId), lostRead("getProcess", processId)),
        getMessage: (messageId, processId) =>
          guard(store.getMessage(messageId, processId), lostRead("getMessage", processId ?? "", messageId)),
        listProcesses: () => guard(store.listProcesses(), lostRead("listProcesses", "")),
        maxBlockHeight: () => guard(store.maxBlockHeight(), lostRead("maxBlockHeight", ""))
      },
      call: (effect, processId) => guard(effect, stopped(processId)),
      schedule: <A, E>(effect: Effect.Effect<A, E>, processId: string, messageId: string) =>
        watch === undefined
          ? effect
          : Effect.flatMap(
              watch.lost,
              (isLost): Effect.Effect<A, E | SchedulerStopped | OutcomeUnknown> =>
                isLost
                  ? Effect.fail(stopped(processId)())
                  : watch.guard(effect, () => new OutcomeUnknown({ processId, messageId, timeoutMs: watch.timeoutMs }))
            ),
      stopLost: (effect) => Effect.catchIf(effect, isLostRead, (e) => Effect.fail(stopped(readOf(e).processId)())),
      unlost: (effect) =>
        Effect.catchIf(effect, isLostRead, (e) => {
          const { processId, messageId } = readOf(e)
          return Effect.fail(
            messageId === undefined
              ? stopped(processId)()
              : new OutcomeUnknown({ processId, messageId, timeoutMs: timeoutMs ?? 0 })
          )
        })
    }
  })
