/**
 * The durable store in one SQLite file (`@effect/sql-sqlite-node`, better-sqlite3): the node's embedded
 * default. WAL mode, `synchronous = FULL`, group commit (`SqlStore`).
 *
 * Mirrors the legacy ao SU's local store generation (`USE_LOCAL_STORE`, one node's own disk;
 * `permaweb/ao@ff178d51 servers/su/src/domain/clients/local_store`) with the SQL layout of `SqlStore`.
 *
 * @since 0.2.0
 */
import type { SqlClient } from "@effect/sql"
import type { SqliteClient } from "@effect/sql-sqlite-node"
import { Config, type ConfigError, Effect, Layer } from "effect"
import type { AssignmentStore } from "../AssignmentStore.js"
import type { StoreError, StoreLocked } from "../errors.js"
import type { StoreLock } from "../StoreLock.js"
import * as SqlStore from "../sql/SqlStore.js"
import * as Internal from "./internal/client.js"
import * as Lock from "./internal/lock.js"

/**
 * Options of the SQLite store.
 *
 * - `filename`: the database file; its directory is created if missing. WAL mode adds `-wal` and `-shm` files
 *   beside it.
 * - `synchronous` [`"FULL"`]: when SQLite fsyncs. `"FULL"`: the WAL is fsynced after every commit and before
 *   its appends are acknowledged, so an acknowledged append survives a process crash and an OS crash or power
 *   loss; one fsync per transaction, shared by group commit among up to `batchSize` appends. `layer` runs that
 *   fsync on libuv's thread pool rather than inside the COMMIT (the connection itself uses NORMAL), so the event
 *   loop never waits for the disk and the next batch gathers meanwhile (since 0.5.0; `layerClient` keeps
 *   SQLite's own FULL). `"NORMAL"`: the WAL is fsynced only at checkpoints;
 *   an acknowledged append survives a process crash (SIGKILL) but the last transactions may be lost on power
 *   loss, which would let the node sign a second assignment for a slot it had already acknowledged.
 * - `batchSize` [128]: see `SqlStore.Options`.
 *
 * @since 0.1.0
 * @category options
 */
export interface Options extends SqlStore.Options {
  readonly filename: string
  readonly synchronous?: "FULL" | "NORMAL" | undefined
}

/**
 * The SQLite client the store uses: `@effect/sql-sqlite-node` (one connection) in WAL mode with
 * `PRAGMA synchronous` set from `options`. Fails with `StoreError` (operation `open`) if the file cannot be
 * opened.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqliteStore, SqlStore } from "effect-scheduler-registry/sqlite"
 *
 * // one client for the store and for your own tables
 * const ClientLive = SqliteStore.layerClient({ filename: "./data/su.sqlite" })
 * const StoreLive = SqlStore.layer({ batchSize: 64 }).pipe(Layer.provide(ClientLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options: Options
): Layer.Layer<SqliteClient.SqliteClient | SqlClient.SqlClient, StoreError> => Internal.layerClient(options)

/**
 * A durable store in the SQLite file `options.filename`. Fails with `StoreError` (operation `open` or
 * `migrate`). Layout and durability: docs/storage.md.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { NameService, SchedulerRegistry, Wallet } from "effect-scheduler-registry"
 * import { SqliteStore } from "effect-scheduler-registry/sqlite"
 *
 * const RegistryLive = SchedulerRegistry.layer().pipe(
 *   Layer.provide(
 *     Layer.mergeAll(
 *       NameService.layer,
 *       Wallet.layerFile("./data/wallet.json"),
 *       SqliteStore.layer({ filename: "./data/su.sqlite" })
 *     )
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<AssignmentStore, StoreError> =>
  SqlStore.layer(options).pipe(Layer.provide(Internal.layerStoreClient(options)))

/**
 * The store's writer lock (`StoreLock`): taken when the Layer is built and held until it is released, so that
 * one node at a time writes the file. It is the write lock of a small SQLite database beside the store,
 * `<filename>.lock` (with its `-wal` and `-shm` files), which also records the holder's pid, host and start
 * time. The operating system releases it when the holder dies, even by SIGKILL, so a stale lock never blocks a
 * restart. Take it before the store (`Layer.provide`), as the node does by default. `:memory:` needs no lock.
 *
 * Fails with `StoreLocked` (naming the holder) when another process holds it, or `StoreError` (operation
 * `lock`) when the lock file cannot be created (e.g. an unwritable or impossible directory).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqliteStore } from "effect-scheduler-registry/sqlite"
 *
 * // the lock first, then the store; a second process on the file fails with StoreLocked
 * const options = { filename: "./data/su.sqlite" }
 * const StoreLive = SqliteStore.layer(options).pipe(Layer.provide(SqliteStore.layerLock(options)))
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layerLock = (options: Pick<Options, "filename">): Layer.Layer<StoreLock, StoreLocked | StoreError> =>
  Lock.layerLock(options)

/**
 * `layer` with its options read from `Config`, as `@effect/sql-sqlite-node`'s `SqliteClient.layerConfig`:
 * `SqliteStore.layerConfig({ filename: Config.string("SU_SQLITE_FILE") })`. Fails with `ConfigError` when the
 * config does not load, or `StoreError` as `layer` does.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { SqliteStore } from "effect-scheduler-registry/sqlite"
 *
 * const StoreLive = SqliteStore.layerConfig({ filename: Config.string("SU_SQLITE_FILE") })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<AssignmentStore, StoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
