/**
 * The durable `AssignmentStore` on any `@effect/sql` client: the same SQL for SQLite (`SqliteStore`) and
 * PostgreSQL (`PgStore`), appends through a group-commit writer, reads straight from the client.
 *
 * Mirrors `dev_scheduler_cache`'s write / read / list / latest (`permaweb/HyperBEAM@b2743e4a
 * src/dev_scheduler_cache.erl`) on the legacy ao SU's `messages` and `processes` tables
 * (`permaweb/ao@ff178d51 servers/su/migrations`), keyed by (process, slot) instead of timestamp (K12), with a
 * unique (process, slot) and assignment id, so a second write to a slot is a loud `StoreConflict` (behaviour 29).
 * Layout and durability: docs/storage.md.
 *
 * @since 0.2.0
 */
import type { SqlClient } from "@effect/sql"
import { Config, type ConfigError, Effect, Layer, type Metric, type Scope } from "effect"
import { AssignmentStore } from "../AssignmentStore.js"
import type { StoreError } from "../errors.js"
import * as Internal from "./internal/store.js"

/**
 * Options of the SQL stores.
 *
 * - `batchSize` [128]: the most appends committed in one transaction by the group-commit writer. Appends that
 *   arrive while a transaction runs wait for the next one, which takes up to `batchSize` of them.
 *
 * @since 0.1.0
 * @category options
 */
export interface Options {
  readonly batchSize?: number | undefined
}

/**
 * The durable store on the `SqlClient` in context (SQLite or PostgreSQL: the SQL is the same).
 *
 * Runs the schema migrations (`@effect/sql` Migrator, table `assignment_store_migrations`), then starts one
 * writer fiber in the current scope. Appends are queued; the writer takes up to `batchSize` of them and writes
 * them in one transaction (group commit), and each `append` returns after that transaction has committed, so
 * an acknowledged assignment is as durable as the client's commit. A `StoreConflict` fails only its own
 * append, never the batch.
 *
 * Fails with `StoreError` (operation `migrate`) if the schema cannot be created or upgraded.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect } from "effect"
 * import { ProcessId } from "effect-scheduler-registry"
 * import { SqlStore } from "effect-scheduler-registry/sqlite"
 *
 * const program = Effect.gen(function* () {
 *   const store = yield* SqlStore.make({ batchSize: 64 })
 *   return yield* store.latest(ProcessId.unsafeMake("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
 * }).pipe(Effect.scoped, Effect.provide(SqliteClient.layer({ filename: "./data/su.sqlite" })))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<AssignmentStore["Type"], StoreError, SqlClient.SqlClient | Scope.Scope> => Internal.make(options)

/**
 * `make` as a Layer over a `SqlClient` you provide (to share one client or pool with other services).
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Layer } from "effect"
 * import { SqlStore } from "effect-scheduler-registry/sqlite"
 *
 * const StoreLive = SqlStore.layer({ batchSize: 64 }).pipe(
 *   Layer.provide(SqliteClient.layer({ filename: "./data/su.sqlite" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<AssignmentStore, StoreError, SqlClient.SqlClient> =>
  Layer.scoped(AssignmentStore, make(options))

/**
 * `layer` with its options read from `Config` (for example `Config.all({ batchSize: Config.integer("SU_BATCH") })`).
 * Fails with `ConfigError` when the config does not load, or `StoreError` as `layer` does.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Config, Layer } from "effect"
 * import { SqlStore } from "effect-scheduler-registry/sqlite"
 *
 * const StoreLive = SqlStore.layerConfig({ batchSize: Config.integer("SU_BATCH") }).pipe(
 *   Layer.provide(SqliteClient.layer({ filename: "./data/su.sqlite" }))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<AssignmentStore, StoreError | ConfigError.ConfigError, SqlClient.SqlClient> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * Histogram of the number of appends committed per transaction by the group-commit writer
 * (`assignment_store_batch_size`, buckets 1, 2, 4, … 512). Its count is the number of transactions.
 *
 * @since 0.1.0
 * @category metrics
 */
export const batchSize: Metric.Metric.Histogram<number> = Internal.batchSize
