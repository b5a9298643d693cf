/**
 * Shared pieces of the store benchmarks (bench/store-recovery.ts, bench/restart-recovery.ts): timing an
 * effect, medians, millisecond formatting, the table header, a scratch folder, and a run against PostgreSQL in a
 * throwaway schema.
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { SqlClient } from "@effect/sql"
import { Effect, type Scope } from "effect"
import { StoreError } from "../src/errors.js"
import * as PgStore from "../src/pg/PgStore.js"

/** Runs `effect` and returns its value with the wall time it took, in ms. */
export const time = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = performance.now()
    const value = yield* effect
    return { value, ms: performance.now() - start }
  })

export const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Milliseconds with two decimals below 10, whole above. */
export const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(0))

/** Prints the machine (CPU model and count, Node, OS) and a Markdown table header with `columns`. */
export const printHeader = (columns: ReadonlyArray<string>) =>
  Effect.sync(() => {
    const cpus = Os.cpus()
    console.log(`${cpus[0]?.model ?? "cpu"} x${cpus.length}, node ${process.version}, ${Os.platform()} ${Os.release()}`)
    console.log(`| ${columns.join(" | ")} |`)
    console.log(`|${columns.map(() => "---|").join("")}`)
  })

/** Prints one row of the table. */
export const printRow = (cells: ReadonlyArray<string>) => Effect.sync(() => console.log(`| ${cells.join(" | ")} |`))

/** A fresh folder under the OS temp dir, removed when the scope closes. */
export const scratchDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

/**
 * Runs `run(url, schema)` against PostgreSQL (`PG_URL`, else postgres://postgres@127.0.0.1:5432/test) in a fresh
 * schema, dropped afterwards. With no server (a `StoreError`), prints a "skipped" table row with the reason.
 */
export const withPgSchema = <E, R>(
  run: (url: string, schema: string) => Effect.Effect<void, E | StoreError, R>
): Effect.Effect<void, Exclude<E, StoreError>, R> => {
  const url = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
  const schema = `su_bench_${Crypto.randomBytes(4).toString("hex")}`
  const dropSchema = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`)
  return run(url, schema).pipe(
    Effect.ensuring(Effect.ignore(Effect.provide(dropSchema, PgStore.layerClient({ url, schema })))),
    Effect.catchIf(
      (e): e is StoreError => e instanceof StoreError,
      (e) => Effect.sync(() => console.log(`| PostgreSQL | skipped: ${e.message} |`))
    )
  )
}
