/**
 * The durable store in PostgreSQL (`@effect/sql-pg`): for several nodes of a cluster, or a database server the
 * operator already runs. The same SQL and group commit as every `SqlStore`.
 *
 * Mirrors the legacy ao SU's PostgreSQL store (`DATABASE_URL`; `permaweb/ao@ff178d51 servers/su/migrations`).
 *
 * @since 0.2.0
 */
import type { SqlClient } from "@effect/sql"
import type { PgClient } from "@effect/sql-pg"
import { Config, type ConfigError, Effect, Layer } from "effect"
import type { AssignmentStore } from "../AssignmentStore.js"
import type { StoreError, StoreLocked } from "../errors.js"
import type { StoreLock } from "../StoreLock.js"
import * as SqlStore from "../sql/SqlStore.js"
import * as Internal from "./internal/client.js"
import * as Lock from "./internal/lock.js"

/**
 * Options of the PostgreSQL store.
 *
 * - `url`: a `postgres://user:password@host:port/database` connection string (libpq parameters allowed).
 * - `schema` [`public`]: the schema that holds the tables, created if missing and set as every connection's
 *   `search_path`; a plain identifier (letters, digits, `_`). Give each test run its own.
 * - `maxConnections` [10]: the pool size. Writes use one connection at a time; reads use the rest.
 * - `batchSize` [128]: see `SqlStore.Options`.
 * - `statementTimeoutMs`, `lockTimeoutMs`, `idleInTransactionTimeoutMs` [the server's, off by default]: set on
 *   every session as PostgreSQL's `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout`
 *   (ms), so that a hung or slow session, of this node or of another on the same database, holds no lock for
 *   longer: the server ends the statement or the session. A cluster sets them from its lease
 *   (`ClusterNode.sessionTimeouts`). Migrations and schema creation lift them for their own transaction.
 *   Since 0.3.0.
 *
 * @since 0.1.0
 * @category options
 */
export interface Options extends SqlStore.Options {
  readonly url: string
  readonly schema?: string | undefined
  readonly maxConnections?: number | undefined
  readonly statementTimeoutMs?: number | undefined
  readonly lockTimeoutMs?: number | undefined
  readonly idleInTransactionTimeoutMs?: number | undefined
}

/**
 * The PostgreSQL client the store uses: `@effect/sql-pg` with `search_path` = `options.schema`,
 * `synchronous_commit = on` and the options' session timeouts on every connection, after creating the schema
 * if missing. Fails with `StoreError` (operation `open`) if the server does not answer, the schema name is not a
 * plain identifier or a timeout is not a non-negative integer.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { PgStore, SqlStore } from "effect-scheduler-registry/pg"
 *
 * // one pool for the store and for your own tables
 * const ClientLive = PgStore.layerClient({ url: "postgres://127.0.0.1:5432/postgres", schema: "su" })
 * const StoreLive = SqlStore.layer().pipe(Layer.provide(ClientLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: Options): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, StoreError> =>
  Internal.layerClient(options)

/**
 * A durable store in PostgreSQL. Fails with `StoreError` (operation `open` or `migrate`). A COMMIT returns once
 * the server has flushed its WAL, so an acknowledged append survives a crash of this node or of the server.
 *
 * @example
 * ```ts
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * const StoreLive = PgStore.layer({ url: "postgres://127.0.0.1:5432/postgres", schema: "su" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<AssignmentStore, StoreError> =>
  SqlStore.layer(options).pipe(Layer.provide(layerClient(options)))

/**
 * The store's writer lock (`StoreLock`) for one schema: taken when the Layer is built and held until it is
 * released, so that one node at a time writes the schema (outside a cluster, whose runners share it under shard
 * locks). It is a session advisory lock, `pg_try_advisory_lock(hashtext('effect-scheduler-registry'),
 * hashtext(schema))`, on a connection of its own that stays open; the server releases it when that session
 * ends, even if the node was killed by SIGKILL. `pg_stat_activity` shows the session as
 * `su-lock pid=<pid> host=<host>`. Take it before the store (`Layer.provide`), as the node does by default.
 *
 * Fails with `StoreLocked` (naming the holder's pid and host) when another session holds it, or `StoreError`
 * (operation `lock`) when the server does not answer.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * // the lock first, then the store; a second node on the schema fails with StoreLocked
 * const options = { url: "postgres://127.0.0.1:5432/postgres", schema: "su" }
 * const StoreLive = PgStore.layer(options).pipe(Layer.provide(PgStore.layerLock(options)))
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layerLock = (options: Pick<Options, "url" | "schema">): Layer.Layer<StoreLock, StoreLocked | StoreError> =>
  Lock.layerLock(options)

/**
 * `layer` with its options read from `Config`, as `@effect/sql-pg`'s `PgClient.layerConfig`:
 * `PgStore.layerConfig({ url: Config.string("SU_PG_URL") })`. Fails with `ConfigError` when the config does not
 * load, or `StoreError` as `layer` does.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { PgStore } from "effect-scheduler-registry/pg"
 *
 * const StoreLive = PgStore.layerConfig({ url: Config.string("SU_PG_URL") })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<AssignmentStore, StoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
