import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option, Stream } from "effect"
import { build } from "../src/Assignment.js"
import * as AssignmentStore from "../src/AssignmentStore.js"
import * as PgStore from "../src/pg/PgStore.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import * as Wallet from "../src/Wallet.js"
import { assignmentSigner, makeFastKey } from "./fixtures/fast-key.js"
import { dropSchemaOnClose, pgUnavailable, pgUrl, randomSchema, redacted } from "./fixtures/pg.js"
import {
  appendAll,
  chunks,
  continueSchedule,
  exportText,
  importStream,
  importText,
  openSql,
  signedSchedule
} from "./fixtures/transfer.js"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-transfer-"))
afterAll(() => Fs.rmSync(dir, { recursive: true, force: true }))

const unavailable = await pgUnavailable(pgUrl)
if (unavailable !== undefined)
  console.warn(`SKIPPED PostgreSQL transfer tests: no server at ${redacted(pgUrl)}: ${unavailable}`)

const key = makeFastKey()
const otherKey = makeFastKey()

let sqliteFiles = 0
const sqlite = () => openSql(SqliteStore.layerClient({ filename: Path.join(dir, `store-${++sqliteFiles}.sqlite`) }))
const pg = () => {
  const schema = randomSchema("su_transfer")
  return openSql(Layer.provideMerge(dropSchemaOnClose(schema), PgStore.layerClient({ url: pgUrl, schema })))
}

/** Three processes: 7 slots with every message, 5 with every other one and an exclude list, and 1. */
const fixture = Effect.gen(function* () {
  const a = yield* signedSchedule(key, 7)
  const b = yield* signedSchedule(key, 5, { messageEvery: 2, exclude: true })
  const c = yield* signedSchedule(key, 1)
  return [...a, ...b, ...c]
})

/** The export lines of `text`, parsed. */
const lines = (text: string) => text.split("\n").filter((l) => l !== "")

/** `text` with line `index` (0-based) replaced by `f(parsed line)`. */
const editLine = (text: string, index: number, f: (row: Record<string, unknown>) => unknown) => {
  const ls = lines(text)
  ls[index] = JSON.stringify(f(JSON.parse(ls[index]!) as Record<string, unknown>))
  return `${ls.join("\n")}\n`
}

const memoryWith = (rows: Parameters<typeof appendAll>[1]) =>
  Effect.gen(function* () {
    const store = yield* AssignmentStore.makeMemory
    yield* appendAll(store, rows)
    return store
  })

