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
 * @since 0.1.0
 */
import {
  MessageStorage,
  RunnerAddress,
  type RunnerStorage,
  type Sharding,
  ShardingConfig,
  SqlRunnerStorage
} from "@effect/cluster"
import type { SocketServer } from "@effect/platform"
import { NodeClusterSocket } from "@effect/platform-node"
import type { SqlClient } from "@effect/sql"
import { Cause, type ConfigError, Duration, Effect, Either, Layer, Option, Schedule, type Scope } from "effect"
import * as AssignmentStore from "../AssignmentStore.js"
import {
  type FindError,
  MailboxFull,
  NotFound,
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
import * as PgStore from "../pg/PgStore.js"
import * as Scheduler from "../Scheduler.js"
import { type FindOptions, SchedulerRegistry } from "../SchedulerRegistry.js"
import * as SqlStore from "../sql/SqlStore.js"
import { Wallet } from "../Wallet.js"
import { scheduleErrorClasses } from "./internal/protocol.js"
import * as SchedulerEntity from "./SchedulerEntity.js"

/**
 * Options of `layerCluster`: the entity's `SchedulerEntity.Options` (`Scheduler.Options` of every server:
 * `mode`, `timeoutMs` [10,000 ms], `mailboxCapacity` [4,096], `blockHeight`, `signer`, `upload`;
 * `idleTimeToLiveMs`, the entity passivation in ms; `eventsCapacity`). Give every runner the same values.
 *
 * @since 0.1.0
 * @category options
 */
export interface ClusterOptions extends SchedulerEntity.Options {}

/** The wait before a lost entity call is sent again, in ms (the cluster's own `sendRetryInterval`). */
const RETRY_MS = 100

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
 *   assignment is the reply. Fails with the server's `ScheduleError`s, `SchedulerTimeout` past the deadline,
 *   `MailboxFull` when the entity's mailbox (`mailboxCapacity`) is full, `SchedulerStopped` on the cluster's
 *   other errors.
 * - `info`: `Info` on the entity (it starts the entity if needed); `SchedulerStopped` on any failure or after
 *   `timeoutMs`.
 * - `fiber`: the server fiber when the entity is live on this runner; it throws for a process hosted
 *   elsewhere, which has no fiber here.
 *
 * Source: `Sharding.makeClient` / `Entity.client` of `@effect/cluster`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { ClusterRegistry, SchedulerEntity } from "effect-scheduler-registry/cluster"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * const options = { url: "postgres://127.0.0.1:5432/postgres", schema: "su" }
 * const Base = Layer.mergeAll(
 *   ClusterRegistry.layerSharding().pipe(
 *     Layer.provide(ClusterRegistry.layerRunnerStorage()),
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
                    Effect.flatMap(store.getMessage(message.id, processId), (found) =>
                      Option.isSome(found) ? Effect.succeed(found.value.assignment) : Effect.fail(conflict)
                    )
                )
              : client.Schedule({ message, timeoutMs })
          ).pipe(
            Effect.timeoutFail({
              duration: Duration.millis(timeoutMs),
              onTimeout: () => new SchedulerTimeout({ processId, timeoutMs })
            }),
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
          })
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
          return Effect.flatMap(store.latest(processId), (latest) =>
            Option.isSome(latest)
              ? Effect.succeed(remember(handleOf(processId)))
              : Effect.fail(new NotFound({ processId }))
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
    const hosting = yield* Hosting.make({ find, walletFor, getWallet: () => Effect.succeed(wallet) }, store, undefined)

    return SchedulerRegistry.of({
      ...hosting,
      find,
      getWallet: () => Effect.succeed(wallet),
      walletFor,
      getWallets: () => Effect.succeed([wallet]),
      getProcesses: () => Effect.sync(() => hosted.entries().map((h) => h.processId)),
      listProcesses: () => store.listProcesses(),
      events: hosted.events,
      subscribe: hosted.subscribe
    })
  })

