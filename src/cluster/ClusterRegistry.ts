/**
 * `SchedulerRegistry` over an `@effect/cluster` cluster: the same interface as `SchedulerRegistry.layer`, with
 * each process's scheduler run as a `SchedulerEntity` on whichever runner holds the process's shard.
 *
 * The distribution is `@effect/cluster`'s: entity ids (process ids) hash to shards, shards are spread over
 * the registered runners, a runner runs a shard's entities only while it holds the shard's lock in the
 * `RunnerStorage`, and runners forward messages to each other over sockets (`NodeClusterSocket`). What this
 * module adds is the registry's face on it:
 *
 * - `find(p, true)` activates `p`'s entity wherever the cluster places it (an `Info` call: the server there
 *   recovers its slot and chain from the store first) and returns a handle whose `schedule` and `info` go
 *   through the entity client, so they reach the one live server of `p` in the cluster;
 * - `find(p)` only looks, and the cluster has no "is it running anywhere" call: it answers from what this
 *   runner knows (a handle it gave out before, an entity live here) and from the store (a process with at
 *   least one assignment), else `NotFound`;
 * - `getProcesses()` lists the entities live on this runner; `listProcesses()` every process in the store;
 * - `events` / `subscribe` report this runner's entities (`HostedSchedulers`).
 *
 * Every runner must use the same wallet (the SU's identity), the same `AssignmentStore` and the same
 * scheduler options: a process's server may start on any of them.
 *
 * Size: about 400 lines, of which about 226 are code; the rest is the docstrings and `@example`s every
 * export carries. The code alone stays under 300 lines, so the module is kept whole.
 *
 * @since 0.1.0
 */
import type { Sharding } from "@effect/cluster"
import { Cause, Context, Duration, Effect, Either, Layer, Option, type Scope } from "effect"
import type { Message } from "../Assignment.js"
import * as AssignmentStore from "../AssignmentStore.js"
import {
  type FindError,
  MailboxFull,
  NotFound,
  OutcomeUnknown,
  type ScheduleError,
  SchedulerStopped,
  SchedulerTimeout,
  SchedulingDisabled,
  StoreConflict,
  StoreError
} from "../errors.js"
import { admit } from "../internal/admit.js"
import * as Hosting from "../internal/hosting.js"
import type { ProcessId } from "../ProcessId.js"
import * as Scheduler from "../Scheduler.js"
import { type FindOptions, SchedulerRegistry } from "../SchedulerRegistry.js"
import { Wallet } from "../Wallet.js"
import { scheduleErrorClasses } from "./internal/protocol.js"
import * as StoreWatch from "./internal/store-watch.js"
import * as SchedulerEntity from "./SchedulerEntity.js"

/**
 * Options of `layerCluster`: the entity's `SchedulerEntity.Options` (`Scheduler.Options` of every server:
 * `mode`, `timeoutMs` [10,000 ms], `mailboxCapacity` [4,096], `blockHeight`, `signer`, `upload`;
 * `idleTimeToLiveMs`, the entity passivation in ms; `eventsCapacity`). Give every runner the same values.
 *
 * @since 0.1.0
 * @category options
 */
export interface ClusterOptions extends SchedulerEntity.Options {
  /**
   * In ms: once this runner's `AssignmentStore` has not answered a probe for this long (a hung connection), it
   * answers every call at once instead of letting it wait on the store or on routing it can no longer do:
   * `SchedulerStopped` (503, retry; nothing was sent) for a new call, `OutcomeUnknown` (504) for a `schedule`
   * already sent; and the store `layerCluster` gives (the HTTP API's reads) fails its reads with a retryable
   * `StoreError` (503). Give the shard-lock lease (`layerClusterNode` does): the runner has given its shards up
   * by then. Default: off (calls wait for their deadline).
   *
   * @since 0.3.0
   */
  readonly storeTimeoutMs?: number | undefined
}

/** The wait before a lost entity call is sent again, in ms (the cluster's own `sendRetryInterval`). */
const RETRY_MS = 100

/** How long a call past its deadline looks for its message in the store, in ms. */
const LOOKUP_MS = 1_000

/**
 * Handles kept for `find`: the same object for the same process, and no store read for a process already known
 * (assignments are never deleted, so a known process stays known). Handles hold no server state.
 */
