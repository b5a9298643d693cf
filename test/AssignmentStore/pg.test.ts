/**
 * The contract against a real PostgreSQL server: `PG_URL`, else postgres://postgres@127.0.0.1:5432/test.
 * Each run uses its own schema and drops it at the end. With no server, the suite is reported as skipped.
 */
import * as Crypto from "node:crypto"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, layer } from "@effect/vitest"
import { Cause, Effect, Layer, Redacted } from "effect"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import { contract } from "./contract.js"

const url = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const schema = `su_test_${Date.now().toString(36)}_${Crypto.randomBytes(4).toString("hex")}`

const unavailable = await Effect.runPromise(
  Layer.build(PgClient.layer({ url: Redacted.make(url), connectTimeout: "3 seconds" })).pipe(
    Effect.scoped,
    Effect.as(undefined),
    Effect.catchAllCause((cause) => {
      const error = Cause.squash(cause)
      const detail = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : ""
      return Effect.succeed(`${String(error)}${detail}`)
    })
  )
)
if (unavailable !== undefined) {
  console.warn(`SKIPPED PostgreSQL store tests: no server at ${url.replace(/:[^:@/]*@/, ":***@")}: ${unavailable}`)
}

const client = AssignmentStore.layerPgClient({ url, schema })
const dropSchemaAtEnd = Layer.scopedDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.addFinalizer(() => Effect.orDie(sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`))
  )
)
const clientForRun = Layer.provideMerge(dropSchemaAtEnd, client)
const store = Layer.provideMerge(AssignmentStore.layerSql(), clientForRun)

describe.skipIf(unavailable !== undefined)("PostgreSQL", () => {
  contract("AssignmentStore PostgreSQL", store, { sql: true })

  layer(store, { excludeTestServices: true })("AssignmentStore PostgreSQL schema", (it) => {
    it.effect("tables live in the run's own schema and commits wait for the WAL flush", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [where] = yield* sql<{ schema: string }>`SELECT current_schema() AS schema`
        expect(where?.schema).toBe(schema)
        const tables = yield* sql<{ table_name: string }>`
          SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema} ORDER BY table_name`
        expect(tables.map((t) => t.table_name)).toEqual(["assignment_store_migrations", "assignments", "processes"])
        const [commit] = yield* sql<{ synchronous_commit: string }>`SHOW synchronous_commit`
        expect(commit?.synchronous_commit).toBe("on")
      })
    )

    it.effect("a schema name that is not a plain identifier fails with StoreError", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          Effect.provide(AssignmentStore.AssignmentStore, AssignmentStore.layerPg({ url, schema: 'x"; DROP' }))
        )
        expect(error).toMatchObject({ _tag: "StoreError", operation: "open" })
      })
    )
  })
})
