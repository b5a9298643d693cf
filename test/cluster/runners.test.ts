/**
 * Three runner processes (test/cluster/runner.ts) on loopback share one PostgreSQL schema: the assignments,
 * the runner list and the shard locks (leases of 6,000 ms refreshed every 2,000 ms). The test sends each
 * message to a random runner, whose registry routes it to the process's entity wherever it lives.
 *
 * 1. Load: 50 processes × 6 messages. No process is hosted by two runners; slots are gap-free and
 *    duplicate-free and the hash chain verifies.
 * 2. SIGKILL of a runner under load: its processes move to the survivors once its lease has expired; every
 *    acknowledged assignment is stored; each schedule goes on at max + 1 with the chain linking.
 * 3. A runner whose `RunnerStorage` hangs (its store still works): it stops its entities before its lease
 *    expires, and the survivor starts them only after. Checked on the runners' own event logs: for every
 *    process, the intervals from `Registered` (before a server first reads the store) to `Unregistered`
 *    (after its fiber ended, so no write of it is in flight) never overlap across runners (a killed runner's
 *    intervals end at the kill): at most one writer at any moment.
 *
 * In phases 2 and 3 a call may fail only with an unknown outcome (it was on the killed runner, it outlived
 * its 30,000 ms deadline on a very busy machine, or it was re-sent after being stored); safety is checked on
 * the store whatever the calls returned.
 *
 * Without PostgreSQL the suite is reported as skipped, with the reason.
 */
import * as Crypto from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Schedule, Scope } from "effect"
import * as Assignment from "../../src/Assignment.js"
import type * as AssignmentStore from "../../src/AssignmentStore.js"
import type { ProcessId } from "../../src/ProcessId.js"
import { randomMessageId, randomProcessId } from "../fixtures/assignments.js"
import {
  bundleRunner,
  freePort,
  pgUnavailable,
  pgUrl,
  prepareSchema,
  type Reply,
  type Runner,
  randomSchema,
  redacted,
  startRunner,
  TEST_LOCKS
} from "./harness.js"

const unavailable = await pgUnavailable(pgUrl)
if (unavailable !== undefined) {
  console.warn(`SKIPPED cluster runner tests: no PostgreSQL at ${redacted(pgUrl)}: ${unavailable}`)
}

const PROCESSES = 50
/** Messages per process in the first test; acknowledged messages per process after a kill or a hang. */
const MESSAGES = 6
const AFTER = 2
const TIMEOUT_MS = 30_000

/** One message sent, and what came back. */
interface Sent {
  readonly processId: string
  readonly messageId: string
  readonly runner: string
  readonly sentAt: number
  readonly reply: Reply
  readonly repliedAt: number
}

