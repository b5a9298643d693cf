/**
 * Cluster throughput and failover, with real runner processes (test/cluster/runner.ts) on loopback over one
 * PostgreSQL (`PG_URL`, else postgres://postgres@127.0.0.1:5432/test), each run in its own schema.
 *
 *   npx tsx bench/cluster.ts [messages per run, default 3000] [processes, default 50] [in flight, default 100]
 *
 * 1. Throughput with 1, 2 and 3 runners: after every process has been activated, `messages` schedules, each
 *    for a random process through a random runner, `in flight` at a time; assignments per second, and the
 *    latency of a schedule (median, p99) as the driver sees it (control channel included).
 * 2. Failover: 3 runners under load (2 messages in flight per process); one is killed with SIGKILL; for each
 *    process it hosted, the time from the kill to the first acknowledged schedule of a message sent after it,
 *    and to its entity's start on a survivor (`Registered`, once that runner holds the shard's lock).
 *
 * `BENCH_PART=failover` runs only the failover part.
 *
 * The runners use the test lease (6,000 ms, refreshed every 2,000 ms) unless LOCK_EXPIRATION_MS /
 * LOCK_REFRESH_MS are set. On a 2-core machine, 2 and 3 runners share 2 cores with PostgreSQL and the driver;
 * the 1-minute load average before each run is printed, since other work on the machine skews the figures.
 */
import * as Crypto from "node:crypto"
import * as Os from "node:os"
import { Effect, Exit, Schedule, Scope } from "effect"
import {
  bundleRunner,
  freePort,
  type LockSettings,
  pgUnavailable,
  pgUrl,
  prepareSchema,
  type Runner,
  randomSchema,
  redacted,
  startRunner,
  TEST_LOCKS
} from "../test/cluster/harness.js"
import { randomMessageId, randomProcessId } from "../test/fixtures/assignments.js"

const MESSAGES = Number(process.argv[2] ?? 3_000)
const PROCESSES = Number(process.argv[3] ?? 50)
const IN_FLIGHT = Number(process.argv[4] ?? 100)
const locks: LockSettings = {
  ...TEST_LOCKS,
  lockExpirationMs: Number(process.env.LOCK_EXPIRATION_MS ?? TEST_LOCKS.lockExpirationMs),
  lockRefreshMs: Number(process.env.LOCK_REFRESH_MS ?? TEST_LOCKS.lockRefreshMs)
}

const pick = <A>(items: ReadonlyArray<A>) => items[Crypto.randomInt(items.length)]!
const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!

/** Starts `count` runners on a fresh schema and waits until they hold all the shards between them. */
const cluster = (script: string, count: number) =>
  Effect.gen(function* () {
    const schema = randomSchema("su_bench")
    const prepared = yield* prepareSchema(pgUrl, schema, locks)
    const ports = yield* Effect.all(Array.from({ length: count }, () => freePort))
    const runners = yield* Effect.all(
      ports.map((port, i) => startRunner({ script, name: `runner-${i + 1}`, url: pgUrl, schema, port, locks })),
      { concurrency: "unbounded" }
    )
    yield* Effect.repeat(prepared.locksByRunner, {
      until: (held) => held.size === count && [...held.values()].reduce((a, b) => a + b, 0) === locks.shards,
      schedule: Schedule.spaced("200 millis")
    }).pipe(Effect.timeout("60 seconds"), Effect.orDie)
    return runners
  })

const fail = (what: string, reply: { readonly tag?: string; readonly reason?: string }) =>
  Effect.die(new Error(`${what}: ${reply.tag} ${reply.reason}`))

const throughput = (script: string, count: number) =>
  Effect.gen(function* () {
    const runners = yield* cluster(script, count)
    const processes = Array.from({ length: PROCESSES }, randomProcessId)
    yield* Effect.forEach(
      processes,
      (p) =>
        Effect.flatMap(pick(runners).schedule(p, randomMessageId()), (r) => (r.ok ? Effect.void : fail("warm-up", r))),
      { concurrency: 20, discard: true }
    )
    const latencies: Array<number> = []
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: MESSAGES }),
      () => {
        const t0 = performance.now()
        return Effect.flatMap(pick(runners).schedule(pick(processes), randomMessageId()), (reply) => {
          latencies.push(performance.now() - t0)
          return reply.ok ? Effect.void : fail("schedule", reply)
        })
      },
      { concurrency: IN_FLIGHT, discard: true }
    )
    const seconds = (performance.now() - started) / 1000
    latencies.sort((a, b) => a - b)
    return {
      runners: count,
      perSecond: Math.round(MESSAGES / seconds),
      median: percentile(latencies, 50),
      p99: percentile(latencies, 99)
    }
  }).pipe(Effect.scoped)

