import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import * as Writer from "../../src/sql/internal/writer.js"

/** A writer whose `run` records its batches and fails the items named "bad", with a flush that waits on `gate`. */
const writer = (flush: Effect.Effect<void, string> | undefined) =>
  Effect.gen(function* () {
    const batches: Array<ReadonlyArray<string>> = []
    const submit = yield* Writer.make<string, string>({
      maxBatch: 8,
      run: (batch) =>
        Effect.sync(() => {
          batches.push(batch)
          return batch.map((item) => (item === "bad" ? Exit.fail("bad item") : Exit.void))
        }),
      closed: "closed",
      flush: flush === undefined ? undefined : { effect: flush, failure: (reason) => `not durable: ${reason}` }
    })
    return { batches, submit }
  })

describe("group-commit writer", () => {
  it.scoped("acknowledges a batch only after its flush, and gathers the next batch meanwhile", () =>
    Effect.gen(function* () {
      const flushing = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      let flushes = 0
      const flush = Effect.suspend(() => {
        flushes++
        return flushes === 1
          ? Effect.zipRight(Deferred.succeed(flushing, undefined), Deferred.await(gate))
          : Effect.void
      })
      const { batches, submit } = yield* writer(flush)
      const first = yield* Effect.fork(submit("a"))
      yield* Deferred.await(flushing)
      // committed, not yet flushed: not acknowledged
      expect(batches).toEqual([["a"]])
      expect(first.unsafePoll()).toBeNull()
      const later = yield* Effect.fork(Effect.all([submit("b"), submit("c")], { concurrency: "unbounded" }))
      yield* Effect.yieldNow()
      expect(batches).toEqual([["a"]])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(later)
      // what arrived during the flush went in one transaction
      expect(batches).toEqual([["a"], ["b", "c"]])
      expect(flushes).toBe(2)
    })
  )

  it.scoped("a failed flush fails every append the batch wrote, and only those", () =>
    Effect.gen(function* () {
      const { batches, submit } = yield* writer(Effect.fail("EIO"))
      const results = yield* Effect.all([submit("a"), submit("bad")].map(Effect.exit), { concurrency: "unbounded" })
      expect(batches).toEqual([["a", "bad"]])
      expect(results).toEqual([Exit.fail("not durable: EIO"), Exit.fail("bad item")])
    })
  )

  it.scoped("without a flush, a batch is acknowledged once its run returns", () =>
    Effect.gen(function* () {
      const { batches, submit } = yield* writer(undefined)
      yield* Effect.all([submit("a"), submit("b")], { concurrency: "unbounded" })
      expect(batches).toEqual([["a", "b"]])
    })
  )
})
