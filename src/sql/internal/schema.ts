/**
 * The SQL schema of the durable stores (`SqlStore`, under `SqliteStore` and `PgStore`), as `@effect/sql`
 * Migrator migrations shared by SQLite and PostgreSQL: migration 1 creates the tables and indexes, migration 2
 * adds `node_json`, 3 the block-height index, 4 `exclude`, 5 the upload `outbox`, 6 `process_epochs` (fencing). Only the byte column type differs (BLOB / BYTEA). Layout and reasons: docs/storage.md.
 */
import { Migrator, SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** The Migrator's bookkeeping table. */
export const MIGRATIONS_TABLE = "assignment_store_migrations"

const statements = (bytes: string): ReadonlyArray<string> => [
  `CREATE TABLE assignments (
    process_id TEXT NOT NULL,
    slot BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    block_height BIGINT NOT NULL,
    hash_chain TEXT NOT NULL,
    assignment_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    assignment ${bytes} NOT NULL,
    message ${bytes},
    CONSTRAINT assignments_pkey PRIMARY KEY (process_id, slot),
    CONSTRAINT assignments_numbers_check CHECK (slot >= 0 AND epoch >= 0 AND timestamp >= 0 AND block_height >= 0),
    CONSTRAINT assignments_assignment_id_key UNIQUE (assignment_id),
    CONSTRAINT assignments_process_message_key UNIQUE (process_id, message_id)
  )`,
  "CREATE INDEX assignments_process_timestamp ON assignments (process_id, timestamp, slot)",
  "CREATE INDEX assignments_message_id ON assignments (message_id)",
  `CREATE TABLE processes (
    process_id TEXT NOT NULL PRIMARY KEY,
    first_timestamp BIGINT NOT NULL
  )`
]

const createTables = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const bytes = sql.onDialectOrElse({ pg: () => "BYTEA", orElse: () => "BLOB" })
  for (const statement of statements(bytes)) yield* sql.unsafe(statement)
})

/**
 * Migration 2, the read model of pages: each entry's legacy node JSON (UTF-8), written by `append` in the same
 * INSERT. NULL for rows written before this migration, for messages over `NODE_JSON_MAX_BYTES` and for message
 * bytes that are not a data item; such rows are rendered when read.
 */
const addNodeJson = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const bytes = sql.onDialectOrElse({ pg: () => "BYTEA", orElse: () => "BLOB" })
  yield* sql.unsafe(`ALTER TABLE assignments ADD COLUMN node_json ${bytes}`)
})

/**
 * `maxBlockHeight` (the Gateway's floor at start) reads `MAX(block_height)`: without an index that scans every
 * row (a million at scale); with it, one step to the end of the index.
 */
const addBlockHeightIndex = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe("CREATE INDEX assignments_block_height ON assignments (block_height)")
})

/**
 * AOP-1 `exclude`: the `Exclude` tag values of an assignment, as a JSON array of strings; NULL for none, so every
 * older row reads as it did.
 */
const addExclude = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe("ALTER TABLE assignments ADD COLUMN exclude TEXT")
})

/**
 * Migration 5, the upload outbox: one row per data item to upload to the bundler (the scheduled message's item,
 * the signed assignment), written by `append` in the assignment's transaction. The bytes stay in `assignments`
 * (joined by `assignment_id`), so nothing is stored twice. Times are ms; `uploaded_at` NULL = not yet uploaded.
 * The partial index keeps the drain's query on the items that wait, however many were uploaded.
 */
const addOutbox = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`CREATE TABLE outbox (
    item_id TEXT NOT NULL PRIMARY KEY,
    assignment_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    uploaded_at BIGINT,
    last_error TEXT,
    CONSTRAINT outbox_kind_check CHECK (kind IN ('message', 'assignment'))
  )`)
  yield* sql.unsafe("CREATE INDEX outbox_waiting ON outbox (next_attempt_at, created_at) WHERE uploaded_at IS NULL")
})

/**
 * Migration 6, fencing: each process's current writer epoch (`AssignmentStore.claim`). An append carrying an
 * epoch locks its process's row and checks the epoch in the append's own transaction; `claim` advances it. A
 * process without a row has epoch 0 (never claimed).
 */
const addProcessEpochs = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`CREATE TABLE process_epochs (
    process_id TEXT NOT NULL PRIMARY KEY,
    epoch BIGINT NOT NULL CHECK (epoch >= 0)
  )`)
})

/**
 * The Migrator: creates the bookkeeping table if missing, then applies the pending migrations in one
 * transaction that first locks the bookkeeping table.
 */
const migrator = Migrator.make({})({
  loader: Migrator.fromRecord({
    "1_create_assignments": createTables,
    "2_add_node_json": addNodeJson,
    "3_add_block_height_index": addBlockHeightIndex,
    "4_add_exclude": addExclude,
    "5_add_outbox": addOutbox,
    "6_add_process_epochs": addProcessEpochs
  }),
  table: MIGRATIONS_TABLE
})

/** The advisory-lock key text of the migrations of one schema (hashed to 64 bits by PostgreSQL). */
export const MIGRATE_LOCK = "effect-scheduler-registry/migrate/"

/**
 * Applies the pending migrations. On PostgreSQL the Migrator creates its bookkeeping table before it locks it,
 * and two sessions racing on `CREATE TABLE IF NOT EXISTS` can fail (`pg_type_typname_nsp_index`); so the whole
 * run, bookkeeping table included, is one transaction that first takes a transaction-level advisory lock keyed
 * by `MIGRATE_LOCK` + the schema. Nodes that start together queue on it: the first migrates, the others then
 * find every migration recorded and apply none. SQLite has one writer per file, so it needs no lock.
 */
export const migrate = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql.onDialectOrElse({
    pg: () =>
      sql.withTransaction(
        Effect.all([
          // however long another node's migrations take (the session timeouts are for the hot path)
          sql`SET LOCAL lock_timeout = 0`,
          sql`SET LOCAL statement_timeout = 0`,
          sql`SELECT pg_advisory_xact_lock(hashtextextended(${MIGRATE_LOCK} || current_schema(), 0))`,
          // the Migrator's own table, as it creates it: its existence check would abort this transaction
          sql`CREATE TABLE IF NOT EXISTS ${sql(MIGRATIONS_TABLE)} (
            migration_id integer primary key,
            created_at timestamp with time zone not null default now(),
            name text not null
          )`,
          migrator
        ]).pipe(Effect.asVoid)
      ),
    orElse: () => Effect.asVoid(migrator)
  })
)
