/**
 * One runner of a scheduler cluster: how it joins (`RunnerOptions`, `shardingConfig`), its shard locks
 * (`layerRunnerStorage`, `@effect/cluster`'s `SqlRunnerStorage` on PostgreSQL), its `Sharding` over sockets
 * (`layerSharding`, `NodeClusterSocket`) and the whole runner assembled with the PostgreSQL store and the
 * registry (`layerClusterNode`), as the node's `--cluster` runs it. See docs/scaling.md.
 *
 * @since 0.2.0
 */
import {
  MessageStorage,
  RunnerAddress,
  RunnerStorage,
  type Sharding,
  ShardingConfig,
  SqlRunnerStorage
} from "@effect/cluster"
import type { SocketServer } from "@effect/platform"
import { NodeClusterSocket } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { type ConfigError, Duration, Effect, Layer, Option, Schedule } from "effect"
import type * as AssignmentStore from "../AssignmentStore.js"
import { StoreError } from "../errors.js"
import * as PgStore from "../pg/PgStore.js"
import type { SchedulerRegistry } from "../SchedulerRegistry.js"
import * as SqlStore from "../sql/SqlStore.js"
import type { Wallet } from "../Wallet.js"
import * as ClusterRegistry from "./ClusterRegistry.js"
import { reportAcquiredDuringRefresh } from "./internal/refresh-race.js"
import { serialReserve } from "./internal/serial-client.js"

