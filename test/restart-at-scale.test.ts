/**
 * Restart recovery at scale (issue 3): a scheduler started on a SQLite file that already holds 100,000
 * assignments of its process recovers the head (slot 99,999) and continues at 100,000, its hash chain linking
 * to slot 99,999's. Correctness only: how long the recovery takes is measured by bench/restart-recovery.ts
 * (docs/storage.md), not asserted here.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Assignment from "../src/Assignment.js"
import * as AssignmentStore from "../src/AssignmentStore.js"
import * as SchedulerRegistry from "../src/SchedulerRegistry.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import { appendFakeChain, randomMessageId, randomProcessId } from "./fixtures/assignments.js"
import { registryLayer } from "./fixtures/registry.js"

const COUNT = 100_000

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-restart-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

describe("restart at scale", () => {
  it.scopedLive(
    "SQLite, 100,000 stored assignments: the restarted scheduler is at slot 99,999 and continues at 100,000",
    () =>
      Effect.gen(function* () {
        const filename = Path.join(yield* tempDir, "su.sqlite")
        const p = randomProcessId()
        // the node that wrote the schedule, then stopped
        const head = yield* Effect.flatMap(AssignmentStore.AssignmentStore, (store) =>
          appendFakeChain(store, p, COUNT)
        ).pipe(Effect.provide(SqliteStore.layer({ filename, synchronous: "NORMAL", batchSize: 1_000 })))
        expect(head.slot).toBe(COUNT - 1)

        // the restarted node: a new registry over the reopened file
        const { info, next, tail } = yield* Effect.gen(function* () {
          const scheduler = yield* SchedulerRegistry.find(p, true)
          const info = yield* scheduler.info
          const next = yield* scheduler.schedule(new Assignment.Message({ id: randomMessageId() }))
          const store = yield* AssignmentStore.AssignmentStore
          const tail = yield* store.range(p, { by: "slot", from: COUNT - 2, limit: 10 })
          return { info, next, tail }
        }).pipe(Effect.scoped, Effect.provide(registryLayer({}, Layer.orDie(SqliteStore.layer({ filename })))))

        expect({ slot: info.slot, assignmentId: info.assignmentId, hashChain: info.hashChain }).toEqual({
          slot: COUNT - 1,
          assignmentId: head.id,
          hashChain: head.hashChain
        })
        expect(next.slot).toBe(COUNT)
        expect(next.hashChain).toBe(Assignment.nextHashChain(head.id, head.hashChain))
        expect(next.timestamp).toBeGreaterThan(head.timestamp)
        expect(yield* Assignment.verify(next)).toBeUndefined()
        expect(tail.map((e) => [e.assignment.slot, e.assignment.id])).toEqual([
          [COUNT - 1, head.id],
          [COUNT, next.id]
        ])
      }),
    120_000
  )
})
