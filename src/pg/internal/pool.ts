/**
 * The `pg` pool under the store's `PgClient`, as `@effect/sql-pg`'s own (`PgClient.make`: one `SELECT 1`
 * within 5,000 ms at start, idle-client errors ignored, `end()` for at most 1,000 ms at close) with one
 * difference: **a client released while it still runs a query is destroyed, not reused.** `@effect/sql-pg`
 * 0.53 releases a client as soon as the fiber of its query is interrupted (a timeout), while the query still
 * runs on it (a hung or slow connection); the next query on it would queue behind the interrupted one and `pg`
 * warns "Calling client.query() when the client is already executing a query" (deprecated, an error in pg 9).
 * Ending a busy client destroys its socket (`pg`'s `Client.end`), so the server ends its session and rolls its
 * transaction back; the pool opens a new connection for the next query.
 */
import { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, type Scope } from "effect"
import * as Pg from "pg"

/** Whether `client` still runs or queues a query (the fields `pg` itself checks before that warning). */
const busy = (client: Pg.PoolClient): boolean => {
  const internals = client as unknown as { readonly _activeQuery?: unknown; readonly _queryQueue?: ArrayLike<unknown> }
  return (internals._activeQuery ?? null) !== null || (internals._queryQueue?.length ?? 0) > 0
}

export interface PoolOptions {
  readonly url: string
  readonly maxConnections?: number | undefined
  readonly applicationName: string
}

export const acquire = (options: PoolOptions): Effect.Effect<Pg.Pool, SqlError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new Pg.Pool({
        connectionString: options.url,
        application_name: options.applicationName,
        ...(options.maxConnections === undefined ? {} : { max: options.maxConnections })
      })
      pool.on("error", () => {})
      // emitted before the pool decides to keep the client; an ending client is removed, not kept
      pool.on("release", (_error, client) => {
        if (busy(client)) void client.end().catch(() => {})
      })
      return pool
    }),
    (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(1_000))
  ).pipe(
    Effect.tap((pool) =>
      Effect.tryPromise({
        try: () => pool.query("SELECT 1"),
        catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" })
      }).pipe(
        Effect.timeoutFail({
          duration: Duration.seconds(5),
          onTimeout: () =>
            new SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" })
        })
      )
    )
  )
