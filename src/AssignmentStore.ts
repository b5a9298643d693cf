/**
 * Where assignments live: the storage contract every scheduler writes through, and its layers.
 *
 * Mirrors `dev_scheduler_cache` (write / read / list / latest) and the legacy ao SU's `messages` and
 * `processes` tables, with their failures fixed: (process, slot) and the assignment id are unique, so a second
 * write to a slot is a loud `StoreConflict` (behaviour 29), and `latest` is chosen by slot, not timestamp (K12).
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql"
import type { PgClient } from "@effect/sql-pg"
import type { SqliteClient } from "@effect/sql-sqlite-node"
import { Context, Effect, Layer, type Metric, type Option, type Scope } from "effect"
import type { Assignment, Message } from "./Assignment.js"
import type { StoreConflict, StoreError } from "./errors.js"
import * as Memory from "./internal/store/memory.js"
import * as Pg from "./internal/store/pg.js"
import * as Sql from "./internal/store/sql.js"
import * as Sqlite from "./internal/store/sqlite.js"
import type { ProcessId } from "./ProcessId.js"

/**
 * The head of a process's schedule: its max slot with that slot's hash chain, assignment id and timestamp
 * (ms). Chosen by slot, never by timestamp (K12).
 *
 * @since 0.1.0
 */
export interface Latest {
  readonly slot: number
  readonly hashChain: string
  readonly assignmentId: string
  readonly timestamp: number
}

/**
 * One stored schedule entry: the assignment, and the scheduled message's data item bytes when the SU has them
 * (`undefined` for an assignment of an existing Arweave transaction).
 *
 * `nodeJson`: the entry as the legacy SU's `{message, assignment}` JSON, UTF-8 bytes, as the SQL stores write
 * it next to the row at append time (a read model, so that a 1,000-edge page is a read and a concatenation).
 * Absent from the memory store, for rows written before it existed, and for messages over
 * `NODE_JSON_MAX_BYTES`; readers render those from the bytes.
 *
 * @since 0.1.0
 */
export interface Entry {
  readonly assignment: Assignment
  readonly message: Uint8Array | undefined
  readonly nodeJson?: Uint8Array | undefined
}

/**
 * The largest message (bytes) whose node JSON the SQL stores keep next to the row; larger ones are rendered
 * when read, so a 10 MiB body is not stored twice. 64 KiB. Our read model: the legacy ao SU renders every page
 * from its rows (`json.rs`), HyperBEAM has no page JSON.
 *
 * @since 0.1.0
 */
export const NODE_JSON_MAX_BYTES = 64 * 1024

/**
 * A range read of one process's schedule, ordered by slot.
 *
 * - `by: "slot"`: `from` and `to` are slots; `by: "timestamp"`: they are timestamps in ms.
 * - `from` is **exclusive** and `to` **inclusive** (`docs/behaviours.md` §4.4); either may be absent.
 * - `limit`: the most entries returned (1 or more). Callers read `limit + 1` to learn whether a next page exists.
 * - `nodeJsonOnly`: for readers that need only `Entry.nodeJson` (pages). An entry that has it comes back
 *   without its data item bytes (`assignment.raw` empty, `message` undefined), so the read does not move them;
 *   entries without it come back whole. Ignored by the memory store, which keeps no node JSON.
 *
 * In timestamp mode the SQL stores walk the (process, timestamp, slot) index, so ties are broken by slot; that is
 * slot order because a process's timestamps never fall as its slots rise (the scheduler bumps them, K14).
 *
 * @since 0.1.0
 */
export interface RangeQuery {
  readonly by: "slot" | "timestamp"
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly limit: number
  readonly nodeJsonOnly?: boolean | undefined
}

/**
 * The storage contract.
 *
 * - `append(assignment, message)`: atomic and durable when it succeeds. Fails with `StoreConflict` if the slot,
 *   the assignment id or the (process, message id) pair already exists; with `StoreError` on I/O failure.
 * - `latest(process)`: `Option<Latest>`, the max slot.
 * - `range(process, query)`: at most `query.limit` entries, ascending by slot; never the whole schedule.
 * - `getMessage(id)`: the entry whose message id or assignment id is `id`.
 * - `getProcess(process)`: the process's slot-0 entry.
 * - `listProcesses()`: every process with at least one assignment.
 *
 * @since 0.1.0
 */
export class AssignmentStore extends Context.Tag("effect-scheduler-registry/AssignmentStore")<
  AssignmentStore,
  {
    readonly append: (assignment: Assignment, message: Message) => Effect.Effect<void, StoreConflict | StoreError>
    readonly latest: (processId: ProcessId) => Effect.Effect<Option.Option<Latest>, StoreError>
    readonly range: (processId: ProcessId, query: RangeQuery) => Effect.Effect<ReadonlyArray<Entry>, StoreError>
    readonly getMessage: (
      id: string,
      processId?: ProcessId | undefined
    ) => Effect.Effect<Option.Option<Entry>, StoreError>
    readonly getProcess: (processId: ProcessId) => Effect.Effect<Option.Option<Entry>, StoreError>
    readonly listProcesses: () => Effect.Effect<ReadonlyArray<ProcessId>, StoreError>
  }
>() {}

/**
 * An in-memory store, for tests and for the library's default. Its writes are atomic but do not survive the
 * process. Each process's entries live in a slot-indexed array, so `range` by slot is a slice.
 *
 * @since 0.1.0
 */
export const makeMemory: Effect.Effect<AssignmentStore["Type"]> = Effect.sync(Memory.make)

