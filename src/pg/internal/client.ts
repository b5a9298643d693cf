/**
 * The PostgreSQL client for the durable store: `@effect/sql-pg` with every connection's `search_path` set to
 * the store's schema (created if missing) and `synchronous_commit` forced on, over a pool that destroys a
 * client released while busy (./pool.ts).
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer } from "effect"
import { StoreError } from "../../errors.js"
import { MIGRATE_LOCK } from "../../sql/internal/schema.js"
import { layerOrStoreError } from "../../sql/internal/store.js"
import type { Options } from "../PgStore.js"
import * as Pool from "./pool.js"

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/**
 * `url` with the libpq `options` parameter set, so every pooled connection starts with our `search_path`,
 * `synchronous_commit = on` (a COMMIT returns only once its WAL is flushed, whatever the server default) and
 * the session timeouts of `options`. Throws on a timeout that is not a whole number of ms.
 */
const connectionUrl = (url: string, schema: string, options: Options): string => {
  const parsed = new URL(url)
  const timeouts = [
    ["statement_timeout", options.statementTimeoutMs],
    ["lock_timeout", options.lockTimeoutMs],
    ["idle_in_transaction_session_timeout", options.idleInTransactionTimeoutMs]
  ] as const
  let settings = `-c search_path=${schema} -c synchronous_commit=on`
  for (const [name, ms] of timeouts) {
    if (ms === undefined) continue
    if (!Number.isSafeInteger(ms) || ms < 0) throw new Error(`${name} must be a whole number of ms >= 0, got ${ms}`)
    settings += ` -c ${name}=${ms}`
  }
  const given = parsed.searchParams.get("options")
  parsed.searchParams.set("options", given === null ? settings : `${given} ${settings}`)
  return parsed.toString()
}

/** Connects, sets the schema and creates it if missing. Fails with `StoreError` (operation "open"). */
export const layerClient = (options: Options): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, StoreError> => {
  const schema = options.schema ?? "public"
  return Layer.unwrapEffect(
    Effect.try({
      try: () => {
        if (!IDENTIFIER.test(schema)) throw new Error(`schema ${JSON.stringify(schema)} is not a plain SQL identifier`)
        return connectionUrl(options.url, schema, options)
      },
      catch: (error) =>
        new StoreError({ operation: "open", reason: error instanceof Error ? error.message : String(error) })
    }).pipe(
      Effect.map((url) =>
        // a pool that destroys a client released while busy (./pool.ts), not `PgClient.layer`'s
        PgClient.layerFromPool({
          acquire: Pool.acquire({
            url,
            maxConnections: options.maxConnections,
            applicationName: "effect-scheduler-registry"
          }),
          applicationName: "effect-scheduler-registry"
        }).pipe(
          Layer.tap((context) => {
            const sql = Context.get(context, SqlClient.SqlClient)
            // under the migrations' advisory lock: two sessions racing on CREATE SCHEMA IF NOT EXISTS can fail
            return sql.withTransaction(
              Effect.all([
                sql`SET LOCAL lock_timeout = 0`,
                sql`SELECT pg_advisory_xact_lock(hashtextextended(${MIGRATE_LOCK + schema}, 0))`,
                sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`
              ])
            )
          })
        )
      )
    )
  ).pipe(layerOrStoreError("open"))
}
