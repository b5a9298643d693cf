/**
 * The cluster registry in one process, on `@effect/cluster`'s `TestRunner` (in-memory runner storage, one
 * runner that holds every shard): the same registry contract as the local layer, then what is the cluster's
 * own: passivation by the entity's idle time and reactivation from the store, the restart of a server whose
 * next slot another writer took, `find(p)` from the store, and the protocol's schemas.
 */
import { TestRunner } from "@effect/cluster"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Exit, Layer, Option, Queue, Schema, Scope } from "effect"
import * as Assignment from "../../src/Assignment.js"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import * as ClusterRegistry from "../../src/cluster/ClusterRegistry.js"
import * as SchedulerEntity from "../../src/cluster/SchedulerEntity.js"
import type { ProcessId } from "../../src/ProcessId.js"
import * as SchedulerRegistry from "../../src/SchedulerRegistry.js"
import type { RegistryEvent } from "../../src/ServiceRegistry.js"
import * as Wallet from "../../src/Wallet.js"
import { idOf, messageOf } from "../fixtures/ids.js"
import { registryLayer } from "../fixtures/registry.js"
import { WalletTest, walletJwk2 } from "../fixtures/wallet.js"
import { registryContract, stored } from "./contract.js"

/** The cluster registry on a fresh in-memory TestRunner, over `store`; also gives the wallet and the store. */
const clusterLayer = (
  store: Layer.Layer<AssignmentStore.AssignmentStore> = AssignmentStore.layerMemory,
  options: ClusterRegistry.ClusterOptions = {}
) =>
  ClusterRegistry.layerCluster(options).pipe(
    Layer.provideMerge(TestRunner.layer),
    Layer.provideMerge(Layer.mergeAll(Layer.orDie(WalletTest), store))
  )

registryContract("SchedulerRegistry.layer (one node)", (store) => registryLayer({}, store))
registryContract("ClusterRegistry.layerCluster (TestRunner)", (store) => clusterLayer(store))

/** An assignment of `messageOf(n)` at `slot` signed by `wallet`, as another writer would make it. */
const signed = (wallet: Wallet.Wallet["Type"], processId: ProcessId, slot: number, n: number, hashChain: string) =>
  Assignment.build(
    { owner: wallet.owner, sign: wallet.sign },
    { processId, messageId: messageOf(n).id, slot, epoch: 0, timestamp: Date.now(), blockHeight: 0, hashChain }
  )

const tagOf = (e: RegistryEvent) => (e._tag === "Unregistered" ? `Unregistered:${e.reason}` : e._tag)
const errorTag = <A, E extends { _tag: string }>(either: Either.Either<A, E>) =>
  Either.match(either, { onLeft: (e) => e._tag, onRight: () => "Right" })

