/**
 * The registry contract that both `SchedulerRegistry.layer` (one node) and `ClusterRegistry.layerCluster` (a
 * cluster) keep: the seed's `dev_scheduler_registry` tests, exactly one server under 50 racing
 * `find(p, true)`, gap-free slots under 100 concurrent schedules, and a restart that continues at n + 1 with
 * the hash chain linking.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Exit, Layer, Scope } from "effect"
import * as Assignment from "../../src/Assignment.js"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import type { ProcessId } from "../../src/ProcessId.js"
import * as SchedulerRegistry from "../../src/SchedulerRegistry.js"
import { FaultyStore } from "../../src/testing/index.js"
import { idOf, messageOf } from "../fixtures/ids.js"

/** A registry over the given store; it may also give other services (a cluster's Sharding). */
export type RegistryLayer = (
  store: Layer.Layer<AssignmentStore.AssignmentStore>
) => Layer.Layer<SchedulerRegistry.SchedulerRegistry>

const ID1 = new Uint8Array(32) // <<0:256>>, raw, as in the seed's tests
const ID2 = new Uint8Array(32).fill(1)
const text = (raw: Uint8Array) => Buffer.from(raw).toString("base64url")

const errorTag = <A, E extends { _tag: string }>(either: Either.Either<A, E>) =>
  Either.match(either, { onLeft: (e) => e._tag, onRight: () => "Right" })

/** A schedule read back from the store, slot order. */
export const stored = (store: AssignmentStore.AssignmentStore["Type"], processId: ProcessId) =>
  Effect.map(store.range(processId, { by: "slot", limit: 10_000 }), (entries) => entries.map((e) => e.assignment))

export const registryContract = (name: string, registryLayer: RegistryLayer) =>
  describe(`${name}: the registry contract`, () => {
    const withRegistry = () => Effect.provide(registryLayer(AssignmentStore.layerMemory))
    /** Runs `body` on a registry over a faulty memory store with `options`, giving it the store's control. */
    const withFaultyStore =
      (options: FaultyStore.Options = {}) =>
      <A, E>(
        body: (faulty: FaultyStore.FaultyStore["Type"]) => Effect.Effect<A, E, SchedulerRegistry.SchedulerRegistry>
      ) =>
        Effect.gen(function* () {
          const { store, control } = yield* FaultyStore.make(yield* AssignmentStore.makeMemory, options)
          return yield* body(control).pipe(
            Effect.provide(registryLayer(Layer.succeed(AssignmentStore.AssignmentStore, store)))
          )
        }).pipe(Effect.scoped)

    it.live("find_non_existent_process: find(ID1) gives NotFound and starts nothing", () =>
      withFaultyStore()((faulty) =>
        Effect.gen(function* () {
          expect(errorTag(yield* Effect.either(SchedulerRegistry.find(ID1)))).toBe("NotFound")
          expect(yield* SchedulerRegistry.getProcesses()).toEqual([])
          expect(yield* faulty.appendCalls).toBe(0)
        })
      )
    )

    it.live("create_and_find_process: find(ID1, true) then find(ID1) give the same scheduler", () =>
      Effect.gen(function* () {
        const created = yield* SchedulerRegistry.find(ID1, true)
        const found = yield* SchedulerRegistry.find(text(ID1))
        expect(found).toBe(created)
        expect(created.processId).toBe(text(ID1))
        expect(created.fiber.unsafePoll()).toBeNull()
        expect((yield* created.info).slot).toBe(-1)
      }).pipe(withRegistry(), Effect.scoped)
    )

    it.live("create_multiple_processes: two ids give two schedulers, each found again", () =>
      Effect.gen(function* () {
        const one = yield* SchedulerRegistry.find(ID1, true)
        const two = yield* SchedulerRegistry.find(ID2, true)
        expect(one).not.toBe(two)
        expect(one.fiber.id()).not.toEqual(two.fiber.id())
        expect(yield* SchedulerRegistry.find(ID1)).toBe(one)
        expect(yield* SchedulerRegistry.find(ID2)).toBe(two)
      }).pipe(withRegistry(), Effect.scoped)
    )

    it.live("get_all_processes: getProcesses() has both ids, in 43-character form", () =>
      Effect.gen(function* () {
        yield* SchedulerRegistry.find(ID1, true)
        yield* SchedulerRegistry.find(ID2, true)
        const processes = yield* SchedulerRegistry.getProcesses()
        expect([...processes].sort()).toEqual([text(ID1), text(ID2)].sort())
      }).pipe(withRegistry(), Effect.scoped)
    )

    it.live("14 / K1: 50 racing find(P, true) start one server; 100 schedules get slots 0..99", () =>
      withFaultyStore({ latest: FaultyStore.delay("10 millis") })((faulty) =>
        Effect.gen(function* () {
          const handles = yield* Effect.all(
            Array.from({ length: 50 }, () => SchedulerRegistry.find(idOf(14), true)),
            { concurrency: "unbounded" }
          ).pipe(Effect.withMaxOpsBeforeYield(16))
          expect(yield* faulty.latestCalls).toBe(1)
          expect(new Set(handles.map((h) => h.fiber)).size).toBe(1)
          expect(yield* SchedulerRegistry.getProcesses()).toEqual([idOf(14)])
          const assignments = yield* Effect.all(
            Array.from({ length: 100 }, (_, i) => handles[i % 50]!.schedule(messageOf(i))),
            { concurrency: "unbounded" }
          )
          expect(assignments.map((a) => a.slot).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i))
          expect(new Set(assignments.map((a) => a.messageId)).size).toBe(100)
          expect(yield* faulty.latestCalls).toBe(1)
        })
      )
    )

    it.live("26: a new registry on the same store continues at n + 1 with the hash chain linking", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.makeMemory
        const storeLayer = Layer.succeed(AssignmentStore.AssignmentStore, store)
        const P = idOf(26)
        const session = (first: number, count: number) =>
          Effect.gen(function* () {
            const scope = yield* Scope.make()
            const context = yield* Layer.buildWithScope(registryLayer(storeLayer), scope)
            const registry = Context.get(context, SchedulerRegistry.SchedulerRegistry)
            const scheduler = yield* registry.find(P, true)
            const recovered = (yield* scheduler.info).slot
            const made = yield* Effect.forEach(
              Array.from({ length: count }, (_, i) => first + i),
              (n) => scheduler.schedule(messageOf(n))
            )
            yield* Scope.close(scope, Exit.void)
            return { recovered, made }
          })
        const before = yield* session(0, 5)
        expect(before.recovered).toBe(-1)
        expect(before.made.map((a) => a.slot)).toEqual([0, 1, 2, 3, 4])
        const after = yield* session(5, 3)
        expect(after.recovered).toBe(4)
        expect(after.made.map((a) => a.slot)).toEqual([5, 6, 7])
        expect(after.made[0]!.hashChain).toBe(Assignment.nextHashChain(before.made[4]!.id, before.made[4]!.hashChain))
        const all = yield* stored(store, P)
        expect(all.map((a) => a.slot)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
        expect(Assignment.verifyChain(P, all)).toBeUndefined()
      })
    )
  })
