import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as AssignmentStore from "../../../src/AssignmentStore.js"
import { MAX_SPAN, slotRange } from "../../../src/node/internal/http/pages.js"
import { fake, randomProcessId } from "../../fixtures/assignments.js"

describe("pages: HyperBEAM slot ranges (behaviours 35–38)", () => {
  it.effect("a span over 1000 is cut to from + 1000 and continues only while slots remain", () =>
    Effect.gen(function* () {
      const store = yield* AssignmentStore.makeMemory
      const pid = randomProcessId()
      for (let slot = 0; slot <= 1100; slot++) {
        const { assignment, message } = fake(pid, slot)
        yield* store.append(assignment, message)
      }
      const slots = (read: { entries: ReadonlyArray<{ assignment: { slot: number } }> }) =>
        read.entries.map((e) => e.assignment.slot)

      const all = yield* slotRange(store, pid, { latest: 1100 })
      expect(slots(all)).toEqual(Array.from({ length: MAX_SPAN + 1 }, (_, i) => i))
      expect(all.continues).toBe(true)

      const rest = yield* slotRange(store, pid, { from: 1001, latest: 1100 })
      expect(slots(rest)).toEqual(Array.from({ length: 100 }, (_, i) => 1001 + i))
      expect(rest.continues).toBe(false)

      const wide = yield* slotRange(store, pid, { from: 50, to: 5000, latest: 1100 })
      expect(slots(wide)).toHaveLength(1001)
      expect(slots(wide).at(-1)).toBe(1050)
      expect(wide.continues).toBe(true)

      // cut, but past the end: nothing remains, so no endless "continues" on empty pages
      const past = yield* slotRange(store, pid, { from: 1090, to: 9000, latest: 1100 })
      expect(slots(past)).toEqual(Array.from({ length: 11 }, (_, i) => 1090 + i))
      expect(past.continues).toBe(false)
      const beyond = yield* slotRange(store, pid, { from: 3000, to: 9000, latest: 1100 })
      expect(beyond).toEqual({ entries: [], continues: false })

      expect(slots(yield* slotRange(store, pid, { from: -5, to: 2, latest: 1100 }))).toEqual([0, 1, 2])
      expect(yield* slotRange(store, pid, { from: 5, to: 3, latest: 1100 })).toEqual({ entries: [], continues: false })
    })
  )
})
