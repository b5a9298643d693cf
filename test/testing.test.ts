/**
 * The `/testing` entry point: the test key, the id and data item arbitraries, and the fault-injecting store.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Exit, Fiber, FastCheck as fc, Layer, Option, Scope, TestClock } from "effect"
import * as Assignment from "../src/Assignment.js"
import * as AssignmentStore from "../src/AssignmentStore.js"
import * as DataItem from "../src/DataItem.js"
import * as ProcessId from "../src/ProcessId.js"
import { Arbitraries, FaultyStore, TestWallet } from "../src/testing/index.js"
import * as Wallet from "../src/Wallet.js"
import { idOf, messageIdOf } from "./fixtures/ids.js"

const P = idOf(7)

/** Slot `slot` of process `P`, signed with the test key, chained from nothing (the store does not check chains). */
const assignmentAt = (slot: number) =>
  Effect.gen(function* () {
    const wallet = yield* Wallet.Wallet
    return yield* Assignment.build(
      { owner: wallet.owner, sign: wallet.sign },
      {
        processId: P,
        messageId: messageIdOf(slot),
        slot,
        epoch: 0,
        timestamp: 1_000 + slot,
        blockHeight: 1,
        hashChain: Assignment.initialHashChain(P)
      }
    )
  }).pipe(Effect.provide(TestWallet.layer))

const append = (store: AssignmentStore.AssignmentStore["Type"], slot: number) =>
  Effect.flatMap(assignmentAt(slot), (a) => store.append(a, new Assignment.Message({ id: messageIdOf(slot) })))

const latestSlot = (store: AssignmentStore.AssignmentStore["Type"]) =>
  Effect.map(
    Effect.orDie(store.latest(P)),
    Option.map((l) => l.slot)
  )

describe("testing/TestWallet", () => {
  it.effect("the layer is the committed test key: its address is sha256(n) and it signs verifiably", () =>
    Effect.gen(function* () {
      const wallet = yield* Wallet.Wallet
      expect(wallet.address).toBe(TestWallet.address)
      expect(wallet.address).toHaveLength(43)
      expect(wallet.owner).toHaveLength(Wallet.SIGNATURE_LENGTH)
      expect(Buffer.from(wallet.owner).toString("base64url")).toBe(TestWallet.jwk.n)
      const signature = yield* wallet.sign(Buffer.from("hello"))
      expect(Wallet.verify(wallet.owner, Buffer.from("hello"), signature)).toBe(true)
      expect(Wallet.validateJwk(TestWallet.jwk)).toEqual(TestWallet.jwk)
    }).pipe(Effect.provide(TestWallet.layer))
  )
})

describe("testing/Arbitraries", () => {
  it.prop(
    "process and message ids are canonical 43-character ids",
    [Arbitraries.processId, Arbitraries.messageId],
    ([p, m]) => {
      expect(Either.getOrThrow(ProcessId.parseEither(p))).toBe(p)
      expect(Either.getOrThrow(ProcessId.parseEither(m))).toBe(m)
      expect(ProcessId.toBytes(p)).toHaveLength(32)
    }
  )

  it.effect.prop(
    "a signed Message spec verifies, targets its process and carries the ao tags then its own",
    [Arbitraries.messageSpec()],
    ([spec]) =>
      Effect.gen(function* () {
        const signed = yield* Arbitraries.sign(spec)
        const item = yield* DataItem.verify(signed.raw)
        expect(item.id).toBe(signed.id)
        expect(item.target).toBe(spec.target)
        expect(Buffer.from(item.anchor ?? []).toString("utf8")).toBe(spec.anchor)
        expect(item.tags).toEqual(Arbitraries.tagsOf(spec))
        expect(DataItem.tagValue(item, "Type")).toBe("Message")
        expect(Wallet.ownerToAddress(item.owner)).toBe(TestWallet.address)
        expect(Buffer.from(item.data).toString("utf8")).toBe(spec.data)
      }),
    { fastCheck: { numRuns: 15 } }
  )

  it.effect.prop(
    "a signed Process spec verifies and names its Module and Scheduler (by default the test key's address)",
    [Arbitraries.processSpec()],
    ([spec]) =>
      Effect.gen(function* () {
        const item = yield* DataItem.verify((yield* Arbitraries.sign(spec)).raw)
        expect(DataItem.tagValue(item, "Type")).toBe("Process")
        expect(DataItem.tagValue(item, "Module")).toBe(spec.module)
        expect(DataItem.tagValue(item, "Scheduler")).toBe(TestWallet.address)
        expect(item.target).toBeUndefined()
      }),
    { fastCheck: { numRuns: 10 } }
  )

  it("itemSpec draws both kinds", () => {
    const kinds = new Set(fc.sample(Arbitraries.itemSpec, { numRuns: 50, seed: 42 }).map((s) => s._tag))
    expect([...kinds].sort()).toEqual(["Message", "Process"])
  })
})

