/**
 * The AssignmentStore contract, written once and run against every layer (memory, SQLite, PostgreSQL).
 * The layer is built once per suite, so every case works on fresh random process ids.
 */
import * as Crypto from "node:crypto"
import { expect, layer } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, Metric, Option } from "effect"
import { Assignment, build, initialHashChain, Message, verify } from "../../src/Assignment.js"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import { Fenced, StoreConflict } from "../../src/errors.js"
import { nodeJsonText } from "../../src/internal/wire-format.js"
import type { ProcessId } from "../../src/ProcessId.js"
import * as SqlStore from "../../src/sql/SqlStore.js"
import { Wallet } from "../../src/Wallet.js"
import { fake, randomMessageId, randomProcessId, type Scheduled, schedule } from "../fixtures/assignments.js"
import { messageTags, signedItem } from "../fixtures/dataItems.js"
import { WalletTest } from "../fixtures/wallet.js"

const fields = (a: Assignment) => ({
  id: a.id,
  processId: a.processId,
  messageId: a.messageId,
  slot: a.slot,
  epoch: a.epoch,
  timestamp: a.timestamp,
  blockHeight: a.blockHeight,
  hashChain: a.hashChain,
  raw: Buffer.from(a.raw).toString("base64")
})

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
  a !== undefined && b !== undefined && Buffer.compare(a, b) === 0

const appendAll = (entries: ReadonlyArray<Scheduled>) =>
  Effect.flatMap(AssignmentStore.AssignmentStore, (store) =>
    Effect.forEach(entries, (e) => store.append(e.assignment, e.message), { discard: true })
  )

const signed = (count: number, options?: Parameters<typeof schedule>[3]) =>
  Effect.flatMap(Wallet, (wallet) => schedule(wallet, randomProcessId(), count, options))

/** Signs a `count`-slot schedule for a fresh process and appends it; returns the entries. */
const stored = (count: number, options?: Parameters<typeof schedule>[3]) =>
  Effect.tap(signed(count, options), appendAll)

/** The slots `range` returns for `processId` and `query`. */
const slotsOf = (processId: ProcessId, query: AssignmentStore.RangeQuery) =>
  Effect.flatMap(AssignmentStore.AssignmentStore, (store) =>
    Effect.map(store.range(processId, query), (es) => es.map((e) => e.assignment.slot))
  )

const conflictOf = (e: Scheduled) =>
  Effect.flatMap(AssignmentStore.AssignmentStore, (store) => Effect.flip(store.append(e.assignment, e.message)))

export interface ContractOptions {
  /** The layer is a SQL store: concurrent appends share transactions and the schema rejects bad rows. */
  readonly sql?: boolean
  /** The store's `batchSize` (most appends per transaction), if not the default. */
  readonly batchSize?: number
}

/** `AssignmentStore`'s default `batchSize` (see its options). */
const DEFAULT_BATCH_SIZE = 128