/**
 * The default shard-lock lease, in ms (`RunnerOptions.shardLockExpirationMs`): chosen from the failover
 * measurements of docs/scaling.md.
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_LOCK_EXPIRATION_MS = 6_000

/**
 * The default shard-lock refresh interval, in ms (`RunnerOptions.shardLockRefreshIntervalMs`): a third of the
 * lease, so a runner that cannot refresh stops its entities before its lease expires.
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_LOCK_REFRESH_MS = 2_000

/**
 * The default interval, in ms, at which a runner re-reads the runner list and takes the shards it should own
 * (`RunnerOptions.refreshAssignmentsIntervalMs`): one small `SELECT` each time, so the survivors see a dead
 * runner gone within a quarter of a second of the end of its heartbeat (1,000 ms before 0.3.0's failover
 * measurements, docs/scaling.md).
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_REFRESH_ASSIGNMENTS_MS = 250

/**
 * The default interval, in ms, at which a runner re-checks the shards assigned to it that it does not hold
 * (`RunnerOptions.shardRecheckIntervalMs`, `@effect/cluster`'s `entityMessagePollInterval`, 10,000 ms there).
 * A shard the runner has just taken can be let go again at once by a lock refresh that started before it was
 * taken (the refresh's list does not hold it yet, so the shard looks lost): it is taken back at the next
 * re-check, and until then its processes have no server. With no message storage, the re-check costs nothing
 * else. Chosen from the failover measurements of docs/scaling.md.
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_SHARD_RECHECK_MS = 1_000

/**
 * The PostgreSQL session timeouts of a cluster's store and runner storage, from the lease `lockExpirationMs`
 * [`DEFAULT_LOCK_EXPIRATION_MS`] (ms): `statement_timeout` and `idle_in_transaction_session_timeout` half the
 * lease each, so a runner whose connection hangs mid-transaction holds no lock past the lease (the server ends
 * its session); `lock_timeout` a quarter, so no statement queues long behind another session. Pass them to
 * `PgStore.layerClient` (`layerClusterNode` does).
 *
 * @example
 * ```ts
 * import { ClusterNode } from "effect-scheduler-registry/cluster"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * const ClientLive = PgStore.layerClient({
 *   url: "postgres://127.0.0.1:5432/postgres",
 *   ...ClusterNode.sessionTimeouts(6_000) // 3,000 / 1,500 / 3,000 ms
 * })
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const sessionTimeouts = (
  lockExpirationMs: number = DEFAULT_LOCK_EXPIRATION_MS
): {
  readonly statementTimeoutMs: number
  readonly lockTimeoutMs: number
  readonly idleInTransactionTimeoutMs: number
} => ({
  statementTimeoutMs: Math.max(1, Math.floor(lockExpirationMs / 2)),
  lockTimeoutMs: Math.max(1, Math.floor(lockExpirationMs / 4)),
  idleInTransactionTimeoutMs: Math.max(1, Math.floor(lockExpirationMs / 2))
})

/**
 * How this runner joins the cluster. Durations in ms. Every runner must agree on `shardsPerGroup` and the
 * shard-lock settings.
 *
 * - `runnerHost` ["localhost"] / `runnerPort` [34431]: where other runners reach this one (its
 *   `RunnerAddress`); `listenHost` / `listenPort` [the same]: what it binds, if different (containers).
 * - `clientOnly` [false]: join without hosting entities (a pure router: it sends to the runners that host).
 * - `shardsPerGroup` [300]: shards of the one shard group; processes hash onto them.
 * - `shardLockRefreshIntervalMs` [2,000] / `shardLockExpirationMs` [6,000]: the lease. A runner refreshes its
 *   shard locks every min(refresh, expiration / 3) ms; if a refresh does not succeed within that long, it stops
 *   its entities at once. Another runner can take a shard only when its lock is older than the expiration. The
 *   defaults (since 0.3.0; 10,000 / 35,000 before) let the survivors take a dead runner's shards 4 to 6 s after
 *   it died (`E` after its last refresh), then serve each moved process's backlog at their ordinary latency; a
 *   shorter refresh makes a runner on a starved CPU give its shards up more often (docs/scaling.md,
 *   "Failover time: where it goes").
 * - `shardLockAdvisory` [false]: use PostgreSQL session advisory locks instead of the leased lock rows. See
 *   docs/scaling.md: advisory locks free a killed runner's shards as soon as PostgreSQL sees its session end,
 *   but never expire while that session lives, so a runner cut off from the database keeps its shards.
 * - `refreshAssignmentsIntervalMs` [250; 1,000 before 0.3.0]: how often a runner reads the runner list and
 *   recomputes where shards go (a dead runner leaves the list when its heartbeat, refreshed with its locks, is
 *   older than the lock expiration): the longest a survivor waits, after a dead runner's heartbeat has
 *   expired, to see it gone, take its shards and route their messages to their new owner (a second more when
 *   one of its lock rows outlives the heartbeat a little: `@effect/cluster` tries again after 1,000 ms).
 * - `shardRecheckIntervalMs` [1,000] (since 0.3.0): how often a runner re-checks the shards assigned to it
 *   that it does not hold, and takes those it can (`entityMessagePollInterval`, 10,000 ms in `@effect/cluster`):
 *   bounds how long a shard let go by mistake, or not taken at its first try, stays without a server
 *   (`DEFAULT_SHARD_RECHECK_MS`).
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
  readonly shardRecheckIntervalMs?: number | undefined
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
    shardLockRefreshInterval: ms(options.shardLockRefreshIntervalMs ?? DEFAULT_LOCK_REFRESH_MS),
    shardLockExpiration: ms(options.shardLockExpirationMs ?? DEFAULT_LOCK_EXPIRATION_MS),
    refreshAssignmentsInterval: ms(options.refreshAssignmentsIntervalMs ?? DEFAULT_REFRESH_ASSIGNMENTS_MS),
    entityMessagePollInterval: ms(options.shardRecheckIntervalMs ?? DEFAULT_SHARD_RECHECK_MS),
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
 * creation 3 times, as runners that start together race on `CREATE TABLE IF NOT EXISTS`. Its reserved lock
 * connection runs one statement at a time (`SqlRunnerStorage` may issue several at once, which `pg` warns
 * about). A lock refresh also reports the shards acquired while it ran, so that `@effect/cluster` does not let
 * a shard go just after taking it (its refresh works from the list it had when it started). Fails with
 * `StoreError` (operation `open`).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ClusterNode, ClusterRegistry } from "effect-scheduler-registry/cluster"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * // the shard locks and the runner list beside the assignments: one database, one schema
 * const RunnerStorageLive = ClusterNode.layerRunnerStorage().pipe(
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
  Layer.effect(RunnerStorage.RunnerStorage, Effect.map(RunnerStorage.RunnerStorage, reportAcquiredDuringRefresh)).pipe(
    Layer.provide(SqlRunnerStorage.layer),
    Layer.retry(Schedule.intersect(Schedule.recurs(3), Schedule.spaced(Duration.millis(100)))),
    Layer.mapError(
      (error): StoreError | ConfigError.ConfigError =>
        new StoreError({ operation: "open", reason: `cluster tables: ${error.message}` })
    ),
    Layer.provide(ShardingConfig.layerFromEnv(shardingConfig(options))),
    // one statement at a time on its reserved lock connection (no pg "already executing a query" warning)
    Layer.provide(Layer.effect(SqlClient.SqlClient, Effect.map(SqlClient.SqlClient, serialReserve)))
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
 * import { ClusterNode, ClusterRegistry } from "effect-scheduler-registry/cluster"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * const ShardingLive = ClusterNode.layerSharding({ runnerHost: "10.0.0.5", runnerPort: 34431 }).pipe(
 *   Layer.provide(ClusterNode.layerRunnerStorage()),
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
export interface ClusterNodeOptions extends ClusterRegistry.ClusterOptions, RunnerOptions {
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
 * A runner whose store stops answering (a hung connection) answers its registry calls within one lease
 * (`storeTimeoutMs`, default `shardLockExpirationMs`): `SchedulerStopped` (503) or, for a `schedule` already
 * sent, `OutcomeUnknown` (504), see `ClusterRegistry.ClusterOptions.storeTimeoutMs`. The `AssignmentStore` it
 * gives is `ClusterRegistry.layerCluster`'s: its reads are bounded the same way (a retryable `StoreError`, 503),
 * so the HTTP reads of the store (`GET /{process}`, `/processes/{process}`, …) do not wait on the hung
 * connection either.
 *
 * Fails with `StoreError` (database unreachable, tables) or `SocketServerError` (runner port taken).
 *
 * @example
 * ```ts
 * import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { ClusterNode, ClusterRegistry } from "effect-scheduler-registry/cluster"
 * import { Http } from "effect-scheduler-registry/node"
 * import { createServer } from "node:http"
 *
 * const ClusterLive = ClusterNode.layerClusterNode({
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
    maxConnections: options.maxConnections,
    ...sessionTimeouts(options.shardLockExpirationMs)
  })
  const store = SqlStore.layer({ batchSize: options.batchSize })
  const sharding = layerSharding(options).pipe(Layer.provide(layerRunnerStorage(options)))
  // a runner whose store hangs answers 503/504 within one lease instead of letting calls wait
  const storeTimeoutMs = options.storeTimeoutMs ?? options.shardLockExpirationMs ?? DEFAULT_LOCK_EXPIRATION_MS
  // the registry gives the store too, its reads bounded by the same watch: what HTTP reads
  return ClusterRegistry.layerCluster({ ...options, storeTimeoutMs }).pipe(
    Layer.provide(store),
    Layer.provideMerge(sharding),
    Layer.provide(client)
  )
}