describe("ClusterRegistry in one process", () => {
  it.live("an idle entity passivates (its server stops) and the next schedule reactivates it from the store", () =>
    Effect.gen(function* () {
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const store = yield* AssignmentStore.AssignmentStore
      const events = yield* registry.subscribe
      const P = idOf(70)
      const scheduler = yield* registry.find(P, true)
      const server = scheduler.fiber
      const first = yield* Effect.forEach([1, 2, 3], (n) => scheduler.schedule(messageOf(n)))
      // the cluster's reaper looks every 5,000 ms at the earliest: wait for its event rather than a time
      const seen: Array<string> = []
      while (!seen.includes("Unregistered:passivated")) seen.push(tagOf(yield* Queue.take(events)))
      expect(seen).toEqual(["Registered", "Activated", "Passivated", "Unregistered:passivated"])
      expect(server.unsafePoll()).not.toBeNull()
      expect(yield* registry.getProcesses()).toEqual([])
      // only looks: known from the store, not started
      expect(yield* registry.find(P)).toBe(scheduler)
      expect(yield* registry.getProcesses()).toEqual([])
      const next = yield* scheduler.schedule(messageOf(4))
      expect(next.slot).toBe(3)
      expect(next.hashChain).toBe(Assignment.nextHashChain(first[2]!.id, first[2]!.hashChain))
      expect(yield* registry.getProcesses()).toEqual([P])
      expect(scheduler.fiber).not.toBe(server)
      expect(Chunk.toReadonlyArray(yield* Queue.takeAll(events)).map(tagOf)).toEqual(["Registered", "Activated"])
      expect(Assignment.verifyChain(P, yield* stored(store, P))).toBeUndefined()
    }).pipe(Effect.provide(clusterLayer(AssignmentStore.layerMemory, { idleTimeToLiveMs: 300 })), Effect.scoped)
  )

  it.live("a server whose next slot another writer took is replaced from the store; the request still lands", () =>
    Effect.gen(function* () {
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const store = yield* AssignmentStore.AssignmentStore
      const wallet = yield* Wallet.Wallet
      const P = idOf(71)
      const scheduler = yield* registry.find(P, true)
      const mine = yield* Effect.forEach([1, 2], (n) => scheduler.schedule(messageOf(n)))
      const before = scheduler.fiber
      // another writer (a runner that has not stopped yet) appends slot 2 behind this server's back
      const foreign = yield* signed(wallet, P, 2, 90, Assignment.nextHashChain(mine[1]!.id, mine[1]!.hashChain))
      yield* store.append(foreign, messageOf(90))
      const next = yield* scheduler.schedule(messageOf(3))
      expect(next.slot).toBe(3)
      expect(next.hashChain).toBe(Assignment.nextHashChain(foreign.id, foreign.hashChain))
      expect(before.unsafePoll()).not.toBeNull()
      expect(scheduler.fiber.unsafePoll()).toBeNull()
      const all = yield* stored(store, P)
      expect(all.map((a) => a.slot)).toEqual([0, 1, 2, 3])
      expect(all[2]!.id).toBe(foreign.id)
      expect(Assignment.verifyChain(P, all)).toBeUndefined()
      // a message already in the schedule is still a conflict, as on one node
      const again = yield* Effect.either(scheduler.schedule(messageOf(90)))
      expect(Either.isLeft(again) && again.left).toMatchObject({
        _tag: "StoreConflict",
        reason: "message already scheduled"
      })
    }).pipe(Effect.provide(clusterLayer()), Effect.scoped)
  )

  it.live("find(p) without a live entity: a handle for a process the store knows, NotFound otherwise", () =>
    Effect.gen(function* () {
      const store = yield* AssignmentStore.AssignmentStore
      const wallet = yield* Wallet.Wallet
      const P = idOf(72)
      const zero = yield* signed(wallet, P, 0, 0, Assignment.initialHashChain(P))
      yield* store.append(zero, messageOf(0))
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const found = yield* registry.find(P)
      expect(yield* registry.getProcesses()).toEqual([])
      expect((yield* found.schedule(messageOf(1))).slot).toBe(1)
      expect(yield* registry.getProcesses()).toEqual([P])
      expect(errorTag(yield* Effect.either(registry.find(idOf(73))))).toBe("NotFound")
      expect(yield* registry.listProcesses()).toEqual([P])
    }).pipe(Effect.provide(clusterLayer()), Effect.scoped)
  )

  it.live("disabled mode and another identity start nothing; a closed registry fails with RegistryClosed", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(clusterLayer(), scope)
      const registry = Effect.runSync(Effect.provide(SchedulerRegistry.SchedulerRegistry, context))
      const other = yield* Wallet.make(walletJwk2)
      expect(errorTag(yield* Effect.either(registry.find(idOf(74), true, { mode: "disabled" })))).toBe(
        "SchedulingDisabled"
      )
      expect(errorTag(yield* Effect.either(registry.find(idOf(74), true, { wallet: other })))).toBe(
        "SchedulingDisabled"
      )
      expect(yield* registry.getProcesses()).toEqual([])
      expect((yield* registry.getWallets()).map((w) => w.address)).toEqual([(yield* registry.getWallet()).address])
      expect(Option.isNone(yield* registry.walletFor(other.address))).toBe(true)
      yield* Scope.close(scope, Exit.void)
      expect(errorTag(yield* Effect.either(registry.find(idOf(74), true)))).toBe("RegistryClosed")
    })
  )

  it("the protocol's schemas round-trip Info (with and without a last slot) and the typed errors", () => {
    const info = {
      processId: idOf(75),
      slot: -1,
      hashChain: undefined,
      assignmentId: undefined,
      timestamp: undefined,
      address: "addr",
      mode: "local_confirmation" as const,
      mailboxDepth: 0
    }
    const encoded = Schema.encodeSync(SchedulerEntity.Info)(info)
    expect(encoded).toMatchObject({ hashChain: null, assignmentId: null, timestamp: null })
    expect(JSON.parse(JSON.stringify(encoded))).toEqual(encoded)
    expect(Schema.decodeSync(SchedulerEntity.Info)(encoded)).toEqual(info)
    const later = { ...info, slot: 3, hashChain: "h", assignmentId: "a", timestamp: 5 }
    expect(Schema.decodeSync(SchedulerEntity.Info)(Schema.encodeSync(SchedulerEntity.Info)(later))).toEqual(later)
    const error = Schema.decodeUnknownSync(SchedulerEntity.ScheduleError)({
      _tag: "StoreConflict",
      processId: idOf(75),
      slot: 2,
      reason: "slot already written"
    })
    expect(error._tag).toBe("StoreConflict")
    expect(error).toBeInstanceOf(Error)
    expect(SchedulerEntity.SchedulerEntity.type).toBe("Scheduler")
  })
})
