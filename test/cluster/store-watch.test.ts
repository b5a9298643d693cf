/**
 * The cluster registry's store watch (src/cluster/internal/store-watch.ts), on a store whose reads can be made
 * to hang, under the TestClock: calls run while the store answers; once no probe has completed for the timeout,
 * a call in flight ends with `onLost` and a new one fails at once without running; the next completed probe
 * ends it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, TestClock } from "effect"
import type { AssignmentStore } from "../../src/AssignmentStore.js"
import * as StoreWatch from "../../src/cluster/internal/store-watch.js"

const TIMEOUT_MS = 6_000

/** A store whose `latest` waits on `gate` while it is set; counts the probes. */
const hangableStore = () => {
  const state = { gate: undefined as Deferred.Deferred<void> | undefined, probes: 0 }
  const store = {
    latest: () =>
      Effect.suspend(() => {
        state.probes++
        return state.gate === undefined ? Effect.succeed(Option.none()) : Deferred.await(state.gate)
      }).pipe(Effect.as(Option.none()))
  } as unknown as AssignmentStore["Type"]
  return { store, state }
}

describe("the store watch", () => {
  it.scoped("answers within the timeout once the store stops answering, and again once it is back", () =>
    Effect.gen(function* () {
      const { store, state } = hangableStore()
      const watch = yield* StoreWatch.make(store, TIMEOUT_MS)
      yield* TestClock.adjust(0)
      expect(state.probes).toBe(1)
      expect(yield* watch.guard(Effect.succeed("served"), () => "lost")).toBe("served")

      // the store stops answering right after a good probe at 2,000 ms
      yield* TestClock.adjust(TIMEOUT_MS / 3)
      state.gate = yield* Deferred.make<void>()
      yield* TestClock.adjust(TIMEOUT_MS / 3)
      expect(state.probes).toBe(3)
      const inFlight = yield* Effect.fork(watch.guard(Effect.never, () => "lost"))
      yield* TestClock.adjust(TIMEOUT_MS - TIMEOUT_MS / 3 - 1)
      expect(yield* watch.lost).toBe(false)
      expect(inFlight.unsafePoll()).toBeNull()
      // one timeout after the last good probe
      yield* TestClock.adjust(1)
      expect(yield* watch.lost).toBe(true)
      expect(yield* Effect.flip(Fiber.join(inFlight))).toBe("lost")
      // a new call is not run
      let ran = false
      const refused = yield* Effect.flip(
        watch.guard(
          Effect.sync(() => {
            ran = true
          }),
          () => "lost"
        )
      )
      expect(refused).toBe("lost")
      expect(ran).toBe(false)
      // one probe at a time: the hung one is still the last
      yield* TestClock.adjust(TIMEOUT_MS)
      expect(state.probes).toBe(3)

      // the store answers again: the pending probe completes
      const gate = state.gate
      state.gate = undefined
      yield* Deferred.succeed(gate, undefined)
      yield* TestClock.adjust(0)
      expect(yield* watch.lost).toBe(false)
      expect(yield* watch.guard(Effect.succeed("served"), () => "lost")).toBe("served")
    })
  )
})