const HANDLE_CACHE = 10_000

/**
 * Builds the cluster registry in the current scope, over the ambient `Sharding` (with the scheduler entity
 * registered: `SchedulerEntity.layer`), `HostedSchedulers`, `Wallet` and `AssignmentStore`.
 *
 * `find(p)` answers from the handles it already holds (processes activated or found before: a known process
 * stays known), the entities live on this runner, and the store (`latest(p)`: a process with an assignment);
 * else `NotFound`, or `StoreError` if the store cannot be read. `find(p, true)` sends `Info` to the entity.
 *
 * Handle calls and their errors:
 * - `schedule(message, { timeoutMs })`: `Schedule` on the entity; the deadline (ms, default `timeoutMs`,
 *   10,000) covers the whole call, the wait for a failover included (the cluster holds a call until a runner
 *   has the shard). A call the cluster lost (the entity stopped before it replied, or the runner it went to
 *   died) is sent again every 100 ms; if a re-sent call finds the message already stored, the stored
 *   assignment is the reply. Past the deadline the message is looked up in the store (for at most 1,000 ms):
 *   its stored assignment is the reply, else `OutcomeUnknown` (the call may still be written on its runner; a
 *   retry is idempotent), never "did not assign". Fails with the server's `ScheduleError`s,
 *   `MailboxFull` when the entity's mailbox (`mailboxCapacity`) is full, `SchedulerStopped` on the cluster's
 *   other errors.
 * - `info`: `Info` on the entity (it starts the entity if needed); `SchedulerStopped` on any failure or after
 *   `timeoutMs`.
 * - `fiber`: the server fiber when the entity is live on this runner; it throws for a process hosted
 *   elsewhere, which has no fiber here.
 *
 * With `storeTimeoutMs` (ms), once the store has not answered a probe for that long: every new call (`find`,
 * `host`, `schedule`, `spawn`, `info`) fails at once with `SchedulerStopped`, nothing sent; a `schedule` in
 * flight with `OutcomeUnknown`; `info` and activations in flight with `SchedulerStopped`; `listProcesses` with a
 * retryable `StoreError`. (`makeCluster` gives the registry only: `layerCluster` also gives the bounded store
 * the HTTP API should read.)
 *
 * Source: `Sharding.makeClient` / `Entity.client` of `@effect/cluster`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { ClusterNode, ClusterRegistry, SchedulerEntity } from "effect-scheduler-registry/cluster"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * const options = { url: "postgres://127.0.0.1:5432/postgres", schema: "su" }
 * const Base = Layer.mergeAll(
 *   ClusterNode.layerSharding().pipe(
 *     Layer.provide(ClusterNode.layerRunnerStorage()),
 *     Layer.provide(PgStore.layerClient(options))
 *   ),
 *   PgStore.layer(options),
 *   Wallet.layerFile("./data/wallet.json")
 * )
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* ClusterRegistry.makeCluster()
 *   // served by whichever runner owns the process's shard
 *   const scheduler = yield* registry.find("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true)
 *   return yield* scheduler.info
 * }).pipe(Effect.scoped, Effect.provide(SchedulerEntity.layer().pipe(Layer.provideMerge(Base))))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCluster = (
  options: ClusterOptions = {}
): Effect.Effect<
  SchedulerRegistry["Type"],
  never,
  Sharding.Sharding | SchedulerEntity.HostedSchedulers | Wallet | AssignmentStore.AssignmentStore | Scope.Scope
> => Effect.map(build(options), ({ registry }) => registry)

/** The registry and the store bounded by the same store watch (`reads`, for the runner's HTTP API). */
const build = (
  options: ClusterOptions
): Effect.Effect<
  { readonly registry: SchedulerRegistry["Type"]; readonly reads: AssignmentStore.AssignmentStore["Type"] },
  never,
  Sharding.Sharding | SchedulerEntity.HostedSchedulers | Wallet | AssignmentStore.AssignmentStore | Scope.Scope