/**
 * The `SchedulerRegistry` over the cluster, with the scheduler entity registered on this runner
 * (`SchedulerEntity.layer(options)`). Needs this runner's `Sharding` (from `layerSharding`, `layerClusterNode`,
 * or `@effect/cluster`'s `SingleRunner` / `TestRunner`), the node `Wallet` and the shared `AssignmentStore`.
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
 * import { ClusterRegistry } from "effect-scheduler-registry/cluster"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * const options = { url: "postgres://127.0.0.1:5432/postgres", schema: "su" }
 * const ShardingLive = ClusterRegistry.layerSharding({ runnerHost: "10.0.0.5" }).pipe(
 *   Layer.provide(ClusterRegistry.layerRunnerStorage()),
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
): Layer.Layer<SchedulerRegistry, never, Sharding.Sharding | Wallet | AssignmentStore.AssignmentStore> =>
  Layer.scoped(SchedulerRegistry, makeCluster(options)).pipe(Layer.provide(SchedulerEntity.layer(options)))

/**
 * How this runner joins the cluster. Durations in ms. Every runner must agree on `shardsPerGroup` and the
 * shard-lock settings.
 *
 * - `runnerHost` ["localhost"] / `runnerPort` [34431]: where other runners reach this one (its
 *   `RunnerAddress`); `listenHost` / `listenPort` [the same]: what it binds, if different (containers).
 * - `clientOnly` [false]: join without hosting entities (a pure router: it sends to the runners that host).
 * - `shardsPerGroup` [300]: shards of the one shard group; processes hash onto them.
 * - `shardLockRefreshIntervalMs` [10,000] / `shardLockExpirationMs` [35,000]: the lease. A runner refreshes its
 *   shard locks every min(refresh, expiration / 3) ms; if a refresh does not succeed within that long, it stops
 *   its entities at once. Another runner can take a shard only when its lock is older than the expiration.
 * - `shardLockAdvisory` [false]: use PostgreSQL session advisory locks instead of the leased lock rows. See
 *   docs/scaling.md: advisory locks free a killed runner's shards as soon as PostgreSQL sees its session end,
 *   but never expire while that session lives, so a runner cut off from the database keeps its shards.
 * - `refreshAssignmentsIntervalMs` [3,000]: how often a runner reads the runner list and recomputes where
 *   shards go (a dead runner leaves the list when its heartbeat, refreshed with its locks, is older than the
 *   lock expiration).
 * - `entityTerminationTimeoutMs` [15,000]: how long a stopping entity may finish its requests.
 * - `sendRetryIntervalMs` [100]: how often a message to a shard without a live owner is retried.
 * - `shardingConfig`: any other `ShardingConfig` field, as is.
 *
 * @since 0.1.0
 * @category options
 */
export interface RunnerOptions {
  readonly runnerHost?: string | undefined
  readonly runnerPort?: number | undefined
  readonly listenHost?: string | undefined
  readonly listenPort?: number | undefined
  readonly clientOnly?: boolean | undefined
  readonly shardsPerGroup?: number | undefined
  readonly shardLockRefreshIntervalMs?: number | undefined
  readonly shardLockExpirationMs?: number | undefined
  readonly shardLockAdvisory?: boolean | undefined
  readonly refreshAssignmentsIntervalMs?: number | undefined
  readonly entityTerminationTimeoutMs?: number | undefined
  readonly sendRetryIntervalMs?: number | undefined
  readonly shardingConfig?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
}

/**
 * The `ShardingConfig` fields that `options` set (over `@effect/cluster`'s defaults, which the environment can
 * also override: `ShardingConfig.layerFromEnv`).
 *
 * @since 0.1.0
 * @category utils
 */
export const shardingConfig = (options: RunnerOptions): Partial<ShardingConfig.ShardingConfig["Type"]> => {
  const host = options.runnerHost ?? "localhost"
  const port = options.runnerPort ?? 34431
  const ms = (value: number | undefined) => (value === undefined ? undefined : Duration.millis(value))
  const fields: Partial<ShardingConfig.ShardingConfig["Type"]> = {
    runnerAddress: options.clientOnly === true ? Option.none() : Option.some(RunnerAddress.make(host, port)),
    runnerListenAddress:
      options.listenHost === undefined && options.listenPort === undefined
        ? Option.none()
        : Option.some(RunnerAddress.make(options.listenHost ?? host, options.listenPort ?? port)),
    shardLockDisableAdvisory: options.shardLockAdvisory !== true
  }
  const optional = {
    shardsPerGroup: options.shardsPerGroup,
    shardLockRefreshInterval: ms(options.shardLockRefreshIntervalMs),
    shardLockExpiration: ms(options.shardLockExpirationMs),
    refreshAssignmentsInterval: ms(options.refreshAssignmentsIntervalMs),
    entityTerminationTimeout: ms(options.entityTerminationTimeoutMs),
    sendRetryInterval: ms(options.sendRetryIntervalMs)
  }
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (fields as Record<string, unknown>)[key] = value
  }
  return { ...fields, ...options.shardingConfig }
}

