import { describe, expect, it } from "@effect/vitest"
import { Data, Deferred, Effect, Either, Exit, Fiber, Option } from "effect"
import * as NameService from "../src/NameService.js"

const fork = <A, E>(effect: Effect.Effect<A, E>) => Effect.forkScoped(effect)
const live = () => fork(Effect.never)
const observerCount = (fiber: Fiber.RuntimeFiber<unknown, unknown>): number =>
  (fiber as unknown as { _observers: Array<unknown> })._observers.length

/** Lets every exit observer and forked fiber run. */
const settle = Effect.repeatN(Effect.yieldNow(), 5)

describe("NameService (hb_name)", () => {
  it.scoped("atom_test: register, lookup, second register fails, unregister (plain value name)", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const f = yield* live()
      const g = yield* live()
      yield* names.register("test_name", f)
      expect(Option.getOrThrow(yield* names.lookup("test_name"))).toBe(f)
      const second = yield* Effect.either(names.register("test_name", g))
      expect(Either.getLeft(second).pipe(Option.map((e) => e._tag))).toEqual(Option.some("AlreadyRegistered"))
      expect(Option.getOrThrow(yield* names.lookup("test_name"))).toBe(f)
      yield* names.unregister("test_name")
      expect(yield* names.lookup("test_name")).toEqual(Option.none())
    })
  )

  it.scoped("term_test: struct names compare structurally", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const f = yield* live()
      const stamp = Date.now()
      yield* names.register(Data.struct({ term: "test", at: stamp }), f)
      // a different object with the same fields is the same name
      expect(Option.getOrThrow(yield* names.lookup(Data.struct({ term: "test", at: stamp })))).toBe(f)
      const again = yield* Effect.either(names.register(Data.struct({ term: "test", at: stamp }), yield* live()))
      expect(Either.isLeft(again)).toBe(true)
      yield* names.unregister(Data.struct({ term: "test", at: stamp }))
      expect(yield* names.lookup(Data.struct({ term: "test", at: stamp }))).toEqual(Option.none())
    })
  )

  it.scoped("Name compares by (service type, node, id) whatever its prefix hash source", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const f = yield* live()
      yield* names.register(new NameService.Name("svc", "node", "id1"), f)
      const prefix = NameService.Name.prefixHash("svc", "node")
      expect(Option.isSome(yield* names.lookup(new NameService.Name("svc", "node", "id1", prefix)))).toBe(true)
      expect(Option.isNone(yield* names.lookup(new NameService.Name("svc", "other", "id1")))).toBe(true)
      expect(Option.isNone(yield* names.lookup(new NameService.Name("svc2", "node", "id1")))).toBe(true)
    })
  )

  it.scoped("concurrency_test: 10 concurrent registers give exactly one success", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const fibers = yield* Effect.all(Array.from({ length: 10 }, live))
      const results = yield* Effect.all(
        fibers.map((f) => Effect.either(names.register("contended", f))),
        { concurrency: "unbounded" }
      )
      expect(results.filter(Either.isRight)).toHaveLength(1)
      expect(results.filter(Either.isLeft)).toHaveLength(9)
      const winner = fibers[results.findIndex(Either.isRight)]
      expect(Option.getOrThrow(yield* names.lookup("contended"))).toBe(winner)
    })
  )

  it.scoped("dead_process_test: a holder that exits is no longer looked up", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const gate = yield* Deferred.make<void>()
      const f = yield* fork(Deferred.await(gate))
      yield* names.register("dies", f)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.await(f)
      expect(yield* names.lookup("dies")).toEqual(Option.none())
      expect(yield* names.size).toBe(0)
    })
  )

  it.scoped("cleanup_test: every entry is removed when its fiber exits (a real test)", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const gate = yield* Deferred.make<void>()
      const fibers = yield* Effect.all(Array.from({ length: 5 }, () => fork(Deferred.await(gate))))
      yield* Effect.forEach(fibers, (f, i) => names.register(`cleanup-${i}`, f))
      expect(yield* names.size).toBe(5)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.awaitAll(fibers)
      expect(yield* names.size).toBe(0)
      expect(yield* names.all()).toEqual([])
    })
  )

  it.scoped("all_test: 10 live temporary names raise the count by 10, then it returns to baseline", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      yield* names.register("test_name", yield* live())
      const baseline = (yield* names.all()).length
      const gate = yield* Deferred.make<void>()
      const temps = yield* Effect.all(Array.from({ length: 10 }, () => fork(Deferred.await(gate))))
      yield* Effect.forEach(temps, (f, i) => names.register(Data.tuple("random_name", i), f))
      expect((yield* names.all()).length).toBe(baseline + 10)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.awaitAll(temps)
      expect((yield* names.all()).length).toBe(baseline)
    })
  )

  it.scoped("behaviour 4: unregister of an unknown name succeeds (idempotent)", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      yield* names.unregister("never-registered")
      yield* names.unregister("never-registered")
      expect(yield* names.size).toBe(0)
    })
  )

  it.scoped("behaviour 8: registering an already exited fiber leaves no entry", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const f = yield* fork(Effect.void)
      yield* Fiber.await(f)
      yield* names.register("ghost", f)
      expect(yield* names.lookup("ghost")).toEqual(Option.none())
      expect(yield* names.size).toBe(0)
    })
  )

  it.scoped("K2: a stale cleanup is compare-and-delete and never removes a newer registration", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const gate = yield* Deferred.make<void>()
      const f0 = yield* fork(Deferred.await(gate))
      yield* names.register("P", f0)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.await(f0)
      const f1 = yield* live()
      yield* names.register("P", f1)
      // A resumes its delayed cleanup of f0: it must not touch f1's entry
      expect(yield* names.unregisterIf("P", f0)).toBe(false)
      expect(Option.getOrThrow(yield* names.lookup("P"))).toBe(f1)
      expect(yield* names.size).toBe(1)
    })
  )

  it.scoped("K4: in the tick its fiber completes, lookup no longer returns it", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const gate = yield* Deferred.make<void>()
      const f1 = yield* fork(Deferred.await(gate))
      yield* names.register("P", f1)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.await(f1)
      const found = yield* names.lookup("P")
      expect(Option.isNone(found)).toBe(true)
    })
  )

  it.scoped("K5: a failed holder counts as absent and is replaced atomically", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const gate = yield* Deferred.make<void>()
      const f1 = yield* fork(Effect.zipRight(Deferred.await(gate), Effect.fail("boom")))
      yield* names.register("P", f1)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.await(f1)
      const f2 = yield* live()
      yield* names.register("P", f2)
      expect(Option.getOrThrow(yield* names.lookup("P"))).toBe(f2)
      expect((yield* names.all()).map((r) => r.fiber)).toEqual([f2])
    })
  )

  it.scoped("K6: 10,000 failed registrations leave internal sizes unchanged", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const f1 = yield* live()
      yield* names.register("P", f1)
      const before = observerCount(f1)
      const fx = yield* live()
      for (let i = 0; i < 10_000; i++) {
        const result = yield* Effect.either(names.register("P", fx))
        if (Either.isRight(result)) throw new Error("a failing register succeeded")
      }
      expect(yield* names.size).toBe(1)
      expect(observerCount(f1)).toBe(before)
      expect(observerCount(fx)).toBe(observerCount(yield* live()))
    })
  )

  it.scoped("K7: one fiber under two names is cleaned up under both", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const gate = yield* Deferred.make<void>()
      const f = yield* fork(Deferred.await(gate))
      yield* names.register("A", f)
      yield* names.register("B", f)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.await(f)
      expect(yield* names.all()).toEqual([])
      expect(yield* names.size).toBe(0)
    })
  )

  it.scoped("K8: fibers ending by success, failure, defect and interruption are all removed", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const gate = yield* Deferred.make<void>()
      const endings = [
        Effect.void,
        Effect.fail("typed failure"),
        Effect.die(new Error("defect")),
        Effect.interrupt
      ] as const
      const fibers = yield* Effect.forEach(endings, (end) =>
        fork(Effect.zipRight(Deferred.await(gate), end as Effect.Effect<void, string>))
      )
      yield* Effect.forEach(fibers, (f, i) => names.register(`K8-${i}`, f))
      expect(yield* names.size).toBe(4)
      yield* Deferred.succeed(gate, undefined)
      const exits = yield* Effect.forEach(fibers, Fiber.await)
      expect(exits.map((e) => e._tag)).toEqual(["Success", "Failure", "Failure", "Failure"])
      expect(yield* names.size).toBe(0)
    })
  )

  it.scoped("K9: after unregister and re-register, the old fiber's exit leaves the new entry", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const gate = yield* Deferred.make<void>()
      const f1 = yield* fork(Deferred.await(gate))
      yield* names.register("P", f1)
      yield* names.unregister("P")
      const f2 = yield* live()
      yield* names.register("P", f2)
      yield* Deferred.succeed(gate, undefined)
      expect(Exit.isSuccess(yield* Fiber.await(f1))).toBe(true)
      yield* settle
      expect(Option.getOrThrow(yield* names.lookup("P"))).toBe(f2)
      expect(f2.unsafePoll()).toBeNull()
    })
  )

  it.scoped("K10a: registering the same fiber twice keeps it running with one entry", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const f = yield* live()
      yield* names.register("P", f)
      yield* names.register("P", f)
      yield* settle
      expect(f.unsafePoll()).toBeNull()
      expect(yield* names.size).toBe(1)
    })
  )

  it.scoped("K10b: a registration made while the old holder is slow to stop survives its exit", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const release = yield* Deferred.make<void>()
      const f1 = yield* fork(Effect.never.pipe(Effect.onInterrupt(() => Deferred.await(release))))
      yield* names.register("P", f1)
      yield* names.unregister("P")
      const interrupting = yield* Effect.fork(Fiber.interrupt(f1))
      yield* settle
      const f2 = yield* live()
      yield* names.register("P", f2)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(interrupting)
      expect(Option.getOrThrow(yield* names.lookup("P"))).toBe(f2)
      expect(yield* names.size).toBe(1)
    })
  )
})
