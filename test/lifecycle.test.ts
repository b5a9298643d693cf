import { describe, expect, it } from "@effect/vitest"
import {
  Chunk,
  Deferred,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Metric,
  Option,
  Queue,
  Scope,
  TestClock
} from "effect"
import * as Assignment from "../src/Assignment.js"
import * as AssignmentStore from "../src/AssignmentStore.js"
import * as Metrics from "../src/internal/metrics.js"
import * as NameService from "../src/NameService.js"
import * as SchedulerRegistry from "../src/SchedulerRegistry.js"
import * as ServiceRegistry from "../src/ServiceRegistry.js"
import * as Wallet from "../src/Wallet.js"
import { idOf, messageOf } from "./fixtures/ids.js"
import { buildRegistry, registryLayer } from "./fixtures/registry.js"
import { walletJwk, walletJwk2 } from "./fixtures/wallet.js"

const P = idOf(60)
const tagOf = (e: ServiceRegistry.RegistryEvent) => (e._tag === "Unregistered" ? `Unregistered:${e.reason}` : e._tag)
const drain = (queue: Queue.Dequeue<ServiceRegistry.RegistryEvent>) =>
  Effect.map(Queue.takeAll(queue), (events) => Chunk.toReadonlyArray(events).map(tagOf))
const errorTag = <A, E extends { _tag: string }>(either: Either.Either<A, E>) =>
  Either.match(either, { onLeft: (e) => e._tag, onRight: () => "Right" })
/** A signer that dies: the scheduler stops with a defect on its next assignment. */
const dyingSigner = (owner: Uint8Array): Assignment.AssignmentSigner => ({
  owner,
  sign: () => Effect.die(new Error("signer crashed (injected)"))
})

describe("lifecycle: events", () => {
  it.scoped("a scheduler's life reports Registered, Activated, then Unregistered with its reason", () =>
    Effect.gen(function* () {
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const events = yield* registry.subscribe
      const s = yield* registry.find(P, true)
      yield* Fiber.interrupt(s.fiber)
      expect(yield* drain(events)).toEqual(["Registered", "Activated", "Unregistered:interrupted"])
      const event = ServiceRegistry.RegistryEvent.Registered({
        name: new NameService.Name("scheduler@1.0", s.address, P)
      })
      expect(event.name.id).toBe(P)
    }).pipe(Effect.provide(registryLayer()))
  )

  it.scoped("K8: exit by success, failure, defect and interruption each fire one removal event", () =>
    Effect.gen(function* () {
      const names = yield* NameService.make
      const counters = yield* ServiceRegistry.make<string, string>({ serviceType: "test@1.0" }).pipe(
        Effect.provideService(NameService.NameService, names)
      )
      const events = yield* counters.subscribe
      const gate = yield* Deferred.make<void>()
      const endings: ReadonlyArray<Effect.Effect<unknown, string>> = [
        Effect.void,
        Effect.fail("typed failure"),
        Effect.die(new Error("defect")),
        Effect.interrupt
      ]
      yield* Effect.forEach(endings, (end, i) =>
        counters.getOrStart("node", `id-${i}`, () => ({
          handle: `handle-${i}`,
          run: (ready) => Effect.zipRight(ready, Effect.zipRight(Deferred.await(gate), end)),
          stopped: (reason) => reason
        }))
      )
      yield* Deferred.succeed(gate, undefined)
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      const removals = (yield* drain(events)).filter((t) => t.startsWith("Unregistered"))
      expect([...removals].sort()).toEqual(
        ["Unregistered:exited", "Unregistered:failed", "Unregistered:failed", "Unregistered:interrupted"].sort()
      )
      expect(yield* names.size).toBe(0)
    })
  )

  it.scoped("closing the registry reports Unregistered with reason registry_closed", () =>
    Effect.gen(function* () {
      const { registry, scope } = yield* buildRegistry(registryLayer())
      const events = yield* registry.subscribe
      yield* registry.find(P, true)
      yield* Scope.close(scope, Exit.void)
      expect(yield* drain(events)).toEqual(["Registered", "Activated", "Unregistered:registry_closed"])
    })
  )

  it.scoped("a subscriber that never reads does not block the registry and keeps only the newest events", () =>
    Effect.gen(function* () {
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const slow = yield* registry.subscribe
      for (let i = 0; i < 20; i++) {
        const s = yield* registry.find(idOf(700 + i), true)
        yield* Fiber.interrupt(s.fiber)
      }
      // 60 events were published; the buffer of 4 kept the newest
      const kept = yield* drain(slow)
      expect(kept).toEqual(["Unregistered:interrupted", "Registered", "Activated", "Unregistered:interrupted"])
      expect(yield* registry.getProcesses()).toEqual([])
    }).pipe(Effect.provide(registryLayer({ eventsCapacity: 4 })))
  )
})

