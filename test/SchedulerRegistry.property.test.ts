import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, FastCheck as fc, Layer, Scope } from "effect"
import * as AssignmentStore from "../src/AssignmentStore.js"
import * as NameService from "../src/NameService.js"
import type { Scheduler } from "../src/Scheduler.js"
import * as SchedulerRegistry from "../src/SchedulerRegistry.js"
import * as Wallet from "../src/Wallet.js"
import { idOf } from "./fixtures/ids.js"
import { walletJwk } from "./fixtures/wallet.js"

const wallet = Effect.runSync(Wallet.make(walletJwk))
const IDS = [idOf(1), idOf(2), idOf(3)] as const

type Op =
  | { readonly _tag: "find"; readonly i: number }
  | { readonly _tag: "create"; readonly i: number; readonly n: number }
  | { readonly _tag: "kill"; readonly i: number }
  | { readonly _tag: "race"; readonly creates: ReadonlyArray<number>; readonly kills: ReadonlyArray<number> }
  | { readonly _tag: "close" }

const index = fc.integer({ min: 0, max: IDS.length - 1 })
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: index.map((i) => ({ _tag: "find" as const, i })) },
  {
    weight: 4,
    arbitrary: fc
      .record({ i: index, n: fc.integer({ min: 1, max: 6 }) })
      .map((r) => ({ _tag: "create" as const, ...r }))
  },
  { weight: 2, arbitrary: index.map((i) => ({ _tag: "kill" as const, i })) },
  {
    weight: 3,
    arbitrary: fc
      .record({ creates: fc.array(index, { maxLength: 6 }), kills: fc.array(index, { maxLength: 3 }) })
      .map((r) => ({ _tag: "race" as const, ...r }))
  },
  { weight: 1, arbitrary: fc.constant({ _tag: "close" as const }) }
)

const isLive = (s: Scheduler) => s.fiber.unsafePoll() === null

describe("SchedulerRegistry: property", () => {
  it.effect.prop(
    "interleaved find, find-or-create, scheduler death and close keep one live scheduler per id",
    { ops: fc.array(op, { minLength: 1, maxLength: 25 }), maxOps: fc.integer({ min: 16, max: 128 }) },
    ({ maxOps, ops }) =>
      Effect.gen(function* () {
        const names = yield* NameService.make
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          SchedulerRegistry.layer().pipe(
            Layer.provide(
              Layer.mergeAll(
                Layer.succeed(NameService.NameService, names),
                Layer.succeed(Wallet.Wallet, wallet),
                AssignmentStore.layerMemory
              )
            )
          ),
          scope
        )
        const registry = context.pipe((c) =>
          c.unsafeMap.get(SchedulerRegistry.SchedulerRegistry.key)
        ) as SchedulerRegistry.SchedulerRegistry["Type"]
        const seen = new Map<string, Set<Scheduler>>(IDS.map((id) => [id, new Set()]))
        let closed = false

        const record = (s: Scheduler) => seen.get(s.processId)!.add(s)
        const liveOf = (id: string) => [...seen.get(id)!].filter(isLive)
        const kill = (i: number) =>
          Effect.flatMap(Effect.either(registry.find(IDS[i]!)), (found) =>
            Either.isRight(found) ? Fiber.interrupt(found.right.fiber) : Effect.void
          )
        const create = (i: number) =>
          Effect.map(Effect.either(registry.find(IDS[i]!, true)), (r) => {
            if (Either.isRight(r)) record(r.right)
            else if (!closed || r.left._tag !== "RegistryClosed") throw new Error(`create failed: ${r.left._tag}`)
          })

        const check = Effect.gen(function* () {
          const processes = new Set(yield* registry.getProcesses())
          for (const id of IDS) {
            const live = liveOf(id)
            expect(live.length).toBeLessThanOrEqual(1)
            expect(processes.has(id)).toBe(live.length === 1)
            const found = yield* Effect.either(registry.find(id))
            if (closed)
              expect(Either.getLeft(found).pipe((e) => e._tag === "Some" && e.value._tag)).toBe("RegistryClosed")
            else if (live.length === 1) expect(Either.getOrThrow(found)).toBe(live[0])
            else expect(Either.getLeft(found).pipe((e) => e._tag === "Some" && e.value._tag)).toBe("NotFound")
          }
        })

        for (const step of ops) {
          switch (step._tag) {
            case "find":
              break
            case "create":
              yield* Effect.all(
                Array.from({ length: step.n }, () => create(step.i)),
                { concurrency: "unbounded" }
              )
              break
            case "kill":
              yield* kill(step.i)
              break
            case "race":
              yield* Effect.all([...step.creates.map(create), ...step.kills.map(kill)], { concurrency: "unbounded" })
              // let interrupted servers finish exiting before the invariants are read
              yield* Effect.forEach(
                [...seen.values()].flatMap((s) => [...s]),
                (s) => (s.fiber.unsafePoll() === null ? Effect.void : Effect.asVoid(Fiber.await(s.fiber)))
              )
              break
            case "close":
              closed = true
              yield* Scope.close(scope, Exit.void)
              break
          }
          yield* check
        }
        closed = true
        yield* Scope.close(scope, Exit.void)
        yield* check
        expect(yield* names.size).toBe(0)
        expect([...seen.values()].flatMap((s) => [...s]).some(isLive)).toBe(false)
        // fibers yield every `maxOps` operations (16 to 128; below ~16 Effect itself livelocks), so concurrent
        // finds interleave between their lookup and their registration
      }).pipe(Effect.withMaxOpsBeforeYield(maxOps)),
    { fastCheck: { numRuns: 1000 } }
  )
})
