import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Exit, Fiber, Layer, Logger, LogLevel, Option, Scope, TestClock } from "effect"
import * as Assignment from "../src/Assignment.js"
import * as AssignmentStore from "../src/AssignmentStore.js"
import type { MessageId } from "../src/ProcessId.js"
import * as SchedulerRegistry from "../src/SchedulerRegistry.js"
import { FaultyStore } from "../src/testing/index.js"
import * as Wallet from "../src/Wallet.js"
import { idOf, messageOf } from "./fixtures/ids.js"
import { buildRegistry, registryLayer } from "./fixtures/registry.js"

const P = idOf(1)
const errorTag = <A, E extends { _tag: string }>(either: Either.Either<A, E>) =>
  Either.match(either, { onLeft: (e) => e._tag, onRight: () => "Right" })

/** A memory store whose appends wait at `gate` (while it is set) and then succeed or fail. */
const gatedStore = (control: { gate: Deferred.Deferred<void> | undefined; started: number }) =>
  Layer.scoped(
    AssignmentStore.AssignmentStore,
    Effect.gen(function* () {
      const inner = yield* AssignmentStore.makeMemory
      // open the gate when the test ends, so a failed assertion is reported instead of a hung shutdown
      yield* Effect.addFinalizer(() => (control.gate ? Deferred.succeed(control.gate, undefined) : Effect.void))
      return {
        ...inner,
        append: (a: Assignment.Assignment, m: Assignment.Message, o?: AssignmentStore.AppendOptions) =>
          Effect.suspend(() => {
            control.started++
            const gate = control.gate
            return gate === undefined
              ? inner.append(a, m, o)
              : Effect.zipRight(Deferred.await(gate), inner.append(a, m, o))
          })
      }
    })
  )

/** Yields (in real time, for promises such as signing to settle) until `done()` holds; dies after ~5 s. */
const waitUntil = (done: () => boolean | Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    const check = () => {
      const result = done()
      return typeof result === "boolean" ? Effect.succeed(result) : result
    }
    for (let i = 0; i < 5_000; i++) {
      if (yield* check()) return
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 1)))
    }
    return yield* Effect.dieMessage("condition never held")
  })
const depthOf = (scheduler: { info: Effect.Effect<{ mailboxDepth: number }, unknown> }) =>
  Effect.map(Effect.orDie(scheduler.info), (i) => i.mailboxDepth)

