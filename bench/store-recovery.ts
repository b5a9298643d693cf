/**
 * What a restarting scheduler pays to find its head, and what reads and appends cost, on the durable stores.
 *
 * Seeds 100,000 assignments (1,100-byte data items, 1 KiB message bodies) for one process through the
 * group-commit writer, reopens the store, and times `latest`, `range(limit 1000)` and appends.
 * Run: `npx tsx bench/store-recovery.ts [rows]`. PostgreSQL: `PG_URL` or postgres://postgres@127.0.0.1:5432/test,
 * in a throwaway schema; skipped (with the reason) when no server answers. Figures go in docs/storage.md.
 */
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import { Effect, Layer } from "effect"
import { Message } from "../src/Assignment.js"
import * as AssignmentStore from "../src/AssignmentStore.js"
import type { StoreError } from "../src/errors.js"
import * as PgStore from "../src/pg/PgStore.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import { BASE_TIMESTAMP, fake, randomProcessId } from "../test/fixtures/assignments.js"
import { fmt, median, printHeader, printRow, scratchDir, time, withPgSchema } from "./store-measure.js"

const ROWS = Number(process.argv[2] ?? 100_000)

const row = (processId: ReturnType<typeof randomProcessId>, slot: number) => {
  const { assignment } = fake(processId, slot, { raw: Crypto.randomBytes(1100) })
  return { assignment, message: new Message({ id: assignment.messageId, raw: Crypto.randomBytes(1024) }) }
}

const store = AssignmentStore.AssignmentStore

/**
 * Seeds `ROWS` rows for one process, 512 appends in flight (group commit); rows are made 10,000 at a time
 * outside the timed part. Returns the process and the appends per second.
 */
const seed = Effect.gen(function* () {
  const s = yield* store
  const p = randomProcessId()
  let ms = 0
  for (let from = 0; from < ROWS; from += 10_000) {
    const rows = Array.from({ length: Math.min(10_000, ROWS - from) }, (_, i) => row(p, from + i))
    const t = yield* time(
      Effect.forEach(rows, (r) => s.append(r.assignment, r.message), { concurrency: 512, discard: true })
    )
    ms += t.ms
  }
  return { p, perSecond: (ROWS / ms) * 1000 }
})

/** Times the reads a restarting scheduler and a CU make, on a freshly opened store. */
const reads = (p: ReturnType<typeof randomProcessId>) =>
  Effect.gen(function* () {
    const s = yield* store
    const first = yield* time(s.latest(p))
    if (first.value._tag !== "Some" || first.value.value.slot !== ROWS - 1) return yield* Effect.die("wrong head")
    const latest = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.map(time(s.latest(p)), (t) => t.ms))
    const offsets = Array.from({ length: 7 }, (_, i) => Math.floor(((ROWS - 1001) * (i + 1)) / 7))
    const bySlot = yield* Effect.forEach(offsets, (from) =>
      Effect.map(time(s.range(p, { by: "slot", from, limit: 1000 })), (t) => {
        if (t.value.length !== 1000 || t.value[0]?.assignment.slot !== from + 1) throw new Error("bad range")
        return t.ms
      })
    )
    const byTs = yield* Effect.forEach(offsets, (from) =>
      Effect.map(time(s.range(p, { by: "timestamp", from: BASE_TIMESTAMP + from, limit: 1000 })), (t) => {
        if (t.value.length !== 1000 || t.value[0]?.assignment.slot !== from + 1) throw new Error("bad range")
        return t.ms
      })
    )
    return {
      latestFirst: first.ms,
      latestMedian: median(latest),
      rangeFirst: bySlot[0]!,
      rangeSlot: median(bySlot),
      rangeTimestamp: median(byTs)
    }
  })

/** Median latency of 200 appends one after another (one fiber: one transaction, one commit each). */
const sequentialAppend = Effect.gen(function* () {
  const s = yield* store
  const p = randomProcessId()
  const ms = yield* Effect.forEach(
    Array.from({ length: 200 }, (_, slot) => slot),
    (slot) => {
      const { assignment, message } = row(p, slot)
      return Effect.map(time(s.append(assignment, message)), (t) => t.ms)
    }
  )
  return median(ms)
})

const run = (name: string, layer: () => Layer.Layer<AssignmentStore.AssignmentStore, StoreError>) =>
  Effect.gen(function* () {
    const { p, perSecond } = yield* Effect.provide(seed, layer())
    // Reopen, as a restarting node does: open (with the migration check), then the reads, then single appends.
    const result = yield* Effect.scoped(
      Effect.gen(function* () {
        const opened = yield* time(Layer.build(layer()))
        const measured = yield* Effect.provide(Effect.zip(reads(p), sequentialAppend), opened.value)
        return { openMs: opened.ms, ...measured[0], appendMs: measured[1] }
      })
    )
    const cells = [
      name,
      ROWS.toLocaleString("en"),
      fmt(result.openMs),
      fmt(result.latestFirst),
      fmt(result.latestMedian),
      fmt(result.rangeFirst),
      fmt(result.rangeSlot),
      fmt(result.rangeTimestamp),
      fmt(result.appendMs),
      Math.round(perSecond).toLocaleString("en")
    ]
    yield* printRow(cells)
  })

const program = Effect.gen(function* () {
  yield* printHeader([
    "store",
    "rows",
    "open (ms)",
    "latest, first (ms)",
    "latest, median (ms)",
    "range 1000 by slot, first (ms)",
    "range 1000 by slot, median (ms)",
    "range 1000 by timestamp, median (ms)",
    "one append alone, median (ms)",
    "group-commit appends/s"
  ])
  const dir = yield* scratchDir("su-bench-")
  for (const synchronous of ["FULL", "NORMAL"] as const) {
    const filename = Path.join(dir, `${synchronous}.db`)
    yield* run(`SQLite ${synchronous}`, () => SqliteStore.layer({ filename, synchronous }))
  }
  yield* withPgSchema((url, schema) => run("PostgreSQL", () => PgStore.layer({ url, schema })))
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