/**
 * The in-memory store as a Layer; each build is a fresh, empty store.
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<AssignmentStore> = Layer.effect(AssignmentStore, makeMemory)

/**
 * Options of the SQL stores.
 *
 * - `batchSize`: the most appends committed in one transaction by the group-commit writer (default 128).
 *   Appends that arrive while a transaction runs wait for the next one, which takes up to `batchSize` of them.
 *
 * @since 0.1.0
 */
export interface SqlOptions {
  readonly batchSize?: number | undefined
}

/**
 * The durable store on the `SqlClient` in context (SQLite or PostgreSQL: the SQL is the same).
 *
 * Runs the schema migrations (`@effect/sql` Migrator, table `assignment_store_migrations`), then starts one
 * writer fiber in the current scope. Appends are queued; the writer takes up to `batchSize` of them and writes
 * them in one transaction (group commit), and each `append` returns after that transaction has committed, so
 * an acknowledged assignment is durable (as durable as the client's commit, see docs/storage.md). A
 * `StoreConflict` fails only its own append, never the batch. Mirrors `dev_scheduler_cache`'s write/read/list
 * with the legacy ao SU's tables, keyed by (process, slot) instead of timestamp (K12).
 *
 * Fails with `StoreError` (operation `migrate`) if the schema cannot be created or upgraded.
 *
 * @since 0.1.0
 */
export const makeSql = (
  options: SqlOptions = {}
): Effect.Effect<AssignmentStore["Type"], StoreError, SqlClient.SqlClient | Scope.Scope> => Sql.make(options)

/**
 * `makeSql` as a Layer over a `SqlClient` you provide (to share one client or pool with other services).
 *
 * @since 0.1.0
 */
export const layerSql = (options: SqlOptions = {}): Layer.Layer<AssignmentStore, StoreError, SqlClient.SqlClient> =>
  Layer.scoped(AssignmentStore, makeSql(options))

/**
 * Options of the SQLite store.
 *
 * - `filename`: the database file; its directory is created if missing. WAL mode adds `-wal` and `-shm` files
 *   beside it.
 * - `synchronous`: when SQLite fsyncs. `"FULL"` (default): every commit fsyncs the WAL, so an acknowledged
 *   append survives a process crash and an OS crash or power loss; it costs one fsync per transaction, which
 *   group commit shares among up to `batchSize` appends. `"NORMAL"`: the WAL is fsynced only at checkpoints;
 *   an acknowledged append survives a process crash (SIGKILL) but the last transactions may be lost on power
 *   loss, which would let the node sign a second assignment for a slot it had already acknowledged.
 *
 * @since 0.1.0
 */
export interface SqliteOptions extends SqlOptions {
  readonly filename: string
  readonly synchronous?: "FULL" | "NORMAL" | undefined
}

/**
 * The SQLite client the store uses: `@effect/sql-sqlite-node` (better-sqlite3, one connection) in WAL mode
 * with `PRAGMA synchronous` set from `options`. Fails with `StoreError` (operation `open`) if the file cannot be
 * opened.
 *
 * @since 0.1.0
 */
export const layerSqliteClient = (
  options: SqliteOptions
): Layer.Layer<SqliteClient.SqliteClient | SqlClient.SqlClient, StoreError> => Sqlite.layerClient(options)

/**
 * A durable store in the SQLite file `options.filename`. Fails with `StoreError` (operation `open` or
 * `migrate`). Layout and durability: docs/storage.md.
 *
 * @since 0.1.0
 */
export const layerSqlite = (options: SqliteOptions): Layer.Layer<AssignmentStore, StoreError> =>
  layerSql(options).pipe(Layer.provide(layerSqliteClient(options)))

/**
 * Options of the PostgreSQL store.
 *
 * - `url`: a `postgres://user:password@host:port/database` connection string (libpq parameters allowed).
 * - `schema`: the schema that holds the tables (default `public`), created if missing and set as every
 *   connection's `search_path`; a plain identifier (letters, digits, `_`). Give each test run its own.
 * - `maxConnections`: the pool size (default 10). Writes use one connection at a time; reads use the rest.
 *
 * @since 0.1.0
 */
export interface PgOptions extends SqlOptions {
  readonly url: string
  readonly schema?: string | undefined
  readonly maxConnections?: number | undefined
}

/**
 * The PostgreSQL client the store uses: `@effect/sql-pg` with `search_path` = `options.schema` and
 * `synchronous_commit = on` on every connection, after creating the schema if missing. Fails with `StoreError`
 * (operation `open`) if the server does not answer or the schema name is not a plain identifier.
 *
 * @since 0.1.0
 */
export const layerPgClient = (options: PgOptions): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, StoreError> =>
  Pg.layerClient(options)

/**
 * A durable store in PostgreSQL. Fails with `StoreError` (operation `open` or `migrate`). A COMMIT returns
 * once the server has flushed its WAL, so an acknowledged append survives a crash of this node or of the server.
 *
 * @since 0.1.0
 */
export const layerPg = (options: PgOptions): Layer.Layer<AssignmentStore, StoreError> =>
  layerSql(options).pipe(Layer.provide(layerPgClient(options)))

/**
 * Histogram of the number of appends committed per transaction by the SQL stores' group-commit writer
 * (`assignment_store_batch_size`, buckets 1, 2, 4, … 512). Its count is the number of transactions.
 *
 * @since 0.1.0
 */
export const batchSize: Metric.Metric.Histogram<number> = Sql.batchSize