describe("lifecycle: idle passivation and reactivation", () => {
  it.scoped("an idle scheduler passivates after its time-to-live and frees its entry", () =>
    Effect.gen(function* () {
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const events = yield* registry.subscribe
      const s = yield* registry.find(P, true)
      yield* s.schedule(messageOf(1))
      yield* TestClock.adjust(999)
      expect(yield* registry.getProcesses()).toEqual([P])
      yield* TestClock.adjust(1_001)
      yield* Fiber.await(s.fiber)
      expect(yield* registry.getProcesses()).toEqual([])
      expect(yield* (yield* NameService.NameService).size).toBe(0)
      expect(yield* registry.listProcesses()).toEqual([P])
      expect(yield* drain(events)).toEqual(["Registered", "Activated", "Passivated", "Unregistered:passivated"])
    }).pipe(Effect.provide(registryLayer({ idleTimeToLiveMs: 1_000 })))
  )

  it.scoped("a request keeps the scheduler alive: passivation counts from the last activity", () =>
    Effect.gen(function* () {
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const s = yield* registry.find(P, true)
      yield* TestClock.adjust(600)
      yield* s.schedule(messageOf(1))
      yield* TestClock.adjust(600) // the first idle check finds activity 600 ms ago
      expect(s.fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust(1_000)
      yield* Fiber.await(s.fiber)
      expect(yield* registry.getProcesses()).toEqual([])
    }).pipe(Effect.provide(registryLayer({ idleTimeToLiveMs: 1_000 })))
  )

  it.scoped("schedulers started at different times share one idle sweep, which stops with the last", () =>
    Effect.gen(function* () {
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const a = yield* registry.find(idOf(61), true) // t = 0: the sweep starts, checking at 1,000, 2,000, …
      yield* TestClock.adjust(500)
      const b = yield* registry.find(idOf(62), true) // t = 500
      yield* TestClock.adjust(600) // t = 1,100: the check at 1,000 finds a idle for 1,000 ms, b for 500
      yield* Fiber.await(a.fiber)
      expect(b.fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust(1_000) // t = 2,100: the check at 2,000 finds b idle for 1,500 ms
      yield* Fiber.await(b.fiber)
      expect(yield* registry.getProcesses()).toEqual([])
      // the sweep stopped with b: a scheduler started now gets a new one, checking at 3,400, 4,400, …
      yield* TestClock.adjust(300)
      const c = yield* registry.find(idOf(63), true) // t = 2,400
      yield* TestClock.adjust(999)
      expect(c.fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust(2) // t = 3,401
      yield* Fiber.await(c.fiber)
      expect(yield* registry.getProcesses()).toEqual([])
    }).pipe(Effect.provide(registryLayer({ idleTimeToLiveMs: 1_000 })))
  )

  it.scoped("passivation then reactivation under concurrent schedule: one new server, no slot reused", () =>
    Effect.gen(function* () {
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const store = yield* AssignmentStore.AssignmentStore
      const events = yield* registry.subscribe
      const old = yield* registry.find(P, true)
      const before = yield* Effect.forEach([1, 2, 3], (i) => old.schedule(messageOf(i)))
      yield* TestClock.adjust(1_500)
      yield* Fiber.await(old.fiber)
      // callers through the old handle and through find race to reactivate
      const results = yield* Effect.all(
        [
          ...Array.from({ length: 20 }, (_, i) => old.schedule(messageOf(100 + i))),
          ...Array.from({ length: 20 }, (_, i) =>
            Effect.flatMap(registry.find(P, true), (s) => s.schedule(messageOf(200 + i)))
          )
        ],
        { concurrency: "unbounded" }
      ).pipe(Effect.withMaxOpsBeforeYield(16))
      expect(results.map((a) => a.slot).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 3))
      const all = yield* store.range(P, { by: "slot", limit: 100 })
      expect(
        Assignment.verifyChain(
          P,
          all.map((e) => e.assignment)
        )
      ).toBeUndefined()
      expect(all[3]!.assignment.hashChain).toBe(Assignment.nextHashChain(before[2]!.id, before[2]!.hashChain))
      const tags = yield* drain(events)
      expect(tags.filter((t) => t === "Activated")).toHaveLength(2)
      expect(yield* registry.getProcesses()).toEqual([P])
    }).pipe(Effect.provide(registryLayer({ idleTimeToLiveMs: 1_000 })))
  )
})

describe("lifecycle: supervision", () => {
  it.scoped(
    "a scheduler that dies with a defect is logged at Error, removed, and its callers get a typed error",
    () => {
      const logged: Array<{ level: string; message: string }> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          logged.push({ level: logLevel.label, message: String(message) })
        })
      )
      return Effect.gen(function* () {
        const wallet = yield* SchedulerRegistry.getWallet()
        const s = yield* SchedulerRegistry.find(P, true, { signer: dyingSigner(wallet.owner) })
        const failed = yield* Effect.either(s.schedule(messageOf(1)))
        expect(Either.getLeft(failed)).toEqual(
          Option.some(expect.objectContaining({ _tag: "SchedulerStopped", processId: P }))
        )
        yield* Fiber.await(s.fiber)
        expect(errorTag(yield* Effect.either(SchedulerRegistry.find(P)))).toBe("NotFound")
        expect(logged.filter((l) => l.level === "ERROR").map((l) => l.message)).toContainEqual(
          expect.stringContaining("scheduler stopped with an error")
        )
        // the next find(p, true) restarts it from the store
        const restarted = yield* SchedulerRegistry.find(P, true)
        expect((yield* restarted.schedule(messageOf(2))).slot).toBe(0)
      }).pipe(Effect.provide(registryLayer().pipe(Layer.provide(capture))), Logger.withMinimumLogLevel(LogLevel.Debug))
    }
  )

  it.scoped("restarts are bounded: after 3 failures in the window find(p, true) fails fast until it passes", () =>
    Effect.gen(function* () {
      const wallet = yield* SchedulerRegistry.getWallet()
      const crash = Effect.gen(function* () {
        const s = yield* SchedulerRegistry.find(P, true, { signer: dyingSigner(wallet.owner) })
        yield* Effect.either(s.schedule(messageOf(1)))
        yield* Fiber.await(s.fiber)
      })
      yield* Effect.repeatN(crash, 2)
      const refused = yield* Effect.either(SchedulerRegistry.find(P, true))
      expect(Either.getLeft(refused)).toEqual(
        Option.some(expect.objectContaining({ _tag: "RestartLimitExceeded", failures: 3, windowMs: 10_000 }))
      )
      yield* TestClock.adjust(10_001)
      const again = yield* SchedulerRegistry.find(P, true)
      expect((yield* again.info).slot).toBe(-1)
    }).pipe(
      Effect.provide(registryLayer({ restartPolicy: { maxFailures: 3, windowMs: 10_000 } })),
      Logger.withMinimumLogLevel(LogLevel.None)
    )
  )
})

