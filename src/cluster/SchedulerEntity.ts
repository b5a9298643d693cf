/**
 * A process's scheduler as an `@effect/cluster` entity: the Rpc protocol (`Schedule`, `Info`), the entity, and
 * the Layer that registers its behaviour with the runner's `Sharding`.
 *
 * The entity id is the process id (43 characters). The cluster places each id on one shard and each shard on
 * one runner, which holds the shard's lock in the `RunnerStorage` (PostgreSQL, `SqlRunnerStorage`). The
 * behaviour runs the per-process server (`Scheduler.make`, the same loop as on a single node) as a fiber in
 * the entity's scope: it recovers the slot and hash chain from the `AssignmentStore` when the entity starts,
 * and stops when the entity stops (idle passivation, shard moved to another runner, runner shutdown). So a
 * process hosted by the cluster has at most one live server in the cluster, on the runner that holds its
 * shard, and every `Schedule` for it goes through that server.
 *
 * @since 0.1.0
 */
import type { Sharding } from "@effect/cluster"
import { Context, type Layer } from "effect"
import type { AssignmentStore } from "../AssignmentStore.js"
import type { Wallet } from "../Wallet.js"
import * as Internal from "./internal/entity.js"
import * as Protocol from "./internal/protocol.js"

/**
 * The entity type name, `"Scheduler"`: part of every entity address, so all runners must agree on it.
 *
 * @since 0.1.0
 * @category constants
 */
export const ENTITY_TYPE: "Scheduler" = Protocol.ENTITY_TYPE

/**
 * Every error a `Schedule` call can return over the wire: the `ScheduleError` classes of `errors.ts`
 * (`SchedulerTimeout`, `SchedulerStopped`, `MailboxFull`, `StoreConflict`, `StoreError`), each encoded as its
 * tagged struct and decoded as an instance of its class.
 *
 * @since 0.1.0
 * @category errors
 */
export const ScheduleError = Protocol.ScheduleError

/**
 * `Scheduler.Info` as a Schema: `slot` (-1 if none), `hashChain`, `assignmentId`, `timestamp` (ms) of the last
 * slot (`null` on the wire when there is none), the signing `address`, `mode` and `mailboxDepth` (requests).
 *
 * @since 0.1.0
 * @category models
 */
export const Info = Protocol.Info

/**
 * `Schedule { message, timeoutMs? }` → the message's `Assignment`, or a `ScheduleError`. `message` is an
 * `Assignment.Message` (id and optional data item bytes); `timeoutMs` is the server-side deadline in ms
 * (default: the server's `timeoutMs`, 10,000). The `Assignment` and `Message` classes travel as they are: their
 * bytes (`raw`) are msgpack binaries with the cluster's default serialization.
 *
 * @since 0.1.0
 * @category models
 */
export const Schedule = Protocol.Schedule

/**
 * `Info` → the server's `Scheduler.Info`. Starts the entity if it is not running (the server recovers from the
 * store first), so it is also how `find(p, true)` activates a process. Fails with `StoreError` when the
 * recovery read fails, `SchedulerStopped` when the server stopped.
 *
 * @since 0.1.0
 * @category models
 */
export const InfoRpc = Protocol.InfoRpc

/**
 * The scheduler entity: type `"Scheduler"`, protocol `[Schedule, Info]`, entity id = process id. Make a
 * client with `SchedulerEntity.client` (needs `Sharding`): `client(processId).Schedule({ message })`.
 *
 * Source: `Entity.make` of `@effect/cluster`.
 *
 * @since 0.1.0
 * @category models
 */
export const SchedulerEntity = Protocol.SchedulerEntity

/**
 * A scheduler entity live on this runner: its process, when it started (ms since the epoch) and its current
 * server fiber (`None` while it is being replaced).
 *
 * @since 0.1.0
 * @category models
 */
export type Hosted = Internal.Hosted