describe.skipIf(unavailable !== undefined)("three runner processes over one PostgreSQL", () => {
  const scope = Effect.runSync(Scope.make())
  const schema = randomSchema("su_cluster")
  const processes: Array<ProcessId> = Array.from({ length: PROCESSES }, randomProcessId)
  const sent: Array<Sent> = []
  const killedAt = new Map<string, number>()
  let runners: Array<Runner> = []
  let store: AssignmentStore.AssignmentStore["Type"]
  let locksByRunner: Effect.Effect<Map<string, number>, unknown>

  beforeAll(async () => {
    await Effect.runPromise(
      Effect.gen(function* () {
        const prepared = yield* prepareSchema(pgUrl, schema)
        store = prepared.store
        locksByRunner = prepared.locksByRunner
        const script = yield* bundleRunner
        const ports = yield* Effect.all([freePort, freePort, freePort])
        runners = yield* Effect.all(
          ports.map((port, i) => startRunner({ script, name: `runner-${i + 1}`, url: pgUrl, schema, port })),
          { concurrency: "unbounded" }
        )
        // wait until the shards are spread over the three runners and stay so for 2,000 ms: a stable cluster
        let last = ""
        let since = Date.now()
        yield* Effect.repeat(
          Effect.map(locksByRunner, (locks) => {
            const key = JSON.stringify([...locks])
            if (key !== last) [last, since] = [key, Date.now()]
            const held = [...locks.values()].reduce((sum, n) => sum + n, 0)
            return locks.size === 3 && held === TEST_LOCKS.shards && Date.now() - since >= 2_000
          }),
          { until: (stable) => stable, schedule: Schedule.spaced("200 millis") }
        ).pipe(Effect.timeout("40 seconds"), Effect.orDie)
      }).pipe(Scope.extend(scope))
    )
  }, 120_000)

  afterAll(async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }, 60_000)

  const send = (runner: Runner, processId: string, messageId = randomMessageId()) =>
    Effect.suspend(() => {
      const sentAt = Date.now()
      return Effect.map(runner.schedule(processId, messageId, TIMEOUT_MS), (reply) => {
        const entry: Sent = { processId, messageId, runner: runner.name, sentAt, reply, repliedAt: Date.now() }
        sent.push(entry)
        return entry
      })
    })

  const pick = (candidates: ReadonlyArray<Runner>) => candidates[Crypto.randomInt(candidates.length)]!

  /**
   * Every process's schedule as stored: slots 0..n-1, a valid hash chain, every acknowledged assignment
   * present at its slot with its id and chain, no slot acknowledged twice, and every stored message one that
   * was sent for that process. Returns the stored schedules.
   */
  const checkSchedules = Effect.gen(function* () {
    const out = new Map<string, ReadonlyArray<Assignment.Assignment>>()
    for (const processId of processes) {
      const entries = yield* store.range(processId, { by: "slot", limit: 100_000 })
      const stored = entries.map((e) => e.assignment)
      expect(stored.map((a) => a.slot)).toEqual(stored.map((_, i) => i))
      expect(Assignment.verifyChain(processId, stored)).toBeUndefined()
      const acks = sent.filter((s) => s.processId === processId && s.reply.ok)
      expect(new Set(acks.map((s) => s.reply.slot)).size).toBe(acks.length)
      for (const ack of acks) {
        const at = stored[ack.reply.slot!]
        expect(at?.id).toBe(ack.reply.assignmentId)
        expect(at?.hashChain).toBe(ack.reply.hashChain)
        expect(at?.messageId).toBe(ack.messageId)
      }
      const mine = new Set(sent.filter((s) => s.processId === processId).map((s) => s.messageId))
      for (const a of stored) expect(mine.has(a.messageId)).toBe(true)
      out.set(processId, stored)
    }
    return out
  })

  /**
   * What may fail in a phase with a kill or a hang, and only that: a message the dead runner was carrying
   * (`RunnerDied`), a re-sent message that had been stored (`StoreConflict` "message already scheduled": it
   * must be in the schedule), and a call that outlived its 30,000 ms deadline (`SchedulerTimeout`), which only
   * a very busy machine makes happen: those are counted and printed. Anything else fails the test, with the
   * runners' logs.
   */
  const checkFailures = (phase: ReadonlyArray<Sent>, since: number) =>
    Effect.gen(function* () {
      const failures = phase.filter((s) => !s.reply.ok)
      for (const f of failures) {
        const expected =
          f.reply.tag === "RunnerDied" ||
          f.reply.tag === "SchedulerTimeout" ||
          f.reply.tag === "OutcomeUnknown" ||
          (f.reply.tag === "StoreConflict" && f.reply.reason === "message already scheduled")
        const detail = () =>
          `${f.runner}: ${f.reply.tag} ${f.reply.reason} for ${f.processId}, sent ${f.sentAt - since} ms and ` +
          `answered ${f.repliedAt - since} ms after the kill or hang\n` +
          runners.map((r) => `--- ${r.name}\n${r.stderr().slice(-3000)}`).join("\n")
        expect(expected ? "ok" : detail()).toBe("ok")
      }
      const conflicts = failures.filter((f) => f.reply.tag === "StoreConflict")
      for (const f of conflicts) {
        const stored = yield* store.getMessage(f.messageId, f.processId as ProcessId)
        expect(stored._tag).toBe("Some")
      }
      const timeouts = failures.filter((f) => f.reply.tag === "SchedulerTimeout")
      if (timeouts.length > 0) {
        const unhealthy = runners.map((r) => `${r.name}: ${r.stderr().split("unhealthy").length - 1}`).join(", ")
        console.info(`${timeouts.length} calls timed out (lock storage marked unhealthy, per runner: ${unhealthy})`)
      }
    })

  /**
   * Per process, the [Registered, Unregistered] intervals of every runner, a killed runner's open ones ending
   * at its kill; returns the overlaps found (none expected).
   */
  const overlaps = () => {
    const found: Array<string> = []
    for (const processId of processes) {
      const intervals: Array<{ runner: string; start: number; end: number }> = []
      for (const runner of runners) {
        let start: number | undefined
        for (const e of runner.events) {
          if (e.processId !== processId) continue
          if (e.event === "Registered") start = e.t
          if (e.event === "Unregistered" && start !== undefined) {
            intervals.push({ runner: runner.name, start, end: e.t })
            start = undefined
          }
        }
        if (start !== undefined) {
          intervals.push({ runner: runner.name, start, end: killedAt.get(runner.name) ?? Number.POSITIVE_INFINITY })
        }
      }
      intervals.sort((a, b) => a.start - b.start)
      for (let i = 1; i < intervals.length; i++) {
        const [before, after] = [intervals[i - 1]!, intervals[i]!]
        if (after.start < before.end) {
          found.push(
            `${processId}: ${before.runner} [${before.start}, ${before.end}] and ${after.runner} from ${after.start}`
          )
        }
      }
    }
    return found
  }

  it.live("50 processes, messages to random runners: one host each, gap-free slots, valid chains", () =>
    Effect.gen(function* () {
      // every process gets MESSAGES messages, in a random order over the processes, 60 in flight
      const work = processes.flatMap((p) => Array.from({ length: MESSAGES }, () => p))
      for (let i = work.length - 1; i > 0; i--) {
        const j = Crypto.randomInt(i + 1)
        ;[work[i], work[j]] = [work[j]!, work[i]!]
      }
      const replies = yield* Effect.forEach(work, (p) => send(pick(runners), p), { concurrency: 60 })
      expect(replies.filter((s) => !s.reply.ok)).toEqual([])
      const schedules = yield* checkSchedules
      for (const p of processes) expect(schedules.get(p)?.length).toBe(MESSAGES)
      // no process lives on two runners; every runner hosts some
      const hosted = yield* Effect.forEach(runners, (r) => r.hosted)
      const all = hosted.flat()
      expect(new Set(all).size).toBe(all.length)
      for (const list of hosted) expect(list.length).toBeGreaterThan(0)
      // an entity moves only if its runner gave its shard up (a lock refresh slower than the refresh interval,
      // on a very busy machine): then it was interrupted, never failed
      const moves = runners.flatMap((r) => r.events.filter((e) => e.event === "Unregistered"))
      expect(moves.filter((e) => e.reason !== "interrupted")).toEqual([])
      if (moves.length === 0) {
        expect([...all].sort()).toEqual([...processes].sort())
        expect(runners.flatMap((r) => r.events.filter((e) => e.event === "Registered")).length).toBe(PROCESSES)
      } else {
        console.info(`${moves.length} entities moved during the steady load (shards given up under CPU pressure)`)
      }
      expect(overlaps()).toEqual([])
    })
  )

  /**
   * Runs `loops` concurrent senders per process, each sending to a runner from `targets()` one message at a
   * time, until `stop()` holds; `onAck` sees every reply.
   */
  const load = (targets: () => ReadonlyArray<Runner>, stop: () => boolean, loops = 2) =>
    Effect.forEach(
      processes.flatMap((p) => Array.from({ length: loops }, () => p)),
      (p) =>
        Effect.whileLoop({
          while: () => !stop(),
          body: () => send(pick(targets()), p),
          step: () => {}
        }),
      { concurrency: "unbounded", discard: true }
    )

  it.live("SIGKILL of a runner under load: its processes move on, nothing acknowledged is lost, no slot reused", () =>
    Effect.gen(function* () {
      const victim = runners[2]!
      const survivors = runners.slice(0, 2)
      const moved = new Set(yield* victim.hosted)
      expect(moved.size).toBeGreaterThan(0)
      const start = sent.length
      let killAt: number | undefined
      const afterKill = (p: string) =>
        sent.filter((s) => s.processId === p && s.reply.ok && killAt !== undefined && s.sentAt > killAt).length
      const done = () => killAt !== undefined && processes.every((p) => afterKill(p) >= AFTER)
      const loadFiber = yield* Effect.fork(load(() => (killAt === undefined ? runners : survivors), done))
      // kill once the cluster has acknowledged 60 messages of this phase
      while (sent.slice(start).filter((s) => s.reply.ok).length < 60) yield* Effect.sleep("20 millis")
      killAt = yield* victim.kill
      killedAt.set(victim.name, killAt)
      yield* loadFiber.await
      const phase = sent.slice(start)
      yield* checkFailures(phase, killAt)
      yield* checkSchedules
      // the moved processes are now on the survivors, and were served again
      const hosted = (yield* Effect.forEach(survivors, (r) => r.hosted)).flat()
      for (const p of moved) expect(hosted).toContain(p)
      const firstAfter = [...moved].map((p) =>
        Math.min(...sent.filter((s) => s.processId === p && s.reply.ok && s.sentAt > killAt!).map((s) => s.repliedAt))
      )
      console.info(
        `failover after SIGKILL: ${moved.size} processes moved; first served again ${Math.min(...firstAfter) - killAt} ms ` +
          `to ${Math.max(...firstAfter) - killAt} ms after the kill (lease ${TEST_LOCKS.lockExpirationMs} ms)`
      )
      expect(overlaps()).toEqual([])
    })
  )

  it.live("a runner whose shard-lock storage hangs stops its entities before another runner starts them", () =>
    Effect.gen(function* () {
      const [healthy, stuck] = [runners[0]!, runners[1]!]
      const moved = new Set(yield* stuck.hosted)
      expect(moved.size).toBeGreaterThan(0)
      yield* stuck.hang
      const hungAt = Date.now()
      const start = sent.length
      // the stuck runner may serve until it notices (its leases are still valid): a moved process counts only
      // once the healthy runner has started it
      const startedAgain = (p: string) =>
        moved.has(p)
          ? healthy.events.find((e) => e.processId === p && e.event === "Registered" && e.t > hungAt)?.t
          : hungAt
      const afterHang = (p: string) => {
        const since = startedAgain(p)
        return since === undefined
          ? 0
          : sent.slice(start).filter((s) => s.processId === p && s.reply.ok && s.sentAt > since).length
      }
      yield* load(
        () => [healthy],
        () => processes.every((p) => afterHang(p) >= AFTER)
      )
      yield* checkFailures(sent.slice(start), hungAt)
      expect(yield* stuck.hosted).toEqual([])
      // the stuck runner reported each entity stopped, then the healthy one started it
      for (const p of moved) {
        const stopped = stuck.events.find((e) => e.processId === p && e.event === "Unregistered" && e.t > hungAt)
        const restarted = healthy.events.find((e) => e.processId === p && e.event === "Registered" && e.t > hungAt)
        expect(stopped?.reason).toBe("interrupted")
        expect(restarted).toBeDefined()
        expect(stopped!.t).toBeLessThanOrEqual(restarted!.t)
      }
      const stoppedIn = Math.max(
        ...[...moved].map(
          (p) => stuck.events.find((e) => e.processId === p && e.event === "Unregistered" && e.t > hungAt)!.t
        )
      )
      const startedIn = Math.min(
        ...[...moved].map(
          (p) => healthy.events.find((e) => e.processId === p && e.event === "Registered" && e.t > hungAt)!.t
        )
      )
      console.info(
        `storage hang: ${moved.size} entities stopped by ${stoppedIn - hungAt} ms after the hang; ` +
          `restarted elsewhere from ${startedIn - hungAt} ms (lease ${TEST_LOCKS.lockExpirationMs} ms)`
      )
      expect(overlaps()).toEqual([])
      yield* checkSchedules
      // it cannot shut down cleanly without its storage: kill it rather than wait
      killedAt.set(stuck.name, yield* stuck.kill)
    })
  )
})