describe("lifecycle: metrics", () => {
  it.scoped("activations, passivations, assignments and active services are counted without per-process tags", () =>
    Effect.gen(function* () {
      const tagged = <T, I, O>(m: Metric.Metric<T, I, O>) => Metric.tagged(m, "service_type", "scheduler@1.0")
      const read = Effect.all({
        activations: Metric.value(tagged(Metrics.activations)),
        passivations: Metric.value(tagged(Metrics.passivations)),
        active: Metric.value(tagged(Metrics.activeServices)),
        assignments: Metric.value(Metrics.assignments)
      })
      const before = yield* read
      const s = yield* SchedulerRegistry.find(idOf(61), true)
      yield* s.schedule(messageOf(1))
      yield* s.schedule(messageOf(2))
      const during = yield* read
      expect(during.activations.count - before.activations.count).toBe(1)
      expect(during.assignments.count - before.assignments.count).toBe(2)
      expect(during.active.value).toBe(1)
      yield* TestClock.adjust(2_000)
      yield* Fiber.await(s.fiber)
      const after = yield* read
      expect(after.passivations.count - before.passivations.count).toBe(1)
      expect(after.active.value).toBe(0)
    }).pipe(Effect.provide(registryLayer({ idleTimeToLiveMs: 1_000 })))
  )
})

describe("lifecycle: several wallets", () => {
  it.scoped("a process is hosted under the identity it names; find(p) finds it; its assignments are signed by it", () =>
    Effect.gen(function* () {
      const second = yield* Wallet.make(walletJwk2)
      const layer = registryLayer({ identities: [second] })
      const { registry, scope } = yield* buildRegistry(layer)
      const identities = yield* registry.getWallets()
      expect(identities.map((w) => w.address)).toEqual([(yield* Wallet.make(walletJwk)).address, second.address])
      const chosen = Option.getOrThrow(yield* registry.walletFor(second.address))
      const s = yield* registry.find(P, true, { wallet: chosen })
      const a = yield* s.schedule(messageOf(1))
      expect(yield* Assignment.verify(a)).toBeUndefined()
      expect(Wallet.ownerToAddress(a.raw.subarray(514, 1026))).toBe(second.address)
      expect(yield* registry.find(P)).toBe(s)
      expect(yield* registry.walletFor(idOf(1))).toEqual(Option.none())
      yield* Scope.close(scope, Exit.void)
    })
  )
})

describe("lifecycle: more service types", () => {
  it.scoped("a second service type shares the name service, not its entries, with the schedulers", () =>
    Effect.gen(function* () {
      const names = yield* NameService.NameService
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const scheduler = yield* registry.find(P, true)
      const counters = yield* ServiceRegistry.make<{ readonly count: () => number }, never>({
        serviceType: "counter@1.0"
      })
      let n = 0
      const counter = yield* counters.getOrStart(scheduler.address, P, () => ({
        handle: { count: () => ++n },
        run: (ready) => Effect.zipRight(ready, Effect.never),
        stopped: () => undefined as never
      }))
      expect(counter.count()).toBe(1)
      expect(yield* names.size).toBe(2)
      expect(yield* registry.getProcesses()).toEqual([P])
      expect((yield* counters.entries()).map((e) => e.name.toString())).toEqual([
        `counter@1.0/${scheduler.address}/${P}`
      ])
      expect(Option.getOrThrow(yield* counters.lookup(scheduler.address, P))).toBe(counter)
      expect(yield* registry.find(P)).toBe(scheduler)
    }).pipe(Effect.provide(registryLayer()))
  )
})