describe("Transfer", () => {
  it.scopedLive("exports a header, each process's rows in slot order and an end line", () =>
    Effect.gen(function* () {
      const rows = yield* fixture
      const text = yield* exportText(yield* memoryWith(rows))
      const ls = lines(text).map((l) => JSON.parse(l) as Record<string, unknown>)
      expect(ls[0]).toEqual({ format: "ao-su-schedule", version: 1, su: Wallet.ownerToAddress(key.owner) })
      expect(ls.at(-1)).toEqual({ end: true, processes: 3, assignments: 13 })
      const body = ls.slice(1, -1)
      expect(body).toHaveLength(13)
      const ids = [...new Set(rows.map((r) => r.assignment.processId))].sort()
      expect([...new Set(body.map((r) => r.process_id))]).toEqual(ids)
      const first = rows[0]!
      const row = body.find((r) => r.assignment_id === first.assignment.id)!
      expect(row).toMatchObject({ slot: 0, message_id: first.assignment.processId, exclude: null })
      expect(Buffer.from(row.message as string, "base64url")).toEqual(Buffer.from(first.message.raw!))
      expect(body.filter((r) => r.message === null)).toHaveLength(2) // slots 1 and 3 of the second process
      expect(body.find((r) => r.exclude !== null)?.exclude).toEqual(["Data", "Tags"])
      // one process only
      const one = yield* exportText(yield* memoryWith(rows), { processId: first.assignment.processId })
      expect(lines(one)).toHaveLength(9)
      const missing = yield* Effect.flip(exportText(yield* memoryWith([]), { processId: first.assignment.processId }))
      expect(missing).toMatchObject({ _tag: "UnknownProcess", processId: first.assignment.processId })
      expect(yield* exportText(yield* memoryWith([]))).toBe(
        '{"format":"ao-su-schedule","version":1,"su":null}\n{"end":true,"processes":0,"assignments":0}\n'
      )
    })
  )

  it.scopedLive.skipIf(unavailable !== undefined)(
    "round trip memory → SQLite → PostgreSQL → SQLite → memory: byte-identical exports and rows",
    () =>
      Effect.gen(function* () {
        const rows = yield* fixture
        const memory = yield* memoryWith(rows)
        const text = yield* exportText(memory)
        const lite = yield* sqlite()
        expect(yield* importText(lite.store, text)).toEqual({ processes: 3, assignments: 13, appended: 13, skipped: 0 })
        const fromLite = yield* exportText(lite.store)
        expect(fromLite).toBe(text)
        const postgres = yield* pg()
        yield* importText(postgres.store, fromLite, 4096)
        expect(yield* exportText(postgres.store)).toBe(text)
        const lite2 = yield* sqlite()
        yield* importText(lite2.store, yield* exportText(postgres.store), 1)
        const liteRows = yield* lite.rows
        expect(liteRows).toHaveLength(13)
        expect(yield* postgres.rows).toEqual(liteRows)
        expect(yield* lite2.rows).toEqual(liteRows)
        const memory2 = yield* AssignmentStore.makeMemory
        yield* importText(memory2, yield* exportText(lite2.store))
        expect(yield* exportText(memory2)).toBe(text)
      })
  )

  it.scopedLive("refuses a gap, naming the process and the missing slot, and keeps the verified prefix", () =>
    Effect.gen(function* () {
      const rows = yield* signedSchedule(key, 6)
      const processId = rows[0]!.assignment.processId
      const text = yield* exportText(yield* memoryWith([...rows.slice(0, 2), ...rows.slice(3)]))
      const target = yield* AssignmentStore.makeMemory
      const error = yield* Effect.flip(importText(target, text))
      expect(error).toMatchObject({ _tag: "ImportGap", processId, slot: 2, found: 3 })
      expect(error.message).toContain(`process ${processId} has a gap, slot 2 is missing`)
      expect(Option.map(yield* target.latest(processId), (h) => h.slot)).toEqual(Option.some(1))
    })
  )

  it.scopedLive("refuses a fork, and appends the rest to a store that holds the same prefix", () =>
    Effect.gen(function* () {
      const rows = yield* signedSchedule(key, 4)
      const processId = rows[0]!.assignment.processId
      const text = yield* exportText(yield* memoryWith(rows))
      const prefix = yield* memoryWith(rows.slice(0, 2))
      expect(yield* importText(prefix, text)).toEqual({ processes: 1, assignments: 4, appended: 2, skipped: 2 })
      expect(yield* exportText(prefix)).toBe(text)
      const [alternative] = yield* continueSchedule(key, rows.slice(0, 2), 1)
      const forked = yield* memoryWith([...rows.slice(0, 2), alternative!])
      const error = yield* Effect.flip(importText(forked, text))
      expect(error).toMatchObject({ _tag: "ImportFork", processId, slot: 2 })
      expect(error.message).toContain(`process ${processId} forks at slot 2`)
      expect(Option.map(yield* forked.latest(processId), (h) => h.assignmentId)).toEqual(
        Option.some(alternative!.assignment.id)
      )
    })
  )

  it.scopedLive("refuses a bad signature of an assignment or of a message", () =>
    Effect.gen(function* () {
      const rows = yield* signedSchedule(key, 3)
      const processId = rows[0]!.assignment.processId
      const text = yield* exportText(yield* memoryWith(rows))
      const tamper = (field: "assignment" | "message") =>
        editLine(text, 2, (r) => {
          const bytes = Buffer.from(r[field] as string, "base64url")
          bytes[100] = bytes[100]! ^ 1 // inside the signature
          return { ...r, [field]: bytes.toString("base64url") }
        })
      const target = yield* AssignmentStore.makeMemory
      const bad = yield* Effect.flip(importText(target, tamper("assignment")))
      expect(bad).toMatchObject({ _tag: "ImportInvalid", processId, slot: 1, check: "signature" })
      const badMessage = yield* Effect.flip(importText(target, tamper("message")))
      expect(badMessage).toMatchObject({ _tag: "ImportInvalid", processId, slot: 1, check: "message" })
      // the columns must agree with the signed tags; the signer must be the header's SU
      const timestamp = editLine(text, 2, (r) => ({ ...r, timestamp: (r.timestamp as number) + 1 }))
      expect(yield* Effect.flip(importText(target, timestamp))).toMatchObject({ slot: 1, check: "tags" })
      const other = editLine(text, 0, (h) => ({ ...h, su: Wallet.ownerToAddress(otherKey.owner) }))
      expect(yield* Effect.flip(importText(target, other))).toMatchObject({ slot: 0, check: "signer" })
      // every refusal above came after slot 0 verified: slot 0 is all the target holds
      expect(Option.map(yield* target.latest(processId), (h) => h.slot)).toEqual(Option.some(0))
      expect(yield* importText(target, text)).toMatchObject({ appended: 2, skipped: 1 })
    })
  )

  it.scopedLive("refuses a signed assignment whose hash chain does not follow from slot 0", () =>
    Effect.gen(function* () {
      const rows = yield* signedSchedule(key, 2)
      const processId = rows[0]!.assignment.processId
      const { id: _, raw: __, ...fields } = rows[1]!.assignment
      const wrong = yield* build(assignmentSigner(key), { ...fields, hashChain: rows[0]!.assignment.hashChain })
      const text = yield* exportText(yield* memoryWith([rows[0]!, { ...rows[1]!, assignment: wrong }]))
      const error = yield* Effect.flip(importText(yield* AssignmentStore.makeMemory, text))
      expect(error).toMatchObject({ _tag: "ImportInvalid", processId, slot: 1, check: "hash-chain" })
    })
  )

  it.scopedLive("refuses a truncated or garbled line, a missing end line and a wrong header, naming the line", () =>
    Effect.gen(function* () {
      const text = yield* exportText(yield* memoryWith(yield* signedSchedule(key, 3)))
      const ls = lines(text)
      const refuse = (input: string) =>
        Effect.flatMap(AssignmentStore.makeMemory, (target) => Effect.flip(importText(target, input)))
      const cases: ReadonlyArray<readonly [string, number, string]> = [
        [text.slice(0, text.indexOf("\n", text.indexOf("\n") + 1) + 200), 3, "not JSON"],
        [`${ls.slice(0, -1).join("\n")}\n`, 5, "ends without its end line"],
        [[ls[0], ls[1], "garbage", ...ls.slice(2)].join("\n"), 3, "not JSON"],
        [[ls[0], ls[1], '{"slot":1}', ...ls.slice(2)].join("\n"), 3, "process_id is missing"],
        [[...ls, ls[1]].join("\n"), 6, "follows the end line"],
        [[...ls.slice(0, -1), '{"end":true,"processes":1,"assignments":4}'].join("\n"), 5, "counts 1 processes and 4"],
        [[ls[0], ls[1], ls[1], ...ls.slice(2)].join("\n"), 3, "repeats or is out of order"],
        [['{"format":"other","version":1,"su":null}', ...ls.slice(1)].join("\n"), 1, "not an ao-su-schedule export"],
        [['{"format":"ao-su-schedule","version":2,"su":null}', ...ls.slice(1)].join("\n"), 1, "version 2"],
        [ls.slice(1).join("\n"), 1, "not an ao-su-schedule export"],
        ["", 1, "the input is empty"]
      ]
      for (const [input, line, reason] of cases) {
        const error = yield* refuse(input)
        expect(error, reason).toMatchObject({ _tag: "TransferFormatError", line })
        expect(error.message).toContain(reason)
      }
    })
  )

  it.scopedLive("refuses a process split in two", () =>
    Effect.gen(function* () {
      const a = yield* signedSchedule(key, 2)
      const b = yield* signedSchedule(key, 1)
      const ls = lines(yield* exportText(yield* memoryWith([...a, ...b])))
      const byProcess = (id: string) => ls.filter((l) => l.includes(`"process_id":"${id}"`))
      const [pa, pb] = [byProcess(a[0]!.assignment.processId), byProcess(b[0]!.assignment.processId)]
      const split = [ls[0], pa[0], pb[0], pa[1], ls.at(-1)].join("\n")
      const error = yield* Effect.flip(importText(yield* AssignmentStore.makeMemory, split))
      expect(error).toMatchObject({ _tag: "TransferFormatError", line: 4 })
      expect(error.message).toContain("appears again after another process")
    })
  )

  it.scopedLive("resumes an interrupted import into SQLite: verified rows kept, the rest appended on re-run", () =>
    Effect.gen(function* () {
      const rows = [...(yield* signedSchedule(key, 30)), ...(yield* signedSchedule(key, 20))]
      const text = yield* exportText(yield* memoryWith(rows))
      const lite = yield* sqlite()
      const parts = chunks(text, 1000)
      const cut = Math.floor(parts.length / 2)
      const lost = new Error("connection lost")
      const first = yield* Effect.flip(
        importStream(lite.store, Stream.concat(Stream.fromIterable(parts.slice(0, cut)), Stream.fail(lost)))
      )
      expect(first).toBe(lost)
      const kept = (yield* lite.rows).length
      expect(kept).toBeGreaterThan(0)
      expect(kept).toBeLessThan(50)
      const summary = yield* importText(lite.store, text)
      expect(summary).toEqual({ processes: 2, assignments: 50, appended: 50 - kept, skipped: kept })
      expect(yield* exportText(lite.store)).toBe(text)
      // a third run has nothing left to do
      expect(yield* importText(lite.store, text)).toMatchObject({ appended: 0, skipped: 50 })
    })
  )

  it.scopedLive("resumes an import whose fiber was interrupted mid-way", () =>
    Effect.gen(function* () {
      const rows = yield* signedSchedule(key, 40)
      const text = yield* exportText(yield* memoryWith(rows))
      const lite = yield* sqlite()
      const parts = chunks(text, 1000)
      const halfway = yield* Deferred.make<void>()
      // the input stops half-way and never ends: the import waits on it until it is interrupted
      const input = Stream.concat(
        Stream.fromIterable(parts.slice(0, Math.floor(parts.length / 2))),
        Stream.fromEffect(Effect.zipRight(Deferred.succeed(halfway, undefined), Effect.never))
      )
      const fiber = yield* Effect.fork(importStream(lite.store, input))
      yield* Deferred.await(halfway)
      yield* Fiber.interrupt(fiber)
      const kept = (yield* lite.rows).length
      expect(kept).toBeGreaterThan(0)
      expect(kept).toBeLessThan(40)
      expect(kept % 8).toBe(0) // whole chunks of `inFlight` (8) rows
      expect(yield* importText(lite.store, text)).toEqual({
        processes: 1,
        assignments: 40,
        appended: 40 - kept,
        skipped: kept
      })
      expect(yield* exportText(lite.store)).toBe(text)
    })
  )
})