describe("Scheduler: behaviours 19–29", () => {
  it.scoped("19: a new process starts at current = -1; three schedules give slots 0, 1, 2", () =>
    Effect.gen(function* () {
      const scheduler = yield* SchedulerRegistry.find(P, true)
      expect((yield* scheduler.info).slot).toBe(-1)
      const slots: Array<number> = []
      for (const i of [1, 2, 3]) slots.push((yield* scheduler.schedule(messageOf(i))).slot)
      expect(slots).toEqual([0, 1, 2])
      const info = yield* scheduler.info
      expect(info.slot).toBe(2)
      expect(info.processId).toBe(P)
      expect(info.address).toBe((yield* SchedulerRegistry.getWallet()).address)
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("20 / K11: 200 concurrent schedules get slots 0..199, each caller's replies in slot order", () =>
    Effect.gen(function* () {
      const scheduler = yield* SchedulerRegistry.find(P, true)
      const callers = yield* Effect.all(
        Array.from({ length: 20 }, (_, c) =>
          Effect.forEach(
            Array.from({ length: 10 }, (_, i) => c * 10 + i),
            (i) => scheduler.schedule(messageOf(i))
          )
        ),
        { concurrency: "unbounded" }
      )
      for (const replies of callers) {
        const slots = replies.map((a) => a.slot)
        expect(slots).toEqual([...slots].sort((a, b) => a - b))
      }
      const all = callers.flat().sort((a, b) => a.slot - b.slot)
      expect(all.map((a) => a.slot)).toEqual(Array.from({ length: 200 }, (_, i) => i))
      for (let i = 1; i < all.length; i++) expect(all[i]!.timestamp).toBeGreaterThan(all[i - 1]!.timestamp)
      expect(Assignment.verifyChain(P, all)).toBeUndefined()
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("21 / 23: the assignment is a signed ANS-104 item with the ao.TN.1 tags, by the node wallet", () =>
    Effect.gen(function* () {
      const scheduler = yield* SchedulerRegistry.find(P, true, { blockHeight: () => 1_500_000 })
      yield* TestClock.setTime(1_719_830_000_123)
      const a = yield* scheduler.schedule(messageOf(7))
      expect(yield* Assignment.verify(a)).toBeUndefined()
      expect(a.timestamp).toBe(1_719_830_000_123)
      expect(Assignment.tags(a)).toEqual([
        { name: "Process", value: P },
        { name: "Epoch", value: "0" },
        { name: "Nonce", value: "0" },
        { name: "Hash-Chain", value: Assignment.initialHashChain(P) },
        { name: "Block-Height", value: "000001500000" },
        { name: "Timestamp", value: "1719830000123" },
        { name: "Data-Protocol", value: "ao" },
        { name: "Type", value: "Assignment" },
        { name: "Variant", value: "ao.TN.1" },
        { name: "Message", value: messageOf(7).id }
      ])
      const owner = Buffer.from(a.raw.subarray(2 + 512, 2 + 1024))
      expect(Wallet.ownerToAddress(owner)).toBe((yield* SchedulerRegistry.getWallet()).address)
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("22: the hash chain is the legacy ao SU/CU chain from slot 0", () =>
    Effect.gen(function* () {
      const scheduler = yield* SchedulerRegistry.find(P, true)
      const as = yield* Effect.forEach([1, 2, 3, 4], (i) => scheduler.schedule(messageOf(i)))
      expect(as[0]!.hashChain).toBe(Assignment.initialHashChain(P))
      for (let k = 1; k < as.length; k++) {
        expect(as[k]!.hashChain).toBe(Assignment.nextHashChain(as[k - 1]!.id, as[k - 1]!.hashChain))
      }
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("24: aggressive replies before the write; local_confirmation only after it", () => {
    const control = { gate: undefined as Deferred.Deferred<void> | undefined, started: 0 }
    return Effect.gen(function* () {
      control.gate = yield* Deferred.make<void>()
      const aggressive = yield* SchedulerRegistry.find(idOf(241), true, { mode: "aggressive" })
      const early = yield* aggressive.schedule(messageOf(1))
      expect(early.slot).toBe(0)
      yield* waitUntil(() => control.started === 1) // the write starts, and is held at the gate
      const store = yield* AssignmentStore.AssignmentStore
      expect(yield* store.latest(idOf(241))).toEqual(Option.none())

      const local = yield* SchedulerRegistry.find(idOf(242), true)
      const pending = yield* Effect.fork(local.schedule(messageOf(2)))
      yield* waitUntil(() => control.started === 2)
      expect(pending.unsafePoll()).toBeNull() // no reply while the write is held
      yield* Deferred.succeed(control.gate, undefined)
      expect((yield* Fiber.join(pending)).slot).toBe(0)
      yield* waitUntil(() => Effect.map(Effect.orDie(store.latest(idOf(241))), Option.isSome))
      expect(Option.map(yield* store.latest(idOf(241)), (l) => l.slot)).toEqual(Option.some(0))
    }).pipe(Effect.provide(registryLayer({}, gatedStore(control))))
  })

  /** An uploader that records what it was asked and confirms when `gate` opens. */
  const gatedUpload = (gate: Deferred.Deferred<void>, asked: Array<ReadonlyArray<string>>) => ({
    queued: () => {},
    confirmed: (ids: ReadonlyArray<string>) =>
      Effect.suspend(() => {
        asked.push(ids)
        return Deferred.await(gate)
      })
  })

  it.scoped(
    "24: remote_confirmation replies only after the uploader confirmed both items, queued in the outbox",
    () => {
      const asked: Array<ReadonlyArray<string>> = []
      return Effect.gen(function* () {
        const gate = yield* Deferred.make<void>()
        const scheduler = yield* SchedulerRegistry.find(P, true, {
          mode: "remote_confirmation",
          upload: gatedUpload(gate, asked)
        })
        const message = new Assignment.Message({ id: messageOf(1).id, raw: new Uint8Array([1, 2, 3]) })
        const pending = yield* Effect.fork(scheduler.schedule(message))
        yield* waitUntil(() => asked.length === 1)
        expect(pending.unsafePoll()).toBeNull() // stored, but not confirmed: no reply yet
        const store = yield* AssignmentStore.AssignmentStore
        const stored = Option.getOrThrow(yield* store.getMessage(message.id, P))
        expect(asked[0]).toEqual([message.id, stored.assignment.id])
        const due = yield* store.outbox!.due(Number.MAX_SAFE_INTEGER, 10)
        expect(due.map((item) => [item.id, item.kind, item.slot])).toEqual([
          [message.id, "message", 0],
          [stored.assignment.id, "assignment", 0]
        ])
        yield* Deferred.succeed(gate, undefined)
        expect((yield* Fiber.join(pending)).id).toBe(stored.assignment.id)
      }).pipe(Effect.provide(registryLayer()))
    }
  )

  it.scoped("24b: remote_confirmation past the deadline fails with UploadPending; the slot stays assigned", () => {
    const asked: Array<ReadonlyArray<string>> = []
    return Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const scheduler = yield* SchedulerRegistry.find(P, true, {
        mode: "remote_confirmation",
        upload: gatedUpload(gate, asked)
      })
      const pending = yield* Effect.fork(Effect.either(scheduler.schedule(messageOf(1), { timeoutMs: 1_000 })))
      yield* waitUntil(() => asked.length === 1)
      yield* TestClock.adjust(1_000)
      const failed = yield* Fiber.join(pending)
      expect(Either.isLeft(failed) && failed.left._tag).toBe("UploadPending")
      const store = yield* AssignmentStore.AssignmentStore
      expect(Option.map(yield* store.latest(P), (l) => l.slot)).toEqual(Option.some(0))
      // an assigned transaction (no bytes held) queues only its assignment
      expect((yield* store.outbox!.due(Number.MAX_SAFE_INTEGER, 10)).map((item) => item.kind)).toEqual(["assignment"])
      // the next message takes slot 1: the server did not wait for the upload
      yield* Deferred.succeed(gate, undefined)
      expect((yield* scheduler.schedule(messageOf(2))).slot).toBe(1)
    }).pipe(Effect.provide(registryLayer()))
  })

  it.scoped("25: after a local_confirmation reply the store has the assignment and latest = (slot, chain)", () =>
    Effect.gen(function* () {
      const scheduler = yield* SchedulerRegistry.find(P, true)
      yield* scheduler.schedule(messageOf(1))
      const second = yield* scheduler.schedule(messageOf(2))
      const store = yield* AssignmentStore.AssignmentStore
      const read = yield* store.getMessage(messageOf(2).id, P)
      expect(Option.map(read, (e) => e.assignment.id)).toEqual(Option.some(second.id))
      const listed = yield* store.range(P, { by: "slot", limit: 10 })
      expect(listed.map((e) => e.assignment.slot)).toEqual([0, 1])
      expect(yield* store.latest(P)).toEqual(
        Option.some({ slot: 1, hashChain: second.hashChain, assignmentId: second.id, timestamp: second.timestamp })
      )
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("26: a restarted scheduler continues at n + 1 and its chain follows slot n", () =>
    Effect.gen(function* () {
      const store = yield* AssignmentStore.makeMemory
      const storeLayer = Layer.succeed(AssignmentStore.AssignmentStore, store)
      const first = yield* buildRegistry(registryLayer({}, storeLayer))
      const s1 = yield* first.registry.find(P, true)
      const before = yield* Effect.forEach([1, 2, 3], (i) => s1.schedule(messageOf(i)))
      yield* Scope.close(first.scope, Exit.void)
      const second = yield* buildRegistry(registryLayer({}, storeLayer))
      const s2 = yield* second.registry.find(P, true)
      expect((yield* s2.info).slot).toBe(2)
      const next = yield* s2.schedule(messageOf(4))
      expect(next.slot).toBe(3)
      expect(next.hashChain).toBe(Assignment.nextHashChain(before[2]!.id, before[2]!.hashChain))
      expect(Assignment.verifyChain(P, [...before, next])).toBeUndefined()
      yield* Scope.close(second.scope, Exit.void)
    })
  )

  it.scoped("27: a failed write gives the caller StoreError and consumes no slot", () =>
    Effect.gen(function* () {
      const faulty = yield* FaultyStore.FaultyStore
      const scheduler = yield* SchedulerRegistry.find(P, true)
      const first = yield* scheduler.schedule(messageOf(1))
      yield* faulty.setAppend(FaultyStore.fail("disk full (injected)"))
      const failed = yield* Effect.either(scheduler.schedule(messageOf(2)))
      expect(errorTag(failed)).toBe("StoreError")
      expect((yield* scheduler.info).slot).toBe(0)
      yield* faulty.setAppend(undefined)
      const next = yield* scheduler.schedule(messageOf(2))
      expect(next.slot).toBe(1)
      expect(next.hashChain).toBe(Assignment.nextHashChain(first.id, first.hashChain))
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("28: an unresponsive server times out the caller, and the expired request takes no slot", () => {
    const control = { gate: undefined as Deferred.Deferred<void> | undefined, started: 0 }
    return Effect.gen(function* () {
      control.gate = yield* Deferred.make<void>()
      const scheduler = yield* SchedulerRegistry.find(P, true)
      const stuck = yield* Effect.fork(scheduler.schedule(messageOf(1), { timeoutMs: 60_000 }))
      yield* waitUntil(() => control.started === 1)
      // queued behind the write that hangs (it may be signed meanwhile, but its write never starts)
      const expired = yield* Effect.fork(Effect.either(scheduler.schedule(messageOf(2), { timeoutMs: 1_000 })))
      yield* waitUntil(() => Effect.map(depthOf(scheduler), (d) => d === 1))
      yield* TestClock.adjust(1_001)
      const timedOut = yield* Fiber.join(expired)
      expect(Either.getLeft(timedOut)).toEqual(
        Option.some(expect.objectContaining({ _tag: "SchedulerTimeout", timeoutMs: 1_000 }))
      )
      yield* Deferred.succeed(control.gate, undefined)
      expect((yield* Fiber.join(stuck)).slot).toBe(0)
      const next = yield* scheduler.schedule(messageOf(3))
      expect(next.slot).toBe(1) // the expired request was dropped, not assigned
      expect(control.started).toBe(2)
    }).pipe(Effect.provide(registryLayer({}, gatedStore(control))))
  })

  it.scoped("28: the caller of a write that hangs gets OutcomeUnknown at its deadline; the watchdog then stops", () => {
    const control = { gate: undefined as Deferred.Deferred<void> | undefined, started: 0 }
    return Effect.gen(function* () {
      control.gate = yield* Deferred.make<void>()
      const scheduler = yield* SchedulerRegistry.find(P, true)
      const sleepsBefore = (yield* TestClock.sleeps()).length
      const hung = yield* Effect.fork(Effect.either(scheduler.schedule(messageOf(1), { timeoutMs: 5_000 })))
      yield* waitUntil(() => control.started === 1)
      // one watchdog sleep, however many requests wait
      expect((yield* TestClock.sleeps()).length).toBe(sleepsBefore + 1)
      yield* TestClock.adjust(5_001)
      // the write was sent: it may commit, so the answer is "unknown, retry", never "did not assign"
      expect(Either.getLeft(yield* Fiber.join(hung))).toEqual(
        Option.some(expect.objectContaining({ _tag: "OutcomeUnknown", timeoutMs: 5_000, messageId: messageOf(1).id }))
      )
      yield* waitUntil(() => Effect.map(TestClock.sleeps(), (sleeps) => sleeps.length === sleepsBefore))
      // the write was under way: it completes and keeps its slot; the next message takes the next one
      yield* Deferred.succeed(control.gate, undefined)
      expect((yield* scheduler.schedule(messageOf(2))).slot).toBe(1)
    }).pipe(Effect.provide(registryLayer({}, gatedStore(control))))
  })

  it.scoped("28: schedule to a stopped server fails at once with SchedulerStopped", () =>
    Effect.gen(function* () {
      const scheduler = yield* SchedulerRegistry.find(P, true)
      yield* Fiber.interrupt(scheduler.fiber)
      const result = yield* Effect.either(scheduler.schedule(messageOf(1)))
      expect(errorTag(result)).toBe("SchedulerStopped")
      expect(errorTag(yield* Effect.either(scheduler.info))).toBe("SchedulerStopped")
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("28: requests queued when the server stops get SchedulerStopped, not a hang", () => {
    const control = { gate: undefined as Deferred.Deferred<void> | undefined, started: 0 }
    return Effect.gen(function* () {
      control.gate = yield* Deferred.make<void>()
      const scheduler = yield* SchedulerRegistry.find(P, true)
      const inFlight = yield* Effect.fork(scheduler.schedule(messageOf(1)))
      yield* waitUntil(() => control.started === 1)
      const queued = yield* Effect.fork(Effect.either(scheduler.schedule(messageOf(2))))
      yield* waitUntil(() => Effect.map(depthOf(scheduler), (d) => d === 1))
      // the interrupt is requested (in the server fiber's mailbox) when this returns, before the gate opens
      yield* Effect.fiberIdWith((id) => Effect.sync(() => scheduler.fiber.unsafeInterruptAsFork(id)))
      expect(scheduler.fiber.unsafePoll()).toBeNull() // the held write is uninterruptible: the server still runs
      yield* Deferred.succeed(control.gate, undefined)
      expect(Exit.isInterrupted(yield* Fiber.await(scheduler.fiber))).toBe(true)
      // the in-flight assignment completed (uninterruptible); the queued one was refused
      expect((yield* Fiber.join(inFlight)).slot).toBe(0)
      expect(errorTag(yield* Fiber.join(queued))).toBe("SchedulerStopped")
    }).pipe(Effect.provide(registryLayer({}, gatedStore(control))))
  })

  it.scoped("27: a write that committed but reported an error is recognised, so the server never wedges", () => {
    // the 2nd append commits, then reports an error
    const ambiguous = FaultyStore.layer({ append: FaultyStore.nth(2, FaultyStore.commitThenFail()) })
    return Effect.gen(function* () {
      const scheduler = yield* SchedulerRegistry.find(P, true)
      expect((yield* scheduler.schedule(messageOf(1))).slot).toBe(0)
      // the write committed: the caller gets its assignment, not the misleading error
      expect((yield* scheduler.schedule(messageOf(2))).slot).toBe(1)
      expect((yield* scheduler.schedule(messageOf(3))).slot).toBe(2)
      expect((yield* scheduler.info).slot).toBe(2)
    }).pipe(Effect.provide(registryLayer({}, ambiguous)))
  })

  it.scoped(
    "a failed write whose outcome the store cannot tell either is OutcomeUnknown; the retry is answered",
    () => {
      // the 2nd append fails, and so does the read of the head after it (the 2nd latest; the 1st is the recovery)
      const blind = FaultyStore.layer({
        append: FaultyStore.nth(2, FaultyStore.fail("connection lost")),
        latest: FaultyStore.nth(2, FaultyStore.fail("connection lost"))
      })
      return Effect.gen(function* () {
        const scheduler = yield* SchedulerRegistry.find(P, true)
        expect((yield* scheduler.schedule(messageOf(1))).slot).toBe(0)
        const unknown = yield* Effect.either(scheduler.schedule(messageOf(2), { timeoutMs: 2_000 }))
        expect(Either.getLeft(unknown)).toEqual(
          Option.some(expect.objectContaining({ _tag: "OutcomeUnknown", messageId: messageOf(2).id, timeoutMs: 2_000 }))
        )
        // the server cannot tell its own head any more: it stopped, and the next find recovers from the store
        expect(Exit.isFailure(yield* Fiber.await(scheduler.fiber))).toBe(true)
        const again = yield* SchedulerRegistry.find(P, true)
        expect((yield* again.schedule(messageOf(2))).slot).toBe(1)
      }).pipe(Effect.provide(registryLayer({}, blind)), Logger.withMinimumLogLevel(LogLevel.None))
    }
  )

  it.scoped("a second writer on the same store fences the first: its write fails, nothing is written, it stops", () =>
    Effect.gen(function* () {
      const store = yield* AssignmentStore.makeMemory
      const storeLayer = Layer.succeed(AssignmentStore.AssignmentStore, store)
      const a = yield* buildRegistry(registryLayer({}, storeLayer))
      const b = yield* buildRegistry(registryLayer({}, storeLayer))
      const first = yield* a.registry.find(P, true)
      const second = yield* b.registry.find(P, true) // a split brain: two writers of one process
      // the later claim wins: the first server's write is refused by its epoch, not by the slot's key
      const fenced = yield* Effect.either(first.schedule(messageOf(1)))
      expect(Either.getLeft(fenced)).toEqual(
        Option.some(expect.objectContaining({ _tag: "SchedulerStopped", reason: expect.stringContaining("fenced") }))
      )
      expect(yield* store.latest(P)).toEqual(Option.none())
      expect(Exit.isFailure(yield* Fiber.await(first.fiber))).toBe(true)
      expect((yield* second.schedule(messageOf(2))).slot).toBe(0)
      // a new server of `a` claims again: it recovers past the second's write, and fences the second
      const recovered = yield* a.registry.find(P, true)
      expect((yield* recovered.schedule(messageOf(1))).slot).toBe(1)
      expect(errorTag(yield* Effect.either(second.schedule(messageOf(3))))).toBe("SchedulerStopped")
      yield* Scope.close(a.scope, Exit.void)
      yield* Scope.close(b.scope, Exit.void)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None))
  )

  it.scoped("29: scheduling a message twice is a StoreConflict and consumes no slot", () =>
    Effect.gen(function* () {
      const scheduler = yield* SchedulerRegistry.find(P, true)
      yield* scheduler.schedule(messageOf(1))
      const again = yield* Effect.either(scheduler.schedule(messageOf(1)))
      expect(errorTag(again)).toBe("StoreConflict")
      expect((yield* scheduler.schedule(messageOf(2))).slot).toBe(1)
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("K14: with the clock standing still, timestamps still strictly increase by 1 ms", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(1_000)
      const scheduler = yield* SchedulerRegistry.find(P, true)
      const as = yield* Effect.forEach([1, 2, 3], (i) => scheduler.schedule(messageOf(i)))
      expect(as.map((a) => a.timestamp)).toEqual([1_000, 1_001, 1_002])
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("K14: a backward clock step never issues a timestamp at or below the previous one", () =>
    Effect.gen(function* () {
      const scheduler = yield* SchedulerRegistry.find(P, true)
      yield* TestClock.setTime(5_000)
      const a = yield* scheduler.schedule(messageOf(1))
      yield* TestClock.setTime(4_000)
      const b = yield* scheduler.schedule(messageOf(2))
      expect([a.timestamp, b.timestamp]).toEqual([5_000, 5_001])
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("a full mailbox fails with MailboxFull instead of queueing without bound", () => {
    const control = { gate: undefined as Deferred.Deferred<void> | undefined, started: 0 }
    return Effect.gen(function* () {
      control.gate = yield* Deferred.make<void>()
      const scheduler = yield* SchedulerRegistry.find(P, true, { mailboxCapacity: 2 })
      const first = yield* Effect.fork(scheduler.schedule(messageOf(1)))
      yield* waitUntil(() => control.started === 1) // the first is taken and held at the write
      const queued = yield* Effect.all([1, 2].map((i) => Effect.fork(scheduler.schedule(messageOf(10 + i)))))
      yield* waitUntil(() => Effect.map(depthOf(scheduler), (d) => d === 2))
      const overflow = yield* Effect.either(scheduler.schedule(messageOf(99)))
      expect(Either.getLeft(overflow)).toEqual(
        Option.some(expect.objectContaining({ _tag: "MailboxFull", capacity: 2 }))
      )
      yield* Deferred.succeed(control.gate, undefined)
      expect((yield* Fiber.join(first)).slot).toBe(0)
      expect((yield* Effect.forEach(queued, Fiber.join)).map((a) => a.slot)).toEqual([1, 2])
    }).pipe(Effect.provide(registryLayer({}, gatedStore(control))))
  })

  it.scoped("an aggressive-mode write failure stops the server so no slot is built on an unstored one", () =>
    Effect.gen(function* () {
      const faulty = yield* FaultyStore.FaultyStore
      const scheduler = yield* SchedulerRegistry.find(P, true, { mode: "aggressive" })
      yield* faulty.setAppend(FaultyStore.fail("disk full (injected)"))
      const acknowledged = yield* scheduler.schedule(messageOf(1))
      expect(acknowledged.slot).toBe(0)
      const exit = yield* Fiber.await(scheduler.fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      expect(errorTag(yield* Effect.either(SchedulerRegistry.find(P)))).toBe("NotFound")
      yield* faulty.setAppend(undefined)
      const restarted = yield* SchedulerRegistry.find(P, true)
      expect((yield* restarted.info).slot).toBe(-1)
    }).pipe(Effect.provide(registryLayer()))
  )
})

/**
 * A signer whose runs wait for `gate` and record their lengths. `takesGrowth`: it signs the entries pushed onto
 * the run meanwhile (a signer thread that received them in time); else only those it was called with.
 */
const gatedChainSigner = (
  wallet: { readonly owner: Uint8Array; readonly sign: Assignment.AssignmentSigner["sign"] },
  control: { gate: Deferred.Deferred<void>; readonly runs: Array<number>; signing: number },
  takesGrowth: boolean
): Assignment.AssignmentSigner => ({
  owner: wallet.owner,
  sign: wallet.sign,
  signChain: (start, entries) => {
    const known = entries.length
    control.signing++
    return Effect.flatMap(Deferred.await(control.gate), () => {
      const signed = takesGrowth ? [...entries] : entries.slice(0, known)
      control.runs.push(signed.length)
      return Effect.map(
        Assignment.signChain({ owner: wallet.owner, sign: wallet.sign }, start, signed),
        (assignments) => assignments.map((a) => ({ id: a.id, hashChain: a.hashChain, raw: a.raw }))
      )
    })
  }
})

describe("Scheduler: a run grows while it is signed", () => {
  for (const takesGrowth of [true, false]) {
    it.scoped(
      takesGrowth
        ? "requests that arrive while a run is signed join it: one run, contiguous slots, callers in order"
        : "joined requests the signer did not take in time are signed in a later run, none lost or reordered",
      () =>
        Effect.gen(function* () {
          const wallet = yield* SchedulerRegistry.getWallet()
          const control = { gate: yield* Deferred.make<void>(), runs: [] as Array<number>, signing: 0 }
          const scheduler = yield* SchedulerRegistry.find(P, true, {
            signer: gatedChainSigner(wallet, control, takesGrowth)
          })
          const first = yield* Effect.fork(scheduler.schedule(messageOf(1)))
          yield* waitUntil(() => control.signing === 1)
          // the queue is empty and a run is being signed: these three join it
          const later = yield* Effect.all([2, 3, 4].map((i) => Effect.fork(scheduler.schedule(messageOf(i)))))
          yield* waitUntil(() => Effect.map(depthOf(scheduler), (d) => d === 4))
          yield* Deferred.succeed(control.gate, undefined)
          const all = [yield* Fiber.join(first), ...(yield* Effect.forEach(later, Fiber.join))]
          expect(all.map((a) => a.slot)).toEqual([0, 1, 2, 3])
          expect(all.map((a) => a.messageId)).toEqual([1, 2, 3, 4].map((i) => messageOf(i).id))
          if (takesGrowth) expect(control.runs).toEqual([4])
          else {
            expect(control.runs[0]).toBe(1)
            expect(control.runs.reduce((a, b) => a + b, 0)).toBe(4)
          }
          const store = yield* AssignmentStore.AssignmentStore
          const stored = yield* store.range(P, { by: "slot", limit: 10 })
          expect(stored.map((e) => e.assignment.id)).toEqual(all.map((a) => a.id))
          expect(
            Assignment.verifyChain(
              P,
              stored.map((e) => e.assignment)
            )
          ).toBeUndefined()
        }).pipe(Effect.provide(registryLayer()))
    )
  }
})

describe("Scheduler: a burst of retries", () => {
  it.scoped("re-posting messages already stored returns their assignments, at about one signature each", () =>
    Effect.gen(function* () {
      const wallet = yield* SchedulerRegistry.getWallet()
      let signatures = 0
      const signer: Assignment.AssignmentSigner = {
        owner: wallet.owner,
        sign: (data) => Effect.tap(wallet.sign(data), () => signatures++)
      }
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const scheduler = yield* SchedulerRegistry.find(P, true, { signer })
      // the process's own message at slot 0 makes it hosted here (the registry's `schedule` looks it up)
      yield* scheduler.schedule(new Assignment.Message({ id: P as string as MessageId }))
      signatures = 0
      const messages = Array.from({ length: 20 }, (_, i) => messageOf(i + 1))
      const originals = yield* Effect.forEach(messages, (m) => registry.schedule(P, m))
      expect(signatures).toBe(20)
      // every one a duplicate, all queued at once: a run breaks on its first, and what it puts back is checked
      // against the store before it is signed again (without that: 20 + 19 + 18 + … signatures)
      const retries = yield* Effect.forEach(messages, (m) => Effect.fork(registry.schedule(P, m))).pipe(
        Effect.withMaxOpsBeforeYield(Number.MAX_SAFE_INTEGER)
      )
      const again = yield* Effect.forEach(retries, Fiber.join)
      expect(again.map((a) => a.id)).toEqual(originals.map((a) => a.id))
      expect(signatures - 20).toBeLessThanOrEqual(24)
      expect((yield* scheduler.info).slot).toBe(20)
    }).pipe(Effect.provide(registryLayer()))
  )
})