describe("testing/FaultyStore", () => {
  it.scoped("nth(2, fail): the 2nd append fails with StoreError and writes nothing; the 1st and 3rd land", () =>
    Effect.gen(function* () {
      const { store, control } = yield* FaultyStore.make(yield* AssignmentStore.makeMemory, {
        append: FaultyStore.nth(2, FaultyStore.fail("disk full"))
      })
      yield* append(store, 0)
      const failed = yield* Effect.either(append(store, 1))
      expect(Either.getLeft(failed)).toEqual(
        Option.some(expect.objectContaining({ _tag: "StoreError", operation: "append", reason: "disk full" }))
      )
      expect(yield* latestSlot(control.inner)).toEqual(Option.some(0))
      yield* append(store, 1)
      expect(yield* latestSlot(store)).toEqual(Option.some(1))
      expect(yield* control.appendCalls).toBe(3)
      expect(yield* control.latestCalls).toBe(1)
    })
  )

  it.scoped("die: the call dies with the defect and writes nothing", () =>
    Effect.gen(function* () {
      const boom = new Error("boom")
      const { store, control } = yield* FaultyStore.make(yield* AssignmentStore.makeMemory, {
        append: FaultyStore.die(boom)
      })
      const exit = yield* Effect.exit(append(store, 0))
      expect(exit).toEqual(Exit.die(boom))
      expect(yield* latestSlot(control.inner)).toEqual(Option.none())
    })
  )

  it.scoped("commitThenFail: the append lands in the inner store, then the call fails with StoreError", () =>
    Effect.gen(function* () {
      const { store, control } = yield* FaultyStore.make(yield* AssignmentStore.makeMemory, {
        append: FaultyStore.commitThenFail()
      })
      const result = yield* Effect.either(append(store, 0))
      expect(Either.getLeft(result).pipe(Option.map((e) => e._tag))).toEqual(Option.some("StoreError"))
      expect(yield* latestSlot(control.inner)).toEqual(Option.some(0))
    })
  )

  it.scoped("hang(gate): the append waits until the gate opens, then lands; setAppend clears the rule", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const { store, control } = yield* FaultyStore.make(yield* AssignmentStore.makeMemory)
      yield* control.setAppend(FaultyStore.hang(gate))
      const pending = yield* Effect.fork(append(store, 0))
      yield* Effect.yieldNow({ priority: 1 })
      expect(pending.unsafePoll()).toBeNull()
      expect(yield* control.appendCalls).toBe(1)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(pending)
      expect(yield* latestSlot(store)).toEqual(Option.some(0))
      yield* control.setAppend(undefined)
      yield* append(store, 1)
      expect(yield* latestSlot(store)).toEqual(Option.some(1))
    })
  )

  it.effect("hang(): a call hung forever is released (and runs) when the store's scope closes", () =>
    Effect.gen(function* () {
      const inner = yield* AssignmentStore.makeMemory
      const scope = yield* Scope.make()
      const { store } = yield* Scope.extend(FaultyStore.make(inner, { append: FaultyStore.hang() }), scope)
      const pending = yield* Effect.fork(append(store, 0))
      yield* Effect.yieldNow({ priority: 1 })
      expect(pending.unsafePoll()).toBeNull()
      yield* Scope.close(scope, Exit.void)
      yield* Fiber.join(pending)
      expect(yield* latestSlot(inner)).toEqual(Option.some(0))
    })
  )

  it.effect("delay then fail on latest, driven by the TestClock; the layer provides the store and its control", () =>
    Effect.gen(function* () {
      const store = yield* AssignmentStore.AssignmentStore
      const control = yield* FaultyStore.FaultyStore
      const read = yield* Effect.fork(Effect.either(store.latest(P)))
      yield* TestClock.adjust("9 millis")
      expect(read.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      expect(Either.getLeft(yield* Fiber.join(read)).pipe(Option.map((e) => e.reason))).toEqual(
        Option.some("unreadable")
      )
      expect(yield* control.latestCalls).toBe(1)
      expect(yield* store.latest(P)).toEqual(Option.none())
    }).pipe(
      Effect.provide(
        FaultyStore.layer({
          latest: FaultyStore.nth(1, FaultyStore.delay("10 millis", FaultyStore.fail("unreadable")))
        })
      )
    )
  )

  it.effect("from(n): every call from the nth on is faulty; the layer wraps the given inner store", () =>
    Effect.gen(function* () {
      const inner = yield* AssignmentStore.makeMemory
      const layer = FaultyStore.layer(
        { append: FaultyStore.from(2, FaultyStore.fail()) },
        Layer.succeed(AssignmentStore.AssignmentStore, inner)
      )
      const results = yield* Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        return yield* Effect.forEach([0, 1, 2], (slot) => Effect.either(append(store, slot)))
      }).pipe(Effect.provide(layer))
      expect(results.map(Either.isRight)).toEqual([true, false, false])
      expect(yield* latestSlot(inner)).toEqual(Option.some(0))
    })
  )
})