/**
 * The scheduler entities this runner hosts, and their lifecycle events.
 *
 * - `get(processId)` / `entries()`: the live ones on this runner (a runner sees only its own).
 * - `events` / `subscribe`: `ServiceRegistry.RegistryEvent`s with `Name(scheduler@1.0, wallet address, p)`:
 *   `Registered` when an entity starts here (before its server touches the store), `Activated` when its server
 *   has recovered, `Passivated` when the cluster stopped it for being idle, and `Unregistered` once its server
 *   fiber has ended (so no write of it is still in flight), with reason `passivated`, `interrupted` (its
 *   shard left this runner) or `registry_closed` (the runner shuts down). A subscriber more than
 *   `eventsCapacity` events behind loses the oldest.
 *
 * @since 0.1.0
 * @category models
 */
export class HostedSchedulers extends Context.Tag("effect-scheduler-registry/HostedSchedulers")<
  HostedSchedulers,
  Internal.Hub
>() {}

/**
 * Options of the entity behaviour: the `Scheduler.Options` of every server it runs (`mode`, `timeoutMs`,
 * `mailboxCapacity`, `blockHeight`, `signer`, `upload`; give every runner the same), plus:
 * - `idleTimeToLiveMs`: passivation, as the entity's `maxIdleTime` in ms [the `ShardingConfig`'s
 *   `entityMaxIdleTime`, 60,000]. The cluster's reaper looks every max(min(30,000, maxIdleTime), 5,000) ms, so
 *   an idle entity stops between `idleTimeToLiveMs` and `idleTimeToLiveMs` plus that period (5,000 to 30,000
 *   ms). It is not given to the server, which never passivates by itself in the cluster.
 * - `eventsCapacity`: the events buffer per subscriber [1,024 events].
 *
 * @since 0.1.0
 * @category options
 */
export interface Options extends Internal.Options {}

/**
 * Registers the scheduler entity's behaviour with this runner's `Sharding` (`Entity.toLayer`, concurrency
 * unbounded so that requests queue in the server's own bounded mailbox, with its deadlines) and gives the
 * `HostedSchedulers` of this runner. On a client-only runner (no runner address) `Sharding` ignores the
 * registration and the runner hosts nothing.
 *
 * The behaviour, per entity: parse the entity id as a process id; start the server (`Scheduler.make` with the
 * node `Wallet`) in a fiber of the entity's scope; `Schedule` and `Info` wait for its recovery and delegate to
 * its handle. A `StoreConflict` "slot already written" means the store is ahead of this server (another writer
 * wrote its next slot, or its last write committed although it was reported failed): the server is replaced
 * by one that recovers from the store, and the request is run once more on it. A server that stopped (a
 * failed write in aggressive mode, a failed recovery, a write `Fenced` because another runner claimed the
 * process since) is replaced by the next request the same way; the replacement claims the process again.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { ClusterNode, ClusterRegistry, SchedulerEntity } from "effect-scheduler-registry/cluster"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * const options = { url: "postgres://127.0.0.1:5432/postgres" }
 * const Base = Layer.mergeAll(
 *   ClusterNode.layerSharding().pipe(
 *     Layer.provide(ClusterNode.layerRunnerStorage()),
 *     Layer.provide(PgStore.layerClient(options))
 *   ),
 *   PgStore.layer(options),
 *   Wallet.layerFile("./data/wallet.json")
 * )
 *
 * // this runner hosts the scheduler entities of its shards: which ones, now
 * const hosted = Effect.map(SchedulerEntity.HostedSchedulers, (h) => h.entries().map((e) => e.processId))
 * const program = hosted.pipe(
 *   Effect.provide(SchedulerEntity.layer({ idleTimeToLiveMs: 300_000 }).pipe(Layer.provide(Base)))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<HostedSchedulers, never, Sharding.Sharding | Wallet | AssignmentStore> =>
  Internal.layer(HostedSchedulers, SchedulerEntity, options)
