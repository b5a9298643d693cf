/**
 * 100,000 assignments from SQLite to PostgreSQL through an export file: every one signed (by the fast test key,
 * test/fixtures/fast-key.ts) and verified on import, the chain checked in the target, the target's export
 * byte-identical to the file. Prints the export and import rates (docs/benchmarks.md).
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { initialHashChain, nextHashChain } from "../src/Assignment.js"
import { AssignmentStore } from "../src/AssignmentStore.js"
import type { ProcessId } from "../src/ProcessId.js"
import * as PgStore from "../src/pg/PgStore.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import * as Transfer from "../src/Transfer.js"
import { makeFastKey } from "./fixtures/fast-key.js"
import { tempDir } from "./fixtures/node.js"
import { dropSchemaOnClose, pgUnavailable, pgUrl, randomSchema } from "./fixtures/pg.js"
import { appendAll, openSql, signedSchedule } from "./fixtures/transfer.js"

const PROCESSES = 10
const SLOTS = 10_000
const COUNT = PROCESSES * SLOTS
const unavailable = await pgUnavailable(pgUrl)

const transferOf = (store: AssignmentStore["Type"]) => Effect.provideService(Transfer.make, AssignmentStore, store)

const seconds = (ms: number) => ms / 1000

/**
 * Follows an export's rows: checks each process's hash chain from slot 0 (the legacy SU / CU algorithm) and
 * counts rows per process. Fed the export text chunk by chunk.
 */
const chainChecker = () => {
  let rest = ""
  let current: { processId: string; next: number; hashChain: string } | undefined
  const counts = new Map<string, number>()
  let broken: string | undefined
  const feed = (text: string) => {
    const lines = (rest + text).split("\n")
    rest = lines.pop() ?? ""
    for (const line of lines) {
      const row = JSON.parse(line) as { process_id?: string; slot: number; hash_chain: string; assignment_id: string }
      if (row.process_id === undefined) continue // the header and end lines
      if (current?.processId !== row.process_id) {
        current = { processId: row.process_id, next: 0, hashChain: initialHashChain(row.process_id) }
      }
      if (row.slot !== current.next || row.hash_chain !== current.hashChain) broken ??= `${row.process_id}/${row.slot}`
      current.next++
      current.hashChain = nextHashChain(row.assignment_id, row.hash_chain)
      counts.set(row.process_id, current.next)
    }
  }
  return { feed, result: () => ({ broken, counts: [...counts.values()] }) }
}

describe.skipIf(unavailable !== undefined)("Transfer at scale", () => {
  it.scopedLive(
    `${COUNT.toLocaleString("en")} signed assignments: SQLite → file → PostgreSQL, verified, chains intact`,
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("su-transfer-scale-")
        const file = Path.join(dir, "export.ndjson")
        const key = makeFastKey()
        const lite = yield* openSql(SqliteStore.layerClient({ filename: Path.join(dir, "source.sqlite") }))
        const processIds: Array<ProcessId> = []
        let started = performance.now()
        for (let p = 0; p < PROCESSES; p++) {
          // one process at a time in memory; a message data item on every tenth slot, as assignments of
          // Arweave transactions carry none
          const rows = yield* signedSchedule(key, SLOTS, { messageEvery: 10 })
          processIds.push(rows[0]!.assignment.processId)
          yield* appendAll(lite.store, rows, 1024)
        }
        console.log(`generated and stored ${COUNT} signed assignments in ${seconds(performance.now() - started)} s`)

        const fs = yield* FileSystem.FileSystem
        const source = yield* transferOf(lite.store)
        started = performance.now()
        yield* Stream.run(source.export(), fs.sink(file))
        const exportMs = performance.now() - started
        const bytes = Fs.statSync(file).size

        const schema = randomSchema("su_transfer_scale")
        const postgres = yield* openSql(
          Layer.provideMerge(dropSchemaOnClose(schema), PgStore.layerClient({ url: pgUrl, schema }))
        )
        const target = yield* transferOf(postgres.store)
        started = performance.now()
        const summary = yield* target.import(fs.stream(file, { chunkSize: 64 * 1024 }))
        const importMs = performance.now() - started
        expect(summary).toEqual({ processes: PROCESSES, assignments: COUNT, appended: COUNT, skipped: 0 })

        const rate = (ms: number) =>
          `${Math.round(COUNT / seconds(ms))} assignments/s, ${(bytes / 1024 / 1024 / seconds(ms)).toFixed(1)} MB/s`
        console.log(
          `export file ${(bytes / 1024 / 1024).toFixed(1)} MB; SQLite export ${seconds(exportMs)} s (${rate(exportMs)}); ` +
            `PostgreSQL import ${seconds(importMs)} s (${rate(importMs)})`
        )

        started = performance.now()
        // one pass over the target's export: byte-identical to the file, and every chain intact from slot 0
        const hash = Crypto.createHash("sha256")
        const chains = chainChecker()
        const decoder = new TextDecoder()
        yield* Stream.runForEach(target.export(), (chunk) =>
          Effect.sync(() => {
            hash.update(chunk)
            chains.feed(decoder.decode(chunk, { stream: true }))
          })
        )
        expect(chains.result()).toEqual({ broken: undefined, counts: processIds.map(() => SLOTS) })
        console.log(`re-exported and checked the chains from PostgreSQL in ${seconds(performance.now() - started)} s`)
        expect(hash.digest("hex")).toBe(Crypto.createHash("sha256").update(Fs.readFileSync(file)).digest("hex"))
      }).pipe(Effect.provide(NodeFileSystem.layer)),
    900_000
  )
})
