/**
 * The contract against a real PostgreSQL server: `PG_URL`, else postgres://postgres@127.0.0.1:5432/test.
 * Each run uses its own schema and drops it at the end. With no server, the suite is reported as skipped.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import * as PgStore from "../../src/pg/PgStore.js"
import * as SqlStore from "../../src/sql/SqlStore.js"
import { dropSchemaOnClose, pgUnavailable, pgUrl, randomSchema, redacted } from "../fixtures/pg.js"
import { contract } from "./contract.js"

const url = pgUrl
const schema = randomSchema("su_test")

const unavailable = await pgUnavailable(url)
if (unavailable !== undefined) {
  console.warn(`SKIPPED PostgreSQL store tests: no server at ${redacted(url)}: ${unavailable}`)
}

const client = PgStore.layerClient({ url, schema })
const clientForRun = Layer.provideMerge(dropSchemaOnClose(schema), client)
const store = Layer.provideMerge(SqlStore.layer(), clientForRun)

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
        expect(tables.map((t) => t.table_name)).toEqual([
          "assignment_store_migrations",
          "assignments",
          "outbox",
          "process_epochs",
          "processes"
        ])
        const [commit] = yield* sql<{ synchronous_commit: string }>`SHOW synchronous_commit`
        expect(commit?.synchronous_commit).toBe("on")
      })
    )

    it.effect("a schema name that is not a plain identifier fails with StoreError", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          Effect.provide(AssignmentStore.AssignmentStore, PgStore.layer({ url, schema: 'x"; DROP' }))
        )
        expect(error).toMatchObject({ _tag: "StoreError", operation: "open" })
      })
    )
  })
})
