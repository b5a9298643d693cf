/**
 * The SQLite client for the durable store: `@effect/sql-sqlite-node` (better-sqlite3, one connection) in WAL
 * mode with the chosen `synchronous` level. Durability trade-offs: docs/storage.md.
 */
import * as Path from "node:path"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Context, Effect, Layer } from "effect"
import type { StoreError } from "../../errors.js"
import { makeDirectorySync } from "../../internal/directory.js"
import { CommitFlush } from "../../sql/internal/commit-flush.js"
import { layerOrStoreError } from "../../sql/internal/store.js"
import type { Options } from "../SqliteStore.js"
import * as WalFlush from "./wal-flush.js"

/** The WAL file is truncated back to this size (bytes) after a checkpoint; 10 MiB bodies would otherwise keep it large. */
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

/**
 * Reads map this much of the file (bytes) into memory instead of copying each page with a `read` call: a
 * 1,000-edge page walks a few thousand pages, and mapped reads halved its time. SQLite caps it at its build's
 * SQLITE_MAX_MMAP_SIZE (2 GiB in better-sqlite3's); pages past it are read as before. Writes still go through
 * `write` and the WAL, so durability is unchanged.
 */
const MMAP_SIZE = 2 ** 31

const configure = (sql: SqlClient.SqlClient, synchronous: "FULL" | "NORMAL") =>
  Effect.gen(function* () {
    yield* sql.unsafe(`PRAGMA synchronous = ${synchronous}`)
    yield* sql.unsafe(`PRAGMA journal_size_limit = ${JOURNAL_SIZE_LIMIT}`)
    yield* sql.unsafe(`PRAGMA mmap_size = ${MMAP_SIZE}`)
    const [mode] = yield* sql.unsafe<{ journal_mode: string }>("PRAGMA journal_mode")
    if (mode?.journal_mode !== "wal") {
      yield* Effect.logWarning(`SQLite store is not in WAL mode (${mode?.journal_mode}); writes will be slower`)
    }
  })

/**
 * The store's client: as `layerClient`, except that `synchronous = FULL` on a file is kept by the group-commit
 * writer rather than inside each COMMIT: the connection runs with NORMAL and `CommitFlush` fsyncs the WAL off the
 * event loop before a batch is acknowledged (`wal-flush.ts`).
 */
export const layerStoreClient = (
  options: Options
): Layer.Layer<SqliteClient.SqliteClient | SqlClient.SqlClient, StoreError> => {
  // the layer's type leaves `CommitFlush` out (it is internal); the store finds it in the context it is given
  if (options.filename === ":memory:" || (options.synchronous ?? "FULL") !== "FULL") return layerClient(options)
  const flush = Layer.scoped(
    CommitFlush,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => WalFlush.make(options.filename)),
        (wal) => wal.close
      ),
      (wal) => ({ flush: wal.flush })
    )
  )
  return Layer.merge(layerClient({ ...options, synchronous: "NORMAL" }), flush)
}

/** Creates the file's directory, opens the database (WAL) and sets `synchronous` (default FULL). */
export const layerClient = (
  options: Options
): Layer.Layer<SqliteClient.SqliteClient | SqlClient.SqlClient, StoreError> =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      if (options.filename !== ":memory:") makeDirectorySync(Path.dirname(options.filename))
      return SqliteClient.layer({ filename: options.filename }).pipe(
        Layer.tap((context) => configure(Context.get(context, SqlClient.SqlClient), options.synchronous ?? "FULL"))
      )
    })
  ).pipe(layerOrStoreError("open"))
