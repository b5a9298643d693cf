/**
 * Natural batching of signature requests over lanes (`internal/signer-lanes`): every request gets its own
 * answer, batches grow under load and spread over the lanes, a caller who leaves is dropped before its batch
 * is sent, a lane that fails is a defect for its batch only, and a closed pool fails at once.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import * as Lanes from "../../src/node/internal/signer-lanes.js"

const bytes = (n: number) => new Uint8Array([n])
/** A lane that "signs" by adding 100 to each byte, after `gate` opens; records each batch it sends. */
const recordingLane =
  (batches: Array<ReadonlyArray<number>>, gate?: Deferred.Deferred<void>): Lanes.SendBatch =>
  (data) =>
    Effect.gen(function* () {
      batches.push(data.map((d) => d[0]!))
      if (gate !== undefined) yield* Deferred.await(gate)
      return data.map((d) => new Uint8Array([d[0]! + 100]))
    })

describe("internal/signer-lanes", () => {
  it.scoped("each request gets the answer to its own data; queued requests go in batches across the lanes", () =>
    Effect.gen(function* () {
      const batches: Array<ReadonlyArray<number>> = []
      const gate = yield* Deferred.make<void>()
      const sign = yield* Lanes.make([recordingLane(batches, gate), recordingLane(batches, gate)], 16)
      const first = yield* Effect.fork(sign(bytes(0)))
      yield* Effect.yieldNow()
      // both lanes busy after this: the first took request 0, the second takes part of what follows
      const rest = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i + 1),
          (n) => sign(bytes(n)),
          {
            concurrency: "unbounded"
          }
        )
      )
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      const answers = [yield* Fiber.join(first), ...(yield* Fiber.join(rest))]
      expect(answers.map((a) => a[0])).toEqual(Array.from({ length: 21 }, (_, i) => i + 100))
      // every request was sent exactly once, and fewer messages than requests were sent
      expect(batches.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 21 }, (_, i) => i))
      expect(batches.length).toBeLessThan(21)
      expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(16)
    })
  )

  it.scoped("a caller interrupted while queued is dropped before its batch is sent", () =>
    Effect.gen(function* () {
      const batches: Array<ReadonlyArray<number>> = []
      const gate = yield* Deferred.make<void>()
      const sign = yield* Lanes.make([recordingLane(batches, gate)], 16)
      const busy = yield* Effect.fork(sign(bytes(1)))
      yield* Effect.yieldNow()
      const leaving = yield* Effect.fork(sign(bytes(2)))
      const staying = yield* Effect.fork(sign(bytes(3)))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(leaving)
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Fiber.join(busy))[0]).toBe(101)
      expect((yield* Fiber.join(staying))[0]).toBe(103)
      expect(batches).toEqual([[1], [3]])
    })
  )

  it.scoped("a lane that fails is a defect for its own batch; the other lane still answers", () =>
    Effect.gen(function* () {
      const batches: Array<ReadonlyArray<number>> = []
      const failing: Lanes.SendBatch = () => Effect.fail("worker crashed")
      const sign = yield* Lanes.make([failing, recordingLane(batches)], 1)
      const exits = yield* Effect.forEach([1, 2], (n) => Effect.exit(sign(bytes(n))), { concurrency: "unbounded" })
      expect(exits.filter(Exit.isSuccess)).toHaveLength(1)
      const failed = exits.find(Exit.isFailure)!
      expect(Exit.isFailure(failed) && failed.cause._tag).toBe("Die")
    })
  )

  it.effect("closing the scope fails queued and in-flight requests as defects, and later ones at once", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const gate = yield* Deferred.make<void>()
      const sign = yield* Scope.extend(Lanes.make([recordingLane([], gate)], 1), scope)
      const inFlight = yield* Effect.fork(Effect.exit(sign(bytes(1))))
      const queued = yield* Effect.fork(Effect.exit(sign(bytes(2))))
      yield* Effect.yieldNow()
      yield* Scope.close(scope, Exit.void)
      for (const exit of [yield* Fiber.join(inFlight), yield* Fiber.join(queued), yield* Effect.exit(sign(bytes(3)))]) {
        expect(Exit.isFailure(exit) && exit.cause._tag).toBe("Die")
      }
    })
  )
})