export const contract = <E>(
  name: string,
  store: Layer.Layer<AssignmentStore.AssignmentStore, E>,
  options: ContractOptions = {}
) =>
  layer(Layer.merge(store, WalletTest), { excludeTestServices: true, timeout: "60 seconds" })(name, (it) => {
    it.effect("fencing: after a claim, an append with the older epoch fails with Fenced and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const p = randomProcessId()
        const first = yield* store.claim(p)
        expect(first).toBe(1)
        const [s0, s1, s1b] = [fake(p, 0), fake(p, 1), fake(p, 1)]
        yield* store.append(s0.assignment, s0.message, { epoch: first })
        const second = yield* store.claim(p)
        expect(second).toBe(2)
        // the old owner's next write: refused by its epoch, never by the primary key
        const stale = yield* Effect.flip(store.append(s1.assignment, s1.message, { epoch: first }))
        expect(stale).toEqual(new Fenced({ processId: p, epoch: 1, current: 2 }))
        expect(Option.map(yield* store.latest(p), (l) => l.slot)).toEqual(Option.some(0))
        // the new owner writes the same slot; an append without an epoch is not fenced
        yield* store.append(s1b.assignment, s1b.message, { epoch: second })
        expect(Option.map(yield* store.latest(p), (l) => l.assignmentId)).toEqual(Option.some(s1b.assignment.id))
        const s2 = fake(p, 2)
        yield* store.append(s2.assignment, s2.message)
        // an epoch from no claim at all (a process never claimed has epoch 0)
        const q = randomProcessId()
        const never = fake(q, 0)
        expect(yield* Effect.flip(store.append(never.assignment, never.message, { epoch: 1 }))).toEqual(
          new Fenced({ processId: q, epoch: 1, current: 0 })
        )
      })
    )

    it.effect("fencing: in one batch a stale append fails alone; the other processes' appends land", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const ps = Array.from({ length: 20 }, () => randomProcessId())
        const epochs = yield* Effect.forEach(ps, (p) => store.claim(p))
        const stale = ps[7]!
        yield* store.claim(stale)
        const results = yield* Effect.forEach(
          ps,
          (p, i) => {
            const e = fake(p, 0)
            return Effect.either(store.append(e.assignment, e.message, { epoch: epochs[i] }))
          },
          { concurrency: "unbounded" }
        )
        expect(results.map((r) => (Either.isRight(r) ? "ok" : r.left._tag))).toEqual(
          ps.map((p) => (p === stale ? "Fenced" : "ok"))
        )
        for (const p of ps) expect(Option.isSome(yield* store.latest(p))).toBe(p !== stale)
      })
    )

    it.effect("append then latest returns the head of the max slot", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const entries = yield* stored(5)
        const head = entries[4]!.assignment
        expect(yield* store.latest(head.processId)).toEqual(
          Option.some({ slot: 4, hashChain: head.hashChain, assignmentId: head.id, timestamp: head.timestamp })
        )
        expect(yield* store.latest(randomProcessId())).toEqual(Option.none())
      })
    )

    it.effect("range by slot: from exclusive, to inclusive, limit, ascending, entries intact", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const entries = yield* stored(6)
        const p = entries[0]!.assignment.processId
        const slots = (query: AssignmentStore.RangeQuery) => slotsOf(p, query)
        expect(yield* slots({ by: "slot", limit: 100 })).toEqual([0, 1, 2, 3, 4, 5])
        expect(yield* slots({ by: "slot", from: 1, to: 4, limit: 100 })).toEqual([2, 3, 4])
        expect(yield* slots({ by: "slot", from: 1, limit: 2 })).toEqual([2, 3])
        expect(yield* slots({ by: "slot", to: 0, limit: 100 })).toEqual([0])
        expect(yield* slots({ by: "slot", from: 5, limit: 100 })).toEqual([])
        expect(yield* slots({ by: "slot", from: 4, to: 2, limit: 100 })).toEqual([])
        const got = yield* store.range(p, { by: "slot", from: 2, to: 3, limit: 10 })
        expect(got.map((e) => fields(e.assignment))).toEqual([fields(entries[3]!.assignment)])
        expect(sameBytes(got[0]!.message, entries[3]!.message.raw)).toBe(true)
      })
    )

    it.effect("range by timestamp: from exclusive, to inclusive, limit, ascending by slot", () =>
      Effect.gen(function* () {
        const entries = yield* stored(6)
        const p = entries[0]!.assignment.processId
        const ts = entries.map((e) => e.assignment.timestamp)
        const slots = (query: Omit<AssignmentStore.RangeQuery, "by">) => slotsOf(p, { by: "timestamp", ...query })
        expect(yield* slots({ limit: 100 })).toEqual([0, 1, 2, 3, 4, 5])
        expect(yield* slots({ from: ts[1]!, to: ts[4]!, limit: 100 })).toEqual([2, 3, 4])
        expect(yield* slots({ from: ts[1]! + 1, to: ts[4]! - 1, limit: 100 })).toEqual([2, 3])
        expect(yield* slots({ from: ts[0]!, limit: 3 })).toEqual([1, 2, 3])
        expect(yield* slots({ to: ts[0]!, limit: 100 })).toEqual([0])
        expect(yield* slots({ from: ts[5]!, limit: 100 })).toEqual([])
      })
    )

    it.effect("page: bounded by count and by bytes, one entry at least, more when entries follow", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const entries = yield* stored(6, { bodyBytes: 2_000 })
        const p = entries[0]!.assignment.processId
        const ts = entries.map((e) => e.assignment.timestamp)
        const page = (query: AssignmentStore.PageQuery) =>
          Effect.map(store.page(p, query), ({ entries, more }) => ({
            slots: entries.map((e) => e.assignment.slot),
            more
          }))
        // the bytes each entry counts for: its node JSON when read for pages (SQL stores), else its bytes
        const sizeOf = (nodeJsonOnly: boolean) =>
          Effect.map(store.range(p, { by: "slot", limit: 10, nodeJsonOnly }), (es) =>
            es.map((e) =>
              nodeJsonOnly && e.nodeJson !== undefined
                ? e.nodeJson.byteLength
                : e.assignment.raw.byteLength + (e.message?.byteLength ?? 0)
            )
          )
        const sizes = yield* sizeOf(false)
        expect(sizes.every((n) => n > 2_000)).toBe(true)
        const total = sizes.reduce((a, b) => a + b, 0)
        expect(yield* page({ by: "slot", limit: 3 })).toEqual({ slots: [0, 1, 2], more: true })
        expect(yield* page({ by: "slot", limit: 10 })).toEqual({ slots: [0, 1, 2, 3, 4, 5], more: false })
        expect(yield* page({ by: "slot", limit: 10, maxBytes: total })).toEqual({
          slots: [0, 1, 2, 3, 4, 5],
          more: false
        })
        expect(yield* page({ by: "slot", limit: 10, maxBytes: total - 1 })).toEqual({
          slots: [0, 1, 2, 3, 4],
          more: true
        })
        expect(yield* page({ by: "slot", limit: 10, maxBytes: sizes[0]! + sizes[1]! })).toEqual({
          slots: [0, 1],
          more: true
        })
        // an entry larger than the bound comes back alone
        expect(yield* page({ by: "slot", limit: 10, maxBytes: 1 })).toEqual({ slots: [0], more: true })
        expect(yield* page({ by: "slot", from: 3, limit: 10, maxBytes: 1 })).toEqual({ slots: [4], more: true })
        expect(yield* page({ by: "slot", from: 4, limit: 10, maxBytes: 1 })).toEqual({ slots: [5], more: false })
        expect(yield* page({ by: "slot", from: 5, limit: 10, maxBytes: 1 })).toEqual({ slots: [], more: false })
        // `to` ends the range: nothing follows within it
        expect(yield* page({ by: "timestamp", to: ts[2]!, limit: 10, maxBytes: total })).toEqual({
          slots: [0, 1, 2],
          more: false
        })
        expect(yield* page({ by: "timestamp", from: ts[0]!, to: ts[2]!, limit: 10, maxBytes: 1 })).toEqual({
          slots: [1],
          more: true
        })
        // read for pages, an entry counts for its node JSON where the store keeps one
        const light = yield* sizeOf(true)
        expect(yield* page({ by: "slot", limit: 10, nodeJsonOnly: true, maxBytes: light[0]! + light[1]! })).toEqual({
          slots: [0, 1],
          more: true
        })
      })
    )

    it.effect("a second write to a slot fails with StoreConflict and changes nothing", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const entries = yield* stored(2)
        const p = entries[0]!.assignment.processId
        const other = fake(p, 1)
        const error = yield* conflictOf(other)
        expect(error).toBeInstanceOf(StoreConflict)
        expect(error).toMatchObject({ processId: p, slot: 1, reason: "slot already written" })
        const saved = yield* store.range(p, { by: "slot", from: 0, limit: 10 })
        expect(saved.map((e) => e.assignment.id)).toEqual([entries[1]!.assignment.id])
      })
    )

    it.effect("a duplicate assignment id fails with StoreConflict", () =>
      Effect.gen(function* () {
        const entries = yield* stored(1)
        const again = fake(randomProcessId(), 0, { id: entries[0]!.assignment.id })
        expect(yield* conflictOf(again)).toMatchObject({
          _tag: "StoreConflict",
          reason: "assignment id already written"
        })
      })
    )

    it.effect("a message scheduled twice in one process fails; in two processes it is allowed", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const p = randomProcessId()
        const q = randomProcessId()
        const messageId = randomMessageId()
        yield* appendAll([fake(p, 0), fake(p, 1, { messageId })])
        expect(yield* conflictOf(fake(p, 2, { messageId }))).toMatchObject({
          _tag: "StoreConflict",
          processId: p,
          slot: 2,
          reason: "message already scheduled"
        })
        yield* appendAll([fake(q, 0), fake(q, 1, { messageId })])
        expect(Option.map(yield* store.latest(p), (l) => l.slot)).toEqual(Option.some(1))
        expect(Option.map(yield* store.latest(q), (l) => l.slot)).toEqual(Option.some(1))
        const inQ = yield* store.getMessage(messageId, q)
        expect(Option.map(inQ, (e) => e.assignment.processId)).toEqual(Option.some(q))
      })
    )

    it.effect("K12: two slots sharing a timestamp, latest is the max slot whatever the write order", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const T = 1_720_000_000_000
        const entries = yield* signed(7, { timestampOf: (slot) => (slot >= 5 ? T : T - 10 + slot) })
        yield* appendAll([...entries.slice(0, 5), entries[6]!, entries[5]!])
        const p = entries[0]!.assignment.processId
        expect(yield* store.latest(p)).toEqual(
          Option.some({
            slot: 6,
            hashChain: entries[6]!.assignment.hashChain,
            assignmentId: entries[6]!.assignment.id,
            timestamp: T
          })
        )
        const page = yield* store.range(p, { by: "timestamp", from: T - 10 + 4, limit: 10 })
        expect(page.map((e) => e.assignment.slot)).toEqual([5, 6])
      })
    )

    it.effect("getMessage finds an entry by message id or assignment id, optionally within a process", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const entries = yield* stored(3)
        const { assignment, message } = entries[2]!
        const byMessage = yield* store.getMessage(message.id)
        expect(Option.map(byMessage, (e) => fields(e.assignment))).toEqual(Option.some(fields(assignment)))
        expect(sameBytes(Option.getOrThrow(byMessage).message, message.raw)).toBe(true)
        const byAssignment = yield* store.getMessage(assignment.id)
        expect(Option.map(byAssignment, (e) => e.assignment.slot)).toEqual(Option.some(2))
        const scoped = yield* store.getMessage(message.id, assignment.processId)
        expect(Option.map(scoped, (e) => e.assignment.id)).toEqual(Option.some(assignment.id))
        expect(yield* store.getMessage(message.id, randomProcessId())).toEqual(Option.none())
        expect(yield* store.getMessage(randomMessageId())).toEqual(Option.none())
      })
    )

    it.effect("getProcess returns the slot-0 entry; an assignment without message bytes reads back undefined", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const entries = yield* signed(2)
        const p = entries[0]!.assignment.processId
        const onChain = fake(p, 2)
        yield* appendAll([...entries, { ...onChain, message: new Message({ id: onChain.assignment.messageId }) }])
        const process = yield* store.getProcess(p)
        expect(Option.map(process, (e) => fields(e.assignment))).toEqual(Option.some(fields(entries[0]!.assignment)))
        expect(sameBytes(Option.getOrThrow(process).message, entries[0]!.message.raw)).toBe(true)
        expect(yield* store.getProcess(randomProcessId())).toEqual(Option.none())
        const last = yield* store.range(p, { by: "slot", from: 1, limit: 10 })
        expect(last.map((e) => [e.assignment.slot, e.message])).toEqual([[2, undefined]])
      })
    )

    it.effect("listProcesses lists every process with an assignment", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const ps = [randomProcessId(), randomProcessId(), randomProcessId()]
        yield* appendAll(ps.map((p) => fake(p, 0)))
        const listed = yield* store.listProcesses()
        expect(ps.every((p) => listed.includes(p))).toBe(true)
        expect(new Set(listed).size).toBe(listed.length)
      })
    )

    it.effect("maxBlockHeight is the highest Block-Height stored (the Gateway's floor)", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const before = Option.getOrElse(yield* store.maxBlockHeight(), () => 0)
        const high = new Assignment({ ...fake(randomProcessId(), 0).assignment, blockHeight: before + 1_000 })
        yield* appendAll([{ assignment: high, message: new Message({ id: high.messageId }) }])
        const low = new Assignment({ ...fake(randomProcessId(), 0).assignment, blockHeight: 1 })
        yield* appendAll([{ assignment: low, message: new Message({ id: low.messageId }) }])
        expect(yield* store.maxBlockHeight()).toEqual(Option.some(before + 1_000))
      })
    )

    it.effect("an assignment with Exclude tags (AOP-1) round-trips: fields, rendered tags and signature", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const wallet = yield* Wallet
        const p = randomProcessId()
        const messageId = randomMessageId()
        const exclude = ["Data", " Anchor", "Tags"]
        const assignment = yield* build(wallet, {
          processId: p,
          messageId,
          slot: 0,
          epoch: 0,
          timestamp: 1_719_830_000_000,
          blockHeight: 1_600_000,
          hashChain: initialHashChain(p),
          exclude
        })
        expect(assignment.exclude).toEqual(exclude)
        expect(yield* verify(assignment)).toBeUndefined()
        yield* store.append(assignment, new Message({ id: messageId }))
        const found = Option.getOrThrow(yield* store.getMessage(assignment.id))
        expect(found.assignment.exclude).toEqual(exclude)
        expect(yield* verify(found.assignment)).toBeUndefined()
        const [read] = yield* store.range(p, { by: "slot", limit: 1, nodeJsonOnly: true })
        const json = JSON.parse(
          new TextDecoder().decode(read!.nodeJson ?? new TextEncoder().encode(nodeJsonText(read!)))
        )
        expect(json.assignment.tags.slice(9)).toEqual([
          { name: "Message", value: messageId },
          ...exclude.map((value) => ({ name: "Exclude", value }))
        ])
      })
    )

    it.effect("a 10 MiB message body round-trips byte for byte", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const p = randomProcessId()
        const body = Crypto.randomBytes(10 * 1024 * 1024 + 1)
        const entry = fake(p, 0)
        const message = new Message({ id: entry.assignment.messageId, raw: body })
        yield* store.append(entry.assignment, message)
        const read = Option.getOrThrow(yield* store.getMessage(entry.assignment.messageId))
        expect(read.message?.length).toBe(body.length)
        expect(sameBytes(read.message, body)).toBe(true)
        const [ranged] = yield* store.range(p, { by: "slot", limit: 1 })
        expect(sameBytes(ranged?.message, body)).toBe(true)
      })
    )

    it.effect("concurrent appends for many processes all land, in order, each caller with its own result", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const before = yield* Metric.value(SqlStore.batchSize)
        const processes = Array.from({ length: 200 }, () => randomProcessId())
        const schedules = processes.map((p) => [0, 1, 2].map((slot) => fake(p, slot)))
        const results = yield* Effect.forEach(
          schedules,
          (entries) => Effect.forEach(entries, (e) => Effect.either(store.append(e.assignment, e.message))),
          { concurrency: "unbounded" }
        )
        expect(results.flat().every(Either.isRight)).toBe(true)
        for (const entries of schedules) {
          const p = entries[0]!.assignment.processId
          const got = yield* store.range(p, { by: "slot", limit: 10 })
          expect(got.map((e) => e.assignment.id)).toEqual(entries.map((e) => e.assignment.id))
        }
        if (options.sql) {
          // every append went through the group-commit writer, once
          const after = yield* Metric.value(SqlStore.batchSize)
          expect(after.sum - before.sum).toBe(600)
        }
      })
    )

    if (options.sql) {
      it.effect("group commit: appends queued while the writer waits are written batchSize at a time", () =>
        Effect.gen(function* () {
          const store = yield* AssignmentStore.AssignmentStore
          const batch = options.batchSize ?? DEFAULT_BATCH_SIZE
          const count = 600
          const entries = Array.from({ length: count }, () => fake(randomProcessId(), 0))
          const before = yield* Metric.value(SqlStore.batchSize)
          // Forked without yielding (no preemption): every caller's fiber is scheduled before the first one runs,
          // so the writer, woken by the first append, runs only after all of them have queued their append. It
          // takes the first, waits for the rest of the event loop's turn, and fills the batch from the queue:
          // batchSize at a time.
          const fibers = yield* Effect.forEach(entries, (e) =>
            Effect.fork(Effect.either(store.append(e.assignment, e.message)))
          ).pipe(Effect.withMaxOpsBeforeYield(Number.MAX_SAFE_INTEGER))
          const results = yield* Fiber.joinAll(fibers)
          expect(results.every(Either.isRight)).toBe(true)
          const after = yield* Metric.value(SqlStore.batchSize)
          expect(after.sum - before.sum).toBe(count)
          expect(after.count - before.count).toBe(Math.ceil(count / batch))
          for (const e of [entries[0]!, entries[count - 1]!]) {
            const read = yield* store.getMessage(e.assignment.messageId)
            expect(Option.map(read, (r) => r.assignment.id)).toEqual(Option.some(e.assignment.id))
          }
        })
      )
    }

    it.effect("clashing appends submitted together: the first lands, each later one fails with its own reason", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const p = randomProcessId()
        const first = fake(p, 1)
        const sameSlot = fake(p, 1)
        const sameMessage = fake(p, 2, { messageId: first.assignment.messageId })
        const sameId = fake(randomProcessId(), 0, { id: first.assignment.id })
        const all = [fake(p, 0), first, sameSlot, sameMessage, sameId, first]
        const results = yield* Effect.forEach(all, (e) => Effect.either(store.append(e.assignment, e.message)), {
          concurrency: "unbounded"
        })
        expect(
          results.map((r) => (Either.isRight(r) ? "ok" : "reason" in r.left ? r.left.reason : r.left._tag))
        ).toEqual([
          "ok",
          "ok",
          "slot already written",
          "message already scheduled",
          "assignment id already written",
          "slot already written"
        ])
        const saved = yield* store.range(p, { by: "slot", limit: 10 })
        expect(saved.map((e) => e.assignment.id)).toEqual([all[0]!.assignment.id, first.assignment.id])
      })
    )

    it.effect("a conflict inside a concurrent batch fails only that caller", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const taken = Array.from({ length: 10 }, () => fake(randomProcessId(), 0))
        yield* appendAll(taken)
        const fresh = Array.from({ length: 90 }, () => fake(randomProcessId(), 0))
        const clashes = taken.map((t) => fake(t.assignment.processId, 0))
        const all = [...fresh.slice(0, 45), ...clashes, ...fresh.slice(45)]
        const results = yield* Effect.forEach(all, (e) => Effect.either(store.append(e.assignment, e.message)), {
          concurrency: "unbounded"
        })
        results.forEach((result, i) => {
          const e = all[i]!
          if (clashes.includes(e)) {
            expect(Either.getLeft(result)).toEqual(
              Option.some(
                new StoreConflict({ processId: e.assignment.processId, slot: 0, reason: "slot already written" })
              )
            )
          } else {
            expect(Either.isRight(result)).toBe(true)
          }
        })
        for (const e of fresh) {
          expect(Option.map(yield* store.latest(e.assignment.processId), (l) => l.assignmentId)).toEqual(
            Option.some(e.assignment.id)
          )
        }
        for (const t of taken) {
          expect(Option.map(yield* store.latest(t.assignment.processId), (l) => l.assignmentId)).toEqual(
            Option.some(t.assignment.id)
          )
        }
      })
    )
    if (options.sql) {
      it.effect("the read model: each entry comes back with its node JSON as written at append, or none", () =>
        Effect.gen(function* () {
          const store = yield* AssignmentStore.AssignmentStore
          const wallet = yield* Wallet
          const p = randomProcessId()
          const [process, small, noItem, big] = yield* schedule(wallet, p, 4)
          const item = (bytes: number) =>
            Effect.promise(() => signedItem({ data: "x".repeat(bytes), tags: messageTags(), target: p }))
          const smallItem = yield* item(10)
          const bigItem = yield* item(AssignmentStore.NODE_JSON_MAX_BYTES + 1)
          const entries = [
            {
              assignment: process!.assignment,
              message: new Message({ id: process!.message.id, raw: (yield* item(5)).getRaw() })
            },
            { assignment: small!.assignment, message: new Message({ id: small!.message.id, raw: smallItem.getRaw() }) },
            // the library accepts any bytes as a message; they are not a data item, so no JSON is kept
            {
              assignment: noItem!.assignment,
              message: new Message({ id: noItem!.message.id, raw: new Uint8Array(3) })
            },
            { assignment: big!.assignment, message: new Message({ id: big!.message.id, raw: bigItem.getRaw() }) }
          ]
          yield* appendAll(entries)
          const read = yield* store.range(p, { by: "slot", limit: 10 })
          expect(read.map((e) => e.nodeJson === undefined)).toEqual([false, false, true, true])
          for (const entry of read.slice(0, 2)) {
            expect(Buffer.from(entry.nodeJson!).toString("utf8")).toBe(nodeJsonText(entry))
            expect(JSON.parse(Buffer.from(entry.nodeJson!).toString("utf8")).message.id).toBe(
              entry.assignment.messageId
            )
          }
          // a page reader's read: rows with node JSON leave their bytes out, the others come back whole
          const light = yield* store.range(p, { by: "slot", limit: 10, nodeJsonOnly: true })
          expect(light.map((e) => [e.assignment.raw.length, e.message?.length])).toEqual([
            [0, undefined],
            [0, undefined],
            [read[2]!.assignment.raw.length, 3],
            [read[3]!.assignment.raw.length, read[3]!.message!.length]
          ])
          expect(light.map((e) => e.nodeJson)).toEqual(read.map((e) => e.nodeJson))
          expect(light.map((e) => e.assignment.hashChain)).toEqual(read.map((e) => e.assignment.hashChain))
          // the page read of GET /{process}: slot, timestamp and node JSON; a page with a row without JSON whole
          const jsonPage = store.nodeJsonPage!
          const edges = (query: AssignmentStore.PageQuery) =>
            Effect.map(jsonPage(p, query), ({ edges, more }) => ({
              edges: edges.map((e) => ({
                slot: e.slot,
                timestamp: e.timestamp,
                json: e.nodeJson === undefined ? undefined : Buffer.from(e.nodeJson).toString("utf8"),
                entry: e.entry?.assignment.id
              })),
              more
            }))
          const expected = read.map((e) => ({
            slot: e.assignment.slot,
            timestamp: e.assignment.timestamp,
            json: e.nodeJson === undefined ? undefined : Buffer.from(e.nodeJson).toString("utf8"),
            entry: e.nodeJson === undefined ? e.assignment.id : undefined
          }))
          expect(yield* edges({ by: "slot", limit: 2 })).toEqual({ edges: expected.slice(0, 2), more: true })
          expect(yield* edges({ by: "slot", limit: 10 })).toEqual({ edges: expected, more: false })
          expect(
            yield* edges({ by: "timestamp", from: read[0]!.assignment.timestamp, limit: 10, maxBytes: 1 })
          ).toEqual({ edges: expected.slice(1, 2), more: true })
          expect(yield* edges({ by: "slot", from: 3, limit: 10 })).toEqual({ edges: [], more: false })
        }).pipe(Effect.provide(WalletTest))
      )

      it.effect("a row the database rejects fails only its caller with StoreError; the rest of the batch lands", () =>
        Effect.gen(function* () {
          const store = yield* AssignmentStore.AssignmentStore
          const good = Array.from({ length: 40 }, () => fake(randomProcessId(), 0))
          const bad = fake(randomProcessId(), -1)
          const all = [...good.slice(0, 20), bad, ...good.slice(20)]
          const results = yield* Effect.forEach(all, (e) => Effect.either(store.append(e.assignment, e.message)), {
            concurrency: "unbounded"
          })
          expect(Either.getLeft(results[20]!)).toEqual(
            Option.some(expect.objectContaining({ _tag: "StoreError", operation: "append" }))
          )
          expect(results.filter(Either.isRight).length).toBe(40)
          for (const e of good) {
            expect(Option.isSome(yield* store.latest(e.assignment.processId))).toBe(true)
          }
          expect(yield* store.latest(bad.assignment.processId)).toEqual(Option.none())
        })
      )
    }
  })
