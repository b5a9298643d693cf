/**
 * The SQLite store's writer lock (`SqliteStore.layerLock`): the write lock of a small SQLite database beside
 * the store, `<filename>.lock`, held by a transaction left open for the node's life.
 *
 * SQLite's locks are the operating system's (`fcntl`), which the kernel drops when the process dies, SIGKILL
 * included: a stale lock cannot outlive its holder, and a reused pid changes nothing. The lock database is in
 * WAL mode, so while one connection holds its write lock others can still read its `holder` row (pid, host,
 * start time), which names the holder in the second node's error.
 */
import * as Path from "node:path"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Layer } from "effect"
import { StoreError, StoreLocked } from "../../errors.js"
import { makeDirectorySync } from "../../internal/directory.js"
import * as StoreLock from "../../StoreLock.js"
import { reasonOf } from "../../sql/internal/append.js"
import { layerOrStoreError } from "../../sql/internal/store.js"

/** The lock file of the store `filename`. */
export const lockFileOf = (filename: string): string => `${filename}.lock`

const isBusy = (error: SqlError): boolean =>
  /^SQLITE_(BUSY|LOCKED)/.test(String((error.cause as { readonly code?: unknown } | undefined)?.code))

const lockError = (error: SqlError) => new StoreError({ operation: "lock", reason: reasonOf(error) })

/** Takes the lock through the lock database's client, or fails with `StoreLocked` naming the holder. */
const acquire = (filename: string) =>
  Effect.gen(function* () {
    const store = `the SQLite store ${filename}`
    const sql = yield* SqlClient.SqlClient
    const holderOf = sql
      .unsafe<{ pid: number | null; host: string | null; since: string | null }>(
        "SELECT pid, host, since FROM holder WHERE id = 1"
      )
      .pipe(Effect.orElseSucceed(() => []))
    const refused = Effect.flatMap(holderOf, ([row]) =>
      Effect.fail(
        new StoreLocked({
          store,
          holder: {
            ...(row?.pid == null ? {} : { pid: row.pid }),
            ...(row?.host == null ? {} : { host: row.host }),
            ...(row?.since == null ? {} : { since: row.since })
          }
        })
      )
    )
    // fail at once when the write lock is taken, instead of waiting for it
    const begin = sql.unsafe("BEGIN IMMEDIATE").pipe(Effect.catchIf(isBusy, () => refused))
    const me = StoreLock.self()
    yield* sql.unsafe("PRAGMA busy_timeout = 0").pipe(Effect.mapError(lockError))
    yield* begin.pipe(Effect.mapError((e) => (e._tag === "SqlError" ? lockError(e) : e)))
    yield* Effect.gen(function* () {
      yield* sql.unsafe(
        "CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER, host TEXT, since TEXT)"
      )
      yield* sql.unsafe("INSERT OR REPLACE INTO holder (id, pid, host, since) VALUES (1, ?, ?, ?)", [
        me.pid,
        me.host,
        me.since
      ])
      yield* sql.unsafe("COMMIT")
    }).pipe(Effect.mapError(lockError))
    // the row is visible to readers now; take the write lock again and keep it until released
    yield* begin.pipe(Effect.mapError((e) => (e._tag === "SqlError" ? lockError(e) : e)))
    yield* Effect.addFinalizer(() => Effect.ignore(sql.unsafe("ROLLBACK")))
    return { store, holder: me }
  })

/** The lock of the store `filename` as a Layer: taken when built, released with it. */
export const layerLock = (options: {
  readonly filename: string
}): Layer.Layer<StoreLock.StoreLock, StoreLocked | StoreError> =>
  // an in-memory database is private to its connection: there is nothing to share, so nothing to lock
  options.filename === ":memory:"
    ? Layer.succeed(StoreLock.StoreLock, { store: "the SQLite store :memory:", holder: StoreLock.self() })
    : Layer.unwrapEffect(
        Effect.try({
          try: () => {
            const filename = Path.resolve(options.filename)
            makeDirectorySync(Path.dirname(filename))
            return filename
          },
          catch: (error) =>
            new StoreError({
              operation: "lock",
              reason: `cannot create the directory ${Path.dirname(Path.resolve(options.filename))} (${
                (error as NodeJS.ErrnoException).code ?? String(error)
              })`
            })
        }).pipe(
          Effect.map((filename) =>
            Layer.scoped(StoreLock.StoreLock, acquire(filename)).pipe(
              Layer.provide(layerOrStoreError("lock")(SqliteClient.layer({ filename: lockFileOf(filename) })))
            )
          )
        )
      )