> =>
  Effect.gen(function* () {
    const wallet = yield* Wallet
    const store = yield* AssignmentStore.AssignmentStore
    const hosted = yield* SchedulerEntity.HostedSchedulers
    const clientFor = yield* SchedulerEntity.SchedulerEntity.client
    const mode: Scheduler.Mode = options.mode ?? "local_confirmation"
    const defaultTimeout = options.timeoutMs ?? Scheduler.DEFAULT_TIMEOUT_MS
    const capacity = options.mailboxCapacity ?? Scheduler.DEFAULT_MAILBOX_CAPACITY
    const handles = new Map<string, Scheduler.Scheduler>()
    // the request path bounded by the store watch (`storeTimeoutMs`)
    const {
      reads,
      call: bounded,
      schedule: boundedSchedule,
      stopLost,
      unlost
    } = yield* StoreWatch.bound(store, options.storeTimeoutMs)
    let closed = false
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
      })
    )

    const isScheduleError = (error: unknown): error is ScheduleError =>
      scheduleErrorClasses.some((type) => error instanceof type)
    const isInfoError = (error: unknown): error is SchedulerStopped | StoreError =>
      error instanceof SchedulerStopped || error instanceof StoreError

    /**
     * Runs an entity call until it gets an answer: a call the cluster lost (the entity stopped before it
     * replied, as when its runner force-releases its shards; or a defect of the transport, as when the runner
     * it was sent to dies) is sent again after `RETRY_MS`. The caller's deadline bounds the whole. The server's
     * own errors (`own`) pass through; the cluster's `MailboxFull` becomes ours; its other errors
     * (`AlreadyProcessingMessage`, `PersistenceError`) become `SchedulerStopped`. `call(true)` is a re-send.
     */
    const untilAnswered = <A, E>(
      processId: ProcessId,
      own: (error: unknown) => error is E,
      call: (resent: boolean) => Effect.Effect<A, unknown>
    ): Effect.Effect<A, E | MailboxFull | SchedulerStopped> => {
      const attempt = (resent: boolean): Effect.Effect<A, E | MailboxFull | SchedulerStopped> =>
        Effect.catchAllCause(call(resent), (cause) => {
          const failure = Cause.failureOption(cause)
          if (Option.isSome(failure)) {
            const error = failure.value as { readonly _tag?: string; readonly message?: string }
            if (own(error)) return Effect.fail(error)
            if (error._tag === "MailboxFull") return Effect.fail(new MailboxFull({ processId, capacity }))
            return Effect.fail(new SchedulerStopped({ processId, reason: `cluster: ${error.message ?? error._tag}` }))
          }
          return Effect.logDebug("entity call lost in the cluster, sending it again", cause).pipe(
            Effect.annotateLogs({ processId }),
            Effect.zipRight(Effect.sleep(RETRY_MS)),
            Effect.zipRight(Effect.suspend(() => attempt(true)))
          )
        })
      return attempt(false)
    }

    /**
     * The answer to a call whose deadline passed here: the stored assignment if the message is stored (looked up
     * for at most `LOOKUP_MS`), else `OutcomeUnknown`, as the call may still be written on its runner.
     */
    const afterDeadline = (processId: ProcessId, message: Message, timeoutMs: number) =>
      store.getMessage(message.id, processId).pipe(
        // a lookup on a hung connection is left behind, not waited for
        Effect.disconnect,
        Effect.timeoutOption(Duration.millis(LOOKUP_MS)),
        Effect.option,
        Effect.flatMap((found) =>
          Option.isSome(found) && Option.isSome(found.value) && Option.isSome(found.value.value)
            ? Effect.succeed(found.value.value.value.assignment)
            : Effect.fail(new OutcomeUnknown({ processId, messageId: message.id, timeoutMs }))
        )
      )

    const handleOf = (processId: ProcessId): Scheduler.Scheduler => {
      const cached = handles.get(processId)
      if (cached !== undefined) return cached
      const client = clientFor(processId)
      const info = untilAnswered(processId, isInfoError, () => client.Info())
      const handle: Scheduler.Scheduler = {
        processId,
        address: wallet.address,
        mode,
        schedule: (message, callOptions) => {
          const timeoutMs = callOptions?.timeoutMs ?? defaultTimeout
          return untilAnswered(processId, isScheduleError, (resent) =>
            resent
              ? // the lost call may have been assigned: then the message is in the store, and that is the answer
                Effect.catchIf(
                  client.Schedule({ message, timeoutMs }),
                  (e): e is StoreConflict => e instanceof StoreConflict && e.reason === "message already scheduled",
                  (conflict) =>
                    unlost(
                      Effect.flatMap(reads.getMessage(message.id, processId), (found) =>
                        Option.isSome(found) ? Effect.succeed(found.value.assignment) : Effect.fail(conflict)
                      )
                    )
                )
              : client.Schedule({ message, timeoutMs })
          ).pipe(
            Effect.timeoutFail({
              duration: Duration.millis(timeoutMs),
              onTimeout: () => new SchedulerTimeout({ processId, timeoutMs })
            }),
            // a store lost before the call: nothing sent (503); lost during it: may be written (504)
            (call) => boundedSchedule(call, processId, message.id),
            // the call may be in a write on the process's runner: never "did not assign" for what may be stored
            Effect.catchTag("SchedulerTimeout", () => afterDeadline(processId, message, timeoutMs)),
            Effect.withSpan("ClusterScheduler.schedule", { attributes: { mode } })
          )
        },
        info: info.pipe(
          Effect.catchIf(
            (e): e is StoreError | MailboxFull => e._tag !== "SchedulerStopped",
            (e) => Effect.fail(new SchedulerStopped({ processId, reason: e.message }))
          ),
          Effect.timeoutFail({
            duration: Duration.millis(defaultTimeout),
            onTimeout: () =>
              new SchedulerStopped({ processId, reason: `no answer from its runner within ${defaultTimeout} ms` })
          }),
          (call) => bounded(call, processId)
        ),
        get fiber() {
          const local = Option.flatMap(hosted.get(processId), (h) => h.fiber())
          if (Option.isNone(local)) {
            throw new Error(`the scheduler of ${processId} does not run on this runner: it has no fiber here`)
          }
          return local.value
        }
      }
      return handle
    }

    /** Keeps a handle of a process known to the cluster (activated, or in the store), which stays known. */
    const remember = (handle: Scheduler.Scheduler): Scheduler.Scheduler => {
      if (!handles.has(handle.processId)) {
        if (handles.size >= HANDLE_CACHE) handles.delete(handles.keys().next().value as string)
        handles.set(handle.processId, handle)
      }
      return handle
    }

    /** Starts (or finds) the entity wherever the cluster places it: its server has recovered when this returns. */
    const activate = (handle: Scheduler.Scheduler): Effect.Effect<Scheduler.Scheduler, FindError> =>
      untilAnswered(handle.processId, isInfoError, () => clientFor(handle.processId).Info()).pipe(
        Effect.catchTag("MailboxFull", (e) =>
          Effect.fail(new SchedulerStopped({ processId: handle.processId, reason: e.message }))
        ),
        Effect.timeoutFail({
          duration: Duration.millis(defaultTimeout),
          onTimeout: () =>
            new SchedulerStopped({
              processId: handle.processId,
              reason: `not started within ${defaultTimeout} ms (no runner holds its shard?)`
            })
        }),
        (call) => bounded(call, handle.processId),
        Effect.as(handle)
      )

    const find = (
      input: string | Uint8Array,
      genIfNotHosted?: boolean | undefined,
      findOptions?: FindOptions | undefined
    ): Effect.Effect<Scheduler.Scheduler, FindError> =>
      Effect.suspend(() => {
        const admitted = admit(input, closed)
        if (Either.isLeft(admitted)) return Effect.fail(admitted.left)
        const processId = admitted.right
        const otherIdentity = findOptions?.wallet !== undefined && findOptions.wallet.address !== wallet.address
        if (genIfNotHosted !== true) {
          if (otherIdentity) return Effect.fail(new NotFound({ processId }))
          const known = handles.get(processId)
          if (known !== undefined) return Effect.succeed(known)
          if (Option.isSome(hosted.get(processId))) return Effect.succeed(remember(handleOf(processId)))
          return stopLost(
            Effect.flatMap(reads.latest(processId), (latest) =>
              Option.isSome(latest)
                ? Effect.succeed(remember(handleOf(processId)))
                : Effect.fail(new NotFound({ processId }))
            )
          )
        }
        // the cluster hosts every process under the node's one identity; and `disabled` starts nothing
        if (otherIdentity || (findOptions?.mode ?? mode) === "disabled") {
          return Effect.fail(new SchedulingDisabled({ processId }))
        }
        return Effect.map(activate(handleOf(processId)), remember)
      })

    const walletFor = (address: string) =>
      Effect.succeed(address === wallet.address ? Option.some(wallet) : Option.none<Wallet["Type"]>())
    const hosting = yield* Hosting.make({ find, walletFor, getWallet: () => Effect.succeed(wallet) }, reads, undefined)

    const registry = SchedulerRegistry.of({
      host: (processId) => stopLost(hosting.host(processId)),
      spawn: (process, scheduler) => unlost(hosting.spawn(process, scheduler)),
      schedule: (processId, message) => unlost(hosting.schedule(processId, message)),
      find,
      getWallet: () => Effect.succeed(wallet),
      walletFor,
      getWallets: () => Effect.succeed([wallet]),
      getProcesses: () => Effect.sync(() => hosted.entries().map((h) => h.processId)),
      listProcesses: () => reads.listProcesses(),
      events: hosted.events,
      subscribe: hosted.subscribe
    })
    return { registry, reads }
  })

