import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import * as Assignment from "../src/Assignment.js"
import * as AssignmentStore from "../src/AssignmentStore.js"
import * as NameService from "../src/NameService.js"
import * as SignerPool from "../src/node/SignerPool.js"
import * as SchedulerRegistry from "../src/SchedulerRegistry.js"
import * as Wallet from "../src/Wallet.js"
import { idOf, messageOf } from "./fixtures/ids.js"
import { WalletTest } from "./fixtures/wallet.js"

const PoolTest = SignerPool.layer({ size: 2 }).pipe(Layer.provideMerge(Layer.orDie(WalletTest)), Layer.orDie)

/** A registry that signs on the pool. */
const registryOnPool = Layer.unwrapEffect(
  Effect.map(SignerPool.SignerPool, (signer) => SchedulerRegistry.layer({ signer }))
).pipe(Layer.provideMerge(Layer.mergeAll(NameService.layer, AssignmentStore.layerMemory)))

describe("SignerPool", () => {
  it.scoped("signatures verify against the wallet's owner, and match the in-line signer's key", () =>
    Effect.gen(function* () {
      const pool = yield* SignerPool.SignerPool
      const wallet = yield* Wallet.Wallet
      expect(pool.size).toBe(2)
      expect(pool.owner).toEqual(wallet.owner)
      const data = new Uint8Array(48).map((_, i) => i)
      const signatures = yield* Effect.forEach(Array.from({ length: 8 }), () => pool.sign(data), {
        concurrency: "unbounded"
      })
      for (const signature of signatures) {
        expect(signature.length).toBe(Wallet.SIGNATURE_LENGTH)
        expect(Wallet.verify(wallet.owner, data, signature)).toBe(true)
      }
      // RSA-PSS is salted: two signatures of the same data differ, and both verify
      expect(Buffer.from(signatures[0]!).equals(Buffer.from(signatures[1]!))).toBe(false)
    }).pipe(Effect.provide(PoolTest))
  )

  it.scoped("assignments built with the pool verify", () =>
    Effect.gen(function* () {
      const pool = yield* SignerPool.SignerPool
      const processId = idOf(7)
      const assignment = yield* Assignment.build(pool, {
        processId,
        messageId: messageOf(1).id,
        slot: 0,
        epoch: 0,
        timestamp: 1_719_830_000_000,
        blockHeight: 1_500_000,
        hashChain: Assignment.initialHashChain(processId)
      })
      expect(yield* Assignment.verify(assignment)).toBeUndefined()
    }).pipe(Effect.provide(PoolTest))
  )

  it.scoped("a run that grows while its thread signs it: the thread takes the entries sent after it, one chain", () =>
    Effect.gen(function* () {
      const pool = yield* SignerPool.SignerPool
      const wallet = yield* Wallet.Wallet
      const processId = idOf(7)
      const entry = (i: number): Assignment.ChainEntry => ({
        messageId: messageOf(i).id,
        timestamp: 1_700_000_000_000 + i,
        blockHeight: 5,
        epoch: 0
      })
      // 16 entries hold the thread for about 60 ms; the 4 pushed after the job was sent reach it meanwhile
      const entries = Array.from({ length: 16 }, (_, i) => entry(i))
      const growth: Assignment.ChainGrowth = { grew: undefined }
      const start = { processId, slot: 0, hashChain: Assignment.initialHashChain(processId) }
      const run = yield* Effect.fork(Assignment.signChain(pool, start, entries, growth))
      while (growth.grew === undefined) yield* Effect.yieldNow()
      for (let i = 16; i < 20; i++) entries.push(entry(i))
      growth.grew()
      const signed = yield* run
      expect(signed.map((a) => a.slot)).toEqual(Array.from({ length: 20 }, (_, i) => i))
      expect(signed.map((a) => a.messageId)).toEqual(entries.map((e) => e.messageId))
      expect(Assignment.verifyChain(processId, signed)).toBeUndefined()
      for (const a of signed) expect(yield* Assignment.verify(a)).toBeUndefined()
      expect(signed.every((a) => Buffer.from(a.raw).includes(Buffer.from(wallet.owner)))).toBe(true)
      // once the reply is in, the run takes nothing more
      expect(growth.grew).toBeUndefined()
    }).pipe(Effect.provide(PoolTest))
  )

  it.effect("its worker threads stop when its scope closes", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(PoolTest, scope)
      const pool = Context.get(context, SignerPool.SignerPool)
      yield* pool.sign(new Uint8Array(48))
      // the diagnostic report lists this thread's live worker threads
      const workers = () => (process.report.getReport() as { workers: ReadonlyArray<unknown> }).workers.length
      expect(workers()).toBeGreaterThanOrEqual(2)
      yield* Scope.close(scope, Exit.void)
      expect(workers()).toBe(0)
      // a signature asked after the close is a defect, not a hang
      const after = yield* Effect.exit(pool.sign(new Uint8Array(48)))
      expect(Exit.isFailure(after)).toBe(true)
    })
  )

  it.scoped("concurrent schedules across processes keep each process's slots, order and hash chain", () =>
    Effect.gen(function* () {
      const registry = yield* SchedulerRegistry.SchedulerRegistry
      const processes = [idOf(11), idOf(12), idOf(13), idOf(14)]
      const perProcess = 12
      const results = yield* Effect.forEach(
        processes,
        (p, k) =>
          Effect.flatMap(registry.find(p, true), (scheduler) =>
            Effect.forEach(
              Array.from({ length: perProcess }, (_, i) => messageOf(100 * (k + 1) + i)),
              (m) => scheduler.schedule(m),
              { concurrency: "unbounded" }
            )
          ),
        { concurrency: "unbounded" }
      )
      for (const [k, assignments] of results.entries()) {
        // replies come back in call order, and the calls were queued in that order
        expect(assignments.map((a) => a.slot)).toEqual(Array.from({ length: perProcess }, (_, i) => i))
        expect(assignments.every((a) => a.processId === processes[k])).toBe(true)
        expect(Assignment.verifyChain(processes[k]!, assignments)).toBeUndefined()
        for (const a of assignments) expect(yield* Assignment.verify(a)).toBeUndefined()
      }
    }).pipe(Effect.provide(registryOnPool.pipe(Layer.provideMerge(PoolTest))))
  )
})
