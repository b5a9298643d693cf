/**
 * Fencing and isolation on a real PostgreSQL: a stale writer's transaction that holds a process's epoch row is
 * simulated by another session of the same pool (an open transaction holding the row lock), so each case is
 * deterministic: nothing waits on a timer, and a statement that waited where it must not would hang the test.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Layer, Option, Schedule } from "effect"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import * as PgStore from "../../src/pg/PgStore.js"
import * as SqlStore from "../../src/sql/SqlStore.js"
import { fake, randomProcessId } from "../fixtures/assignments.js"
import { dropSchemaOnClose, pgUnavailable, pgUrl, randomSchema, redacted } from "../fixtures/pg.js"

const schema = randomSchema("su_fence")
const unavailable = await pgUnavailable(pgUrl)
if (unavailable !== undefined) {
  console.warn(`SKIPPED PostgreSQL fencing tests: no server at ${redacted(pgUrl)}: ${unavailable}`)
}

const client = Layer.provideMerge(dropSchemaOnClose(schema), PgStore.layerClient({ url: pgUrl, schema }))
const store = Layer.provideMerge(SqlStore.layer(), client)

/** Holds `lock` on `processId`'s epoch row in an open transaction of its own until `release` completes. */
const holdRow = (processId: string, lock: "FOR UPDATE" | "FOR SHARE", release: Deferred.Deferred<void>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const held = yield* Deferred.make<void>()
    const fiber = yield* Effect.fork(
      sql.withTransaction(
        Effect.all([
          sql`SELECT epoch FROM process_epochs WHERE process_id = ${processId} ${sql.literal(lock)}`,
          Deferred.succeed(held, undefined),
          Deferred.await(release)
        ])
      )
    )
    yield* Deferred.await(held)
    return fiber
  })

/** Polls until some session waits for a row lock on `process_epochs` (the claim queued behind the holder). */
const untilAClaimWaits = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.repeat(
    sql<{ n: string }>`SELECT count(*) AS n FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND query LIKE '%process_epochs%' AND datname = current_database()`,
    { until: (rows) => Number(rows[0]?.n) > 0, schedule: Schedule.spaced("20 millis") }
  )
)

describe.skipIf(unavailable !== undefined)("PostgreSQL fencing", () => {
  layer(store, { excludeTestServices: true, timeout: "60 seconds" })("fenced appends", (it) => {
    it.effect("a process whose epoch row another session locks fails at once; the rest of the batch lands", () =>
      Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        const ps = Array.from({ length: 12 }, () => randomProcessId())
        const epochs = yield* Effect.forEach(ps, (p) => store.claim(p))
        const locked = ps[5]!
        const release = yield* Deferred.make<void>()
        const holder = yield* holdRow(locked, "FOR UPDATE", release)
        // while the lock is held: a wait would hang here, since the lock is released only afterwards
        const results = yield* Effect.forEach(
          ps,
          (p, i) => {
            const e = fake(p, 0)
            return Effect.either(store.append(e.assignment, e.message, { epoch: epochs[i] }))
          },
          { concurrency: "unbounded" }
        )
        expect(results.map((r) => (Either.isRight(r) ? "ok" : r.left._tag))).toEqual(
          ps.map((p) => (p === locked ? "StoreError" : "ok"))
        )
        expect(yield* store.latest(locked)).toEqual(Option.none())
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        const again = fake(locked, 0)
        yield* store.append(again.assignment, again.message, { epoch: epochs[5] })
        expect(Option.map(yield* store.latest(locked), (l) => l.assignmentId)).toEqual(Option.some(again.assignment.id))
      })
    )

    it.effect(
      "a claim waits for an append of the older epoch in flight; that append is recovered, the next is fenced",
      () =>
        Effect.gen(function* () {
          const store = yield* AssignmentStore.AssignmentStore
          const sql = yield* SqlClient.SqlClient
          const p = randomProcessId()
          const old = yield* store.claim(p)
          const s0 = fake(p, 0)
          // the old owner's append: its fence check has run (the row is share-locked) and its INSERT is sent
          const release = yield* Deferred.make<void>()
          const sent = yield* Deferred.make<void>()
          const inFlight = yield* Effect.fork(
            sql.withTransaction(
              Effect.all([
                sql`SELECT epoch FROM process_epochs WHERE process_id = ${p} FOR SHARE NOWAIT`,
                sql`INSERT INTO assignments ${sql.insert({
                  process_id: p,
                  slot: 0,
                  epoch: 0,
                  timestamp: s0.assignment.timestamp,
                  block_height: s0.assignment.blockHeight,
                  hash_chain: s0.assignment.hashChain,
                  assignment_id: s0.assignment.id,
                  message_id: s0.message.id,
                  assignment: s0.assignment.raw
                })}`,
                Deferred.succeed(sent, undefined),
                Deferred.await(release)
              ])
            )
          )
          // the claim starts only once the old owner holds the row: forked at once, it could run first
          yield* Deferred.await(sent)
          const claim = yield* Effect.fork(store.claim(p))
          yield* untilAClaimWaits
          expect(claim.unsafePoll()).toBeNull()
          yield* Deferred.succeed(release, undefined)
          yield* Fiber.join(inFlight)
          expect(yield* Fiber.join(claim)).toBe(old + 1)
          // the new owner recovers after its claim: the old owner's commit is in what it reads
          expect(Option.map(yield* store.latest(p), (l) => l.assignmentId)).toEqual(Option.some(s0.assignment.id))
          const s1 = fake(p, 1)
          expect(yield* Effect.flip(store.append(s1.assignment, s1.message, { epoch: old }))).toMatchObject({
            _tag: "Fenced",
            epoch: old,
            current: old + 1
          })
        })
    )
  })
})