/**
 * The `SchedulerRegistry` over the cluster, with the scheduler entity registered on this runner
 * (`SchedulerEntity.layer(options)`). Needs this runner's `Sharding` (from `layerSharding`, `layerClusterNode`,
 * or `@effect/cluster`'s `SingleRunner` / `TestRunner`), the node `Wallet` and the shared `AssignmentStore`.
 *
 * Also gives the `AssignmentStore` (since 0.3.0) as the runner's HTTP API should read it: the store it was given,
 * with every read bounded by the registry's store watch (`storeTimeoutMs`). Once this runner's store has not
 * answered for `storeTimeoutMs`, a read fails at once (or, in flight, then) with a `StoreError` whose
 * `retryable` is `true` (HTTP 503, "retry, another node may answer") instead of waiting on the hung connection.
 * Without `storeTimeoutMs` it is the given store's reads, unbounded. Writes (`append`, `claim`) and `outbox` are
 * the given store's. Over the output of a layer that also gives a store (`Layer.provideMerge`), this one wins.
 *
 * Differences from `SchedulerRegistry.layer` (see docs/scaling.md):
 * - `find(p)` answers from this runner and the store (a process with an assignment), not from other runners;
 * - `getProcesses()` lists this runner's entities; `events` are this runner's;
 * - one identity: `find(p, true, { wallet })` with another wallet fails with `SchedulingDisabled`, and
 *   per-call server options are ignored (servers take the layer's options on whichever runner they start);
 * - passivation is the cluster's (`idleTimeToLiveMs` becomes the entity's `maxIdleTime`); restarts after a
 *   failure are made by the next request, not bounded by a `RestartPolicy`.
 *
 * Source: `Entity.toLayer`, `Sharding.makeClient` of `@effect/cluster`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { ClusterNode, ClusterRegistry } from "effect-scheduler-registry/cluster"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * const options = { url: "postgres://127.0.0.1:5432/postgres", schema: "su" }
 * const ShardingLive = ClusterNode.layerSharding({ runnerHost: "10.0.0.5" }).pipe(
 *   Layer.provide(ClusterNode.layerRunnerStorage()),
 *   Layer.provide(PgStore.layerClient(options))
 * )
 *
 * const RegistryLive = ClusterRegistry.layerCluster().pipe(
 *   Layer.provide(ShardingLive),
 *   Layer.provideMerge(PgStore.layer(options)),
 *   Layer.provideMerge(Wallet.layerFile("./data/wallet.json"))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (
  options: ClusterOptions = {}
): Layer.Layer<
  SchedulerRegistry | AssignmentStore.AssignmentStore,
  never,
  Sharding.Sharding | Wallet | AssignmentStore.AssignmentStore
> =>
  Layer.scopedContext(
    Effect.map(build(options), ({ reads, registry }) =>
      Context.make(SchedulerRegistry, registry).pipe(Context.add(AssignmentStore.AssignmentStore, reads))
    )
  ).pipe(Layer.provide(SchedulerEntity.layer(options)))
