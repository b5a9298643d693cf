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
import { layerOrStoreError } from "../../sql/internal/store.js"
import type { Options } from "../SqliteStore.js"

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