const failover = (script: string) =>
  Effect.gen(function* () {
    const runners: Array<Runner> = yield* cluster(script, 3)
    const processes = Array.from({ length: PROCESSES }, randomProcessId)
    const victim = runners[2]!
    let killedAt: number | undefined
    const firstAfter = new Map<string, number>()
    let stop = false
    const loop = (p: string) =>
      Effect.whileLoop({
        while: () => !stop,
        body: () => {
          const sentAt = Date.now()
          const targets = killedAt === undefined ? runners : runners.slice(0, 2)
          return Effect.map(pick(targets).schedule(p, randomMessageId()), (reply) => {
            if (reply.ok && killedAt !== undefined && sentAt > killedAt && !firstAfter.has(p)) {
              firstAfter.set(p, Date.now() - killedAt)
            }
          })
        },
        step: () => {}
      })
    const load = yield* Effect.fork(
      Effect.forEach([...processes, ...processes], loop, { concurrency: "unbounded", discard: true })
    )
    yield* Effect.sleep("2 seconds")
    const moved = yield* victim.hosted
    killedAt = yield* victim.kill
    yield* Effect.repeat(
      Effect.sync(() => moved.every((p) => firstAfter.has(p))),
      { until: (all) => all, schedule: Schedule.spaced("50 millis") }
    ).pipe(Effect.timeout("60 seconds"), Effect.orDie)
    stop = true
    yield* load.await
    const times = moved.map((p) => firstAfter.get(p)!).sort((a, b) => a - b)
    // when the survivors started the moved entities (they hold the shard lock by then)
    const restarted = moved
      .map((p) =>
        Math.min(
          ...runners
            .slice(0, 2)
            .flatMap((r) => r.events)
            .filter((e) => e.processId === p && e.event === "Registered" && e.t > killedAt!)
            .map((e) => e.t - killedAt!)
        )
      )
      .sort((a, b) => a - b)
    return {
      moved: moved.length,
      first: times[0]!,
      median: percentile(times, 50),
      last: times[times.length - 1]!,
      restartedFirst: restarted[0]!,
      restartedLast: restarted[restarted.length - 1]!
    }
  }).pipe(Effect.scoped)

const main = Effect.gen(function* () {
  const unavailable = yield* Effect.promise(() => pgUnavailable(pgUrl))
  if (unavailable !== undefined) {
    console.log(`SKIPPED: no PostgreSQL at ${redacted(pgUrl)}: ${unavailable}`)
    return
  }
  const scope = yield* Scope.make()
  const script = yield* Scope.extend(bundleRunner, scope)
  console.log(
    `Node ${process.version}, ${Os.cpus().length} × ${Os.cpus()[0]?.model.trim()}; ${MESSAGES} messages over ` +
      `${PROCESSES} processes, ${IN_FLIGHT} in flight; lease ${locks.lockExpirationMs} ms, refresh ${locks.lockRefreshMs} ms`
  )
  const load = () => Os.loadavg()[0]!.toFixed(1)
  console.log(
    "\n| runners | assignments/s | median latency (ms) | p99 latency (ms) | load average before |\n|---|---|---|---|---|"
  )
  for (const count of process.env.BENCH_PART === "failover" ? [] : [1, 2, 3]) {
    const before = load()
    const r = yield* throughput(script, count)
    console.log(`| ${r.runners} | ${r.perSecond} | ${r.median.toFixed(1)} | ${r.p99.toFixed(1)} | ${before} |`)
  }
  const f = yield* failover(script)
  console.log(
    `\nfailover (SIGKILL of 1 of 3 runners, ${f.moved} of ${PROCESSES} processes moved): first served again after ` +
      `${f.first} ms, median ${f.median} ms, last ${f.last} ms; entities started on the survivors ` +
      `${f.restartedFirst} to ${f.restartedLast} ms after the kill`
  )
  yield* Scope.close(scope, Exit.void)
})

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