/**
 * The shard locks and the runner list in SQL: `@effect/cluster`'s `SqlRunnerStorage` (tables
 * `cluster_runners`, and `cluster_locks` for the leased locks) on the `SqlClient` you provide, which can be
 * the assignment store's (`PgStore.layerClient`): one database, one schema. Retries its table
 * creation 3 times, as runners that start together race on `CREATE TABLE IF NOT EXISTS`. Fails with
 * `StoreError` (operation `open`).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ClusterRegistry } from "effect-scheduler-registry/cluster"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * // the shard locks and the runner list beside the assignments: one database, one schema
 * const RunnerStorageLive = ClusterRegistry.layerRunnerStorage().pipe(
 *   Layer.provide(PgStore.layerClient({ url: "postgres://127.0.0.1:5432/postgres", schema: "su" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRunnerStorage = (
  options: RunnerOptions = {}
): Layer.Layer<RunnerStorage.RunnerStorage, StoreError | ConfigError.ConfigError, SqlClient.SqlClient> =>
  SqlRunnerStorage.layer.pipe(
    Layer.retry(Schedule.intersect(Schedule.recurs(3), Schedule.spaced(Duration.millis(100)))),
    Layer.mapError(
      (error): StoreError | ConfigError.ConfigError =>
        new StoreError({ operation: "open", reason: `cluster tables: ${error.message}` })
    ),
    Layer.provide(ShardingConfig.layerFromEnv(shardingConfig(options)))
  )

/**
 * This runner's `Sharding` over the `RunnerStorage` you provide: `NodeClusterSocket` (msgpack over TCP
 * between runners, the `ping` runner health check) with `MessageStorage.layerNoop`. The scheduler's calls
 * are not `Persisted`: the durable record is the `AssignmentStore`, a call whose runner dies is re-sent by
 * the cluster to the shard's next owner, and a message already stored comes back as `StoreConflict`
 * ("message already scheduled"), so message storage would add a database round trip per call and nothing
 * else. Fails with `SocketServerError` if the runner port is taken.
 *
 * Source: `NodeClusterSocket.layer({ storage: "byo" })` of `@effect/platform-node`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ClusterRegistry } from "effect-scheduler-registry/cluster"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * const ShardingLive = ClusterRegistry.layerSharding({ runnerHost: "10.0.0.5", runnerPort: 34431 }).pipe(
 *   Layer.provide(ClusterRegistry.layerRunnerStorage()),
 *   Layer.provide(PgStore.layerClient({ url: "postgres://127.0.0.1:5432/postgres" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSharding = (
  options: RunnerOptions = {}
): Layer.Layer<
  Sharding.Sharding,
  SocketServer.SocketServerError | ConfigError.ConfigError,
  RunnerStorage.RunnerStorage
> =>
  NodeClusterSocket.layer({
    storage: "byo",
    clientOnly: options.clientOnly === true,
    shardingConfig: shardingConfig(options)
  }).pipe(Layer.provide(MessageStorage.layerNoop)) as Layer.Layer<
    Sharding.Sharding,
    SocketServer.SocketServerError | ConfigError.ConfigError,
    RunnerStorage.RunnerStorage
  >

/**
 * Options of `layerClusterNode`: the PostgreSQL store (`pgUrl`, `schema` [public], `maxConnections` [10],
 * `batchSize` [128]), the runner (`RunnerOptions`) and the schedulers (`ClusterOptions`).
 *
 * @since 0.1.0
 * @category options
 */
export interface ClusterNodeOptions extends ClusterOptions, RunnerOptions {
  readonly pgUrl: string
  readonly schema?: string | undefined
  readonly maxConnections?: number | undefined
  readonly batchSize?: number | undefined
}

/**
 * Everything a node needs to be one runner of a scheduler cluster, given its `Wallet`: the `SchedulerRegistry`
 * over the cluster (`layerCluster`), the PostgreSQL `AssignmentStore` (`PgStore.layer`) and this
 * runner's `Sharding` (`layerSharding`), whose shard locks and runner list live in the same database and
 * schema (`layerRunnerStorage`), through one connection pool. Serve HTTP over it as over the local registry:
 * `Http.layer(…)` needs exactly `SchedulerRegistry | AssignmentStore`.
 *
 * Fails with `StoreError` (database unreachable, tables) or `SocketServerError` (runner port taken).
 *
 * @example
 * ```ts
 * import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { ClusterRegistry } from "effect-scheduler-registry/cluster"
 * import { Http } from "effect-scheduler-registry/node"
 * import { createServer } from "node:http"
 *
 * const ClusterLive = ClusterRegistry.layerClusterNode({
 *   pgUrl: "postgres://127.0.0.1:5432/postgres",
 *   runnerHost: "10.0.0.5",
 *   runnerPort: 34431
 * }).pipe(Layer.provide(Wallet.layerFile("./data/wallet.json")))
 *
 * const ServerLive = Http.layer().pipe(
 *   Layer.provide(ClusterLive),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 8080 }))
 * )
 *
 * Layer.launch(ServerLive).pipe(NodeRuntime.runMain)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClusterNode = (
  options: ClusterNodeOptions
): Layer.Layer<
  SchedulerRegistry | AssignmentStore.AssignmentStore | Sharding.Sharding,
  StoreError | SocketServer.SocketServerError | ConfigError.ConfigError,
  Wallet
> => {
  const client = PgStore.layerClient({
    url: options.pgUrl,
    schema: options.schema,
    maxConnections: options.maxConnections
  })
  const store = SqlStore.layer({ batchSize: options.batchSize })
  const sharding = layerSharding(options).pipe(Layer.provide(layerRunnerStorage(options)))
  return layerCluster(options).pipe(Layer.provideMerge(Layer.merge(sharding, store)), Layer.provide(client))
}
