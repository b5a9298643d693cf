/**
 * Safe simultaneous start: three stores, each with its own connection pool (so three sessions race at the
 * server), open the same fresh schema at once, 30 times. Schema creation and the migrations run under one
 * advisory lock per schema, so every start succeeds and the schema is migrated exactly once.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as PgStore from "../../src/pg/PgStore.js"
import * as SqlStore from "../../src/sql/SqlStore.js"
import { pgUnavailable, pgUrl, randomSchema, redacted } from "../fixtures/pg.js"

const unavailable = await pgUnavailable(pgUrl)
if (unavailable !== undefined) {
  console.warn(`SKIPPED PostgreSQL migration-lock tests: no server at ${redacted(pgUrl)}: ${unavailable}`)
}

const TRIALS = 30
const STARTS = 3

/** Opens the store on `schema` (its own pool) and returns its recorded migration ids, or the failure. */
const start = (schema: string) =>
  Effect.gen(function* () {
    yield* SqlStore.make({})
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ migration_id: number }>`
      SELECT migration_id FROM assignment_store_migrations ORDER BY migration_id`
    return rows.map((r) => r.migration_id)
  }).pipe(Effect.scoped, Effect.provide(PgStore.layerClient({ url: pgUrl, schema, maxConnections: 2 })), Effect.either)

describe.skipIf(unavailable !== undefined)("PostgreSQL migrations under an advisory lock", () => {
  it.live(
    `${STARTS} stores starting together on a fresh schema, ${TRIALS} times: every start succeeds`,
    () =>
      Effect.gen(function* () {
        const schemas: Array<string> = []
        const failures: Array<string> = []
        for (let trial = 0; trial < TRIALS; trial++) {
          const schema = randomSchema("su_migrate")
          schemas.push(schema)
          const results = yield* Effect.all(
            Array.from({ length: STARTS }, () => start(schema)),
            { concurrency: "unbounded" }
          )
          for (const r of results) {
            if (r._tag === "Left") failures.push(`trial ${trial}: ${r.left.message}`)
            else expect(r.right).toEqual([1, 2, 3, 4, 5, 6])
          }
        }
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          Effect.forEach(schemas, (s) => sql`DROP SCHEMA IF EXISTS ${sql(s)} CASCADE`, { discard: true })
        ).pipe(Effect.provide(PgStore.layerClient({ url: pgUrl })))
        expect(failures).toEqual([])
      }),
    300_000
  )
})
