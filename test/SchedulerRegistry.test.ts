import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Layer, Option, Scope } from "effect"
import * as AssignmentStore from "../src/AssignmentStore.js"
import * as NameService from "../src/NameService.js"
import * as SchedulerRegistry from "../src/SchedulerRegistry.js"
import { FaultyStore } from "../src/testing/index.js"
import * as Wallet from "../src/Wallet.js"
import { idOf, messageOf } from "./fixtures/ids.js"
import { buildRegistry, registryLayer } from "./fixtures/registry.js"
import { walletJwk, walletJwk2 } from "./fixtures/wallet.js"

const errorTag = <A, E extends { _tag: string }>(either: Either.Either<A, E>) =>
  Either.match(either, { onLeft: (e) => e._tag, onRight: () => "Right" })

// The seed's four tests (find_non_existent_process, create_and_find_process, create_multiple_processes,
// get_all_processes) are in the registry contract, test/cluster/contract.ts, which runs them against this layer
// and the cluster layer alike (test/cluster/registry.test.ts).

describe("SchedulerRegistry: behaviours 11–18", () => {
  it.scoped("11: find(P) with no server gives NotFound and starts nothing", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(SchedulerRegistry.find(idOf(11)))
      expect(errorTag(result)).toBe("NotFound")
      expect(yield* (yield* FaultyStore.FaultyStore).latestCalls).toBe(0)
      expect(yield* SchedulerRegistry.getProcesses()).toEqual([])
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("12: registration completes before find returns (raw and text ids name one scheduler)", () =>
    Effect.gen(function* () {
      const raw = new Uint8Array(32).fill(12)
      const created = yield* SchedulerRegistry.find(raw, true)
      expect(yield* SchedulerRegistry.find(Buffer.from(raw).toString("base64url"))).toBe(created)
      expect(created.processId).toBe(Buffer.from(raw).toString("base64url"))
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("13: distinct ids give distinct schedulers and getProcesses() ⊇ {P1, P2}", () =>
    Effect.gen(function* () {
      const a = yield* SchedulerRegistry.find(idOf(131), true)
      const b = yield* SchedulerRegistry.find(idOf(132), true)
      expect(a).not.toBe(b)
      const processes = yield* SchedulerRegistry.getProcesses()
      expect(processes).toContain(idOf(131))
      expect(processes).toContain(idOf(132))
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scopedLive("14 / K1: 50 racing find(P, true) start one server; 100 schedules get slots 0..99", () => {
    // the start side effect takes 10 ms
    return Effect.gen(function* () {
      const faulty = yield* FaultyStore.FaultyStore
      const handles = yield* Effect.all(
        Array.from({ length: 50 }, () => SchedulerRegistry.find(idOf(14), true)),
        { concurrency: "unbounded" }
      ).pipe(Effect.withMaxOpsBeforeYield(16))
      expect(yield* faulty.latestCalls).toBe(1)
      expect(new Set(handles).size).toBe(1)
      expect(new Set(handles.map((h) => h.fiber)).size).toBe(1)
      expect(yield* SchedulerRegistry.getProcesses()).toEqual([idOf(14)])
      const assignments = yield* Effect.all(
        Array.from({ length: 100 }, (_, i) => handles[i % 50]!.schedule(messageOf(i))),
        { concurrency: "unbounded" }
      )
      expect(assignments.map((a) => a.slot).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i))
    }).pipe(Effect.provide(registryLayer({}, FaultyStore.layer({ latest: FaultyStore.delay("10 millis") }))))
  })

  it.scoped("K3: get-or-create never surfaces AlreadyRegistered and leaves no orphan fiber", () =>
    Effect.gen(function* () {
      const faulty = yield* FaultyStore.FaultyStore
      const names = yield* NameService.NameService
      for (const n of [2, 10, 100]) {
        const id = idOf(300 + n)
        // yielding every 16 operations makes callers interleave between their lookup and their registration
        const results = yield* Effect.all(
          Array.from({ length: n }, () => Effect.either(SchedulerRegistry.find(id, true))),
          { concurrency: "unbounded" }
        ).pipe(Effect.withMaxOpsBeforeYield(16))
        expect(results.every(Either.isRight)).toBe(true)
        expect(new Set(results.map((r) => Either.getOrThrow(r).fiber)).size).toBe(1)
      }
      expect(yield* faulty.latestCalls).toBe(3)
      expect(yield* names.size).toBe(3)
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("K4 / K5 / 15: a stopped server is not found; find(P, true) starts a new one at the persisted slot", () =>
    Effect.gen(function* () {
      const first = yield* SchedulerRegistry.find(idOf(15), true)
      yield* Effect.forEach([1, 2, 3], (i) => first.schedule(messageOf(i)))
      yield* Fiber.interrupt(first.fiber)
      // in the same tick as the exit: never the dead fiber
      expect(errorTag(yield* Effect.either(SchedulerRegistry.find(idOf(15))))).toBe("NotFound")
      const second = yield* SchedulerRegistry.find(idOf(15), true)
      expect(second).not.toBe(first)
      expect(second.fiber.unsafePoll()).toBeNull()
      expect((yield* second.info).slot).toBe(2)
      expect((yield* second.schedule(messageOf(4))).slot).toBe(3)
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("16: mode disabled fails with SchedulingDisabled, registers nothing, and the caller lives on", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(SchedulerRegistry.find(idOf(16), true, { mode: "disabled" }))
      expect(errorTag(result)).toBe("SchedulingDisabled")
      expect(yield* SchedulerRegistry.getProcesses()).toEqual([])
      expect(yield* (yield* NameService.NameService).size).toBe(0)
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("17: interrupting the request that started a server does not stop it", () =>
    Effect.gen(function* () {
      const request = yield* Effect.fork(Effect.zipLeft(SchedulerRegistry.find(idOf(17), true), Effect.never))
      yield* Effect.repeatN(Effect.yieldNow(), 20)
      const scheduler = yield* SchedulerRegistry.find(idOf(17))
      yield* Fiber.interrupt(request)
      expect(scheduler.fiber.unsafePoll()).toBeNull()
      expect((yield* scheduler.schedule(messageOf(1))).slot).toBe(0)
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("18: registries with different wallets sharing one name service never share a server", () =>
    Effect.gen(function* () {
      const shared = Layer.mergeAll(NameService.layer, AssignmentStore.layerMemory)
      const context = yield* Layer.build(shared)
      const registryWith = (jwk: unknown) =>
        buildRegistry(
          SchedulerRegistry.layer().pipe(
            Layer.provide(Layer.orDie(Wallet.layerJwk(jwk))),
            Layer.provide(Layer.succeedContext(context))
          )
        )
      const a = yield* registryWith(walletJwk)
      const b = yield* registryWith(walletJwk2)
      const sa = yield* a.registry.find(idOf(18), true)
      const sb = yield* b.registry.find(idOf(18), true)
      expect(sa).not.toBe(sb)
      expect(sa.address).not.toBe(sb.address)
      expect(yield* a.registry.getProcesses()).toEqual([idOf(18)])
      expect(yield* b.registry.getProcesses()).toEqual([idOf(18)])
      yield* Scope.close(a.scope, Exit.void)
      expect(sb.fiber.unsafePoll()).toBeNull()
      yield* Scope.close(b.scope, Exit.void)
    })
  )

  it.scoped("find with another wallet starts a server under that wallet's address", () =>
    Effect.gen(function* () {
      const other = yield* Wallet.make(walletJwk2)
      const mine = yield* SchedulerRegistry.find(idOf(19), true)
      const theirs = yield* SchedulerRegistry.find(idOf(19), true, { wallet: other })
      expect(mine).not.toBe(theirs)
      expect(theirs.address).toBe(other.address)
      expect(yield* SchedulerRegistry.find(idOf(19), false, { wallet: other })).toBe(theirs)
      expect((yield* SchedulerRegistry.getWallet()).address).toBe(mine.address)
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("an invalid id fails with InvalidProcessId naming the problem and starts nothing", () =>
    Effect.gen(function* () {
      const short = yield* Effect.either(SchedulerRegistry.find("abc", true))
      expect(Either.getLeft(short).pipe(Option.map((e) => [e._tag, e.message.includes("43")]))).toEqual(
        Option.some(["InvalidProcessId", true])
      )
      const raw = yield* Effect.either(SchedulerRegistry.find(new Uint8Array(31), true))
      expect(errorTag(raw)).toBe("InvalidProcessId")
      const alphabet = yield* Effect.either(SchedulerRegistry.find(`${"A".repeat(42)}+`, true))
      expect(Either.getLeft(alphabet).pipe(Option.map((e) => e.message.includes("alphabet")))).toEqual(
        Option.some(true)
      )
      expect(yield* SchedulerRegistry.getProcesses()).toEqual([])
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scopedLive("a store failure during start fails every waiter with StoreError and leaves no entry", () => {
    const store = FaultyStore.layer({
      latest: FaultyStore.delay("5 millis", FaultyStore.fail("unreadable (injected)"))
    })
    return Effect.gen(function* () {
      const faulty = yield* FaultyStore.FaultyStore
      const results = yield* Effect.all(
        Array.from({ length: 5 }, () => Effect.either(SchedulerRegistry.find(idOf(20), true))),
        { concurrency: "unbounded" }
      )
      expect(results.map(errorTag)).toEqual(Array(5).fill("StoreError"))
      expect(yield* faulty.latestCalls).toBe(1)
      expect(yield* (yield* NameService.NameService).size).toBe(0)
      yield* faulty.setLatest(undefined)
      expect((yield* (yield* SchedulerRegistry.find(idOf(20), true)).info).slot).toBe(-1)
    }).pipe(Effect.provide(registryLayer({}, store)))
  })
})

describe("SchedulerRegistry: shutdown", () => {
  it.scoped("closing the registry interrupts every server in parallel and empties the name service", () =>
    Effect.gen(function* () {
      const { registry, scope } = yield* buildRegistry(registryLayer())
      const schedulers = yield* Effect.forEach([1, 2, 3, 4, 5], (i) => registry.find(idOf(400 + i), true))
      yield* Scope.close(scope, Exit.void)
      expect(schedulers.every((s) => s.fiber.unsafePoll() !== null)).toBe(true)
      expect(yield* registry.getProcesses()).toEqual([])
      const after = yield* Effect.either(registry.find(idOf(401), true))
      expect(errorTag(after)).toBe("RegistryClosed")
    })
  )

  it.scopedLive("a find racing the close fails with RegistryClosed and starts nothing", () => {
    return Effect.gen(function* () {
      const store = yield* FaultyStore.make(yield* AssignmentStore.makeMemory, {
        latest: FaultyStore.delay("50 millis")
      })
      const storeLayer = Layer.succeed(AssignmentStore.AssignmentStore, store.store)
      const { registry, scope } = yield* buildRegistry(registryLayer({}, storeLayer))
      const starting = yield* Effect.fork(Effect.either(registry.find(idOf(410), true)))
      yield* Effect.repeatN(Effect.yieldNow(), 5)
      yield* Scope.close(scope, Exit.void)
      expect(errorTag(yield* Fiber.join(starting))).toBe("RegistryClosed")
      expect(yield* registry.getProcesses()).toEqual([])
      expect(errorTag(yield* Effect.either(registry.find(idOf(411), true)))).toBe("RegistryClosed")
      expect(yield* store.control.latestCalls).toBe(1)
    })
  })
})
