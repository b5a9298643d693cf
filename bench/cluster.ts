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
 * `BENCH_PART=failover` runs only the failover part; `FAILOVER_TRIALS=n` repeats it `n` times (1), each on a
 * fresh cluster, with its breakdown: the victim's last shard-lock refresh and its lease's expiry, when the
 * survivors acquired its shards (`cluster_locks.acquired_at`), started its entities, and served its processes.
 *
 * The runners use the defaults (lease 6,000 ms, refreshed every 2,000 ms, the runner list read every 250 ms,
 * unheld shards re-checked every 1,000 ms) unless LOCK_EXPIRATION_MS / LOCK_REFRESH_MS / REFRESH_ASSIGNMENTS_MS
 * / SHARD_RECHECK_MS are set (REFRESH_ASSIGNMENTS_MS=1000 SHARD_RECHECK_MS=10000: the settings before 0.3.0's
 * failover work). On a 2-core machine, 2 and 3 runners share 2 cores with PostgreSQL and the driver; the
 * 1-minute load average before each run is printed, since other work on the machine skews the figures.
 */
import * as Crypto from "node:crypto"
import * as Os from "node:os"
import { Effect, Exit, Schedule, Scope } from "effect"
import * as ClusterNode from "../src/cluster/ClusterNode.js"
import {
  bundleRunner,
  freePort,
  type LockSettings,
  pgUnavailable,
  pgUrl,
  prepareSchema,
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
  lockRefreshMs: Number(process.env.LOCK_REFRESH_MS ?? TEST_LOCKS.lockRefreshMs),
  refreshAssignmentsMs: Number(process.env.REFRESH_ASSIGNMENTS_MS ?? TEST_LOCKS.refreshAssignmentsMs)
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
    return Object.assign(runners, { sql: prepared.sql })
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

/** Milliseconds since the epoch of a timestamp column, as PostgreSQL's clock has it (the same machine). */
const epochMs = (column: string) => `(extract(epoch from ${column}) * 1000)::float8`

const failover = (script: string) =>
  Effect.gen(function* () {
    const runners = yield* cluster(script, 3)
    const sql = runners.sql
    const processes = Array.from({ length: PROCESSES }, randomProcessId)
    const victim = runners[2]!
    let killedAt: number | undefined
    /** Per process: the acknowledgements after the kill (ms after it), and the first of a call sent after it. */
    const acks = new Map<string, Array<number>>()
    const firstAfter = new Map<string, number>()
    let stop = false
    const debug = process.env.FAILOVER_DEBUG !== undefined
    const calls: Array<{ p: string; runner: string; sentAt: number; at: number; tag?: string | undefined }> = []
    const loop = (p: string) =>
      Effect.whileLoop({
        while: () => !stop,
        body: () => {
          const sentAt = Date.now()
          const targets = killedAt === undefined ? runners : runners.slice(0, 2)
          const runner = pick(targets)
          return Effect.map(runner.schedule(p, randomMessageId()), (reply) => {
            if (killedAt !== undefined && debug) {
              calls.push({
                p,
                runner: runner.name,
                sentAt: sentAt - killedAt,
                at: Date.now() - killedAt,
                tag: reply.tag
              })
            }
            if (!reply.ok || killedAt === undefined) return
            acks.set(p, [...(acks.get(p) ?? []), Date.now() - killedAt])
            if (sentAt > killedAt && !firstAfter.has(p)) firstAfter.set(p, Date.now() - killedAt)
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
    // the victim's shard locks as it left them: their last refresh, and from then on who holds each
    const mine = `%:${victim.port}`
    const left = yield* sql<{ shard_id: string; at: number }>`
      SELECT shard_id, ${sql.literal(epochMs("acquired_at"))} AS at FROM cluster_locks WHERE address LIKE ${mine}`
    // the runner list drops it once its heartbeat (refreshed just before its locks) is older than the lease
    const [beat] = yield* sql<{ at: number }>`
      SELECT ${sql.literal(epochMs("last_heartbeat"))} AS at FROM cluster_runners WHERE address LIKE ${mine}`
    const lastRefresh = Math.max(Number(beat?.at ?? 0), ...left.map((r) => Number(r.at)))
    const shards = new Set(left.map((r) => r.shard_id))
    const taken = new Map<string, number>()
    yield* Effect.repeat(
      Effect.gen(function* () {
        const rows = yield* sql<{ shard_id: string; at: number }>`
          SELECT shard_id, ${sql.literal(epochMs("acquired_at"))} AS at FROM cluster_locks
          WHERE address NOT LIKE ${mine}`
        for (const r of rows) if (shards.has(r.shard_id) && !taken.has(r.shard_id)) taken.set(r.shard_id, Number(r.at))
        return taken.size === shards.size && moved.every((p) => firstAfter.has(p))
      }),
      { until: (all) => all, schedule: Schedule.spaced("50 millis") }
    ).pipe(Effect.timeout("60 seconds"), Effect.orDie)
    stop = true
    yield* load.await
    const sorted = (values: Iterable<number>) => [...values].sort((a, b) => a - b)
    const times = sorted(moved.map((p) => firstAfter.get(p)!))
    // when the survivors started the moved entities (they hold the shard lock by then), and their servers had
    // recovered from the store (claim, latest)
    const eventAt = (p: string, event: string) =>
      Math.min(
        ...runners
          .slice(0, 2)
          .flatMap((r) => r.events)
          .filter((e) => e.processId === p && e.event === event && e.t > killedAt!)
          .map((e) => e.t - killedAt!)
      )
    const restarted = sorted(moved.map((p) => eventAt(p, "Registered")))
    const recovered = sorted(moved.map((p) => eventAt(p, "Activated")))
    // per moved process, from its server's recovery on a survivor to its first acknowledgement there
    const firstAckAfter = (p: string, t: number) => Math.min(...(acks.get(p) ?? []).filter((a) => a >= t))
    const serving = sorted(moved.map((p) => firstAckAfter(p, eventAt(p, "Activated")) - eventAt(p, "Activated")))
    if (debug && moved.length > 0) {
      // the timeline of the moved process served last: its events on the survivors and its calls, ms after the kill
      const slowest = moved.reduce((a, b) => (firstAfter.get(a)! >= firstAfter.get(b)! ? a : b))
      for (const r of runners.slice(0, 2)) {
        for (const e of r.events.filter((e) => e.processId === slowest && e.t > killedAt!)) {
          console.log(`  ${r.name} ${e.event} ${e.reason ?? ""} ${e.t - killedAt!}`)
        }
      }
      for (const c of calls.filter((c) => c.p === slowest)) {
        console.log(`  call via ${c.runner}: sent ${c.sentAt}, answered ${c.at} ${c.tag ?? "ok"}`)
      }
      // the survivors' warnings and errors (logfmt on stderr; with LOG_LEVEL=Debug also the lines naming the
      // process and the cluster's view of runners and shards), with their time after the kill
      const shown = (l: string) =>
        /level=(WARN|ERROR)/.test(l) ||
        l.includes(slowest) ||
        /Runner is|New shard assignments|unhealthy|Could not/.test(l)
      for (const r of runners.slice(0, 2)) {
        for (const line of r.stderr().split("\n").filter(shown)) {
          const at = /timestamp=(\S+)/.exec(line)?.[1]
          const t = at === undefined ? Number.NaN : Date.parse(at) - killedAt!
          if (t > -1000) console.log(`  ${r.name} log at ${t}: ${line.replace(/timestamp=\S+ /, "").slice(0, 240)}`)
        }
      }
    }
    // moved processes whose new server was stopped again on a survivor (its shard let go) before serving
    const letGo = moved.filter((p) =>
      runners
        .slice(0, 2)
        .some((r) => r.events.some((e) => e.processId === p && e.event === "Unregistered" && e.t > killedAt!))
    ).length
    const acquired = sorted([...taken.values()].map((t) => Math.round(t - killedAt!)))
    return {
      moved: moved.length,
      first: times[0]!,
      median: percentile(times, 50),
      last: times[times.length - 1]!,
      restartedFirst: restarted[0]!,
      restartedLast: restarted[restarted.length - 1]!,
      recoveredLast: recovered[recovered.length - 1]!,
      servingMedian: percentile(serving, 50),
      servingLast: serving[serving.length - 1]!,
      /** The victim's last refresh (heartbeat or locks), ms before the kill; its lease ran out `lockExpirationMs` after it. */
      lastRefresh: Math.round(killedAt - lastRefresh),
      expiry: Math.round(lastRefresh + locks.lockExpirationMs - killedAt),
      acquiredFirst: acquired[0]!,
      acquiredLast: acquired[acquired.length - 1]!,
      letGo,
      anyAckLast: Math.max(...moved.map((p) => firstAckAfter(p, eventAt(p, "Activated"))))
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
      `${PROCESSES} processes, ${IN_FLIGHT} in flight; lease ${locks.lockExpirationMs} ms, refresh ${locks.lockRefreshMs} ms, ` +
      `runner list read every ${locks.refreshAssignmentsMs} ms, shards re-checked every ` +
      `${process.env.SHARD_RECHECK_MS ?? ClusterNode.DEFAULT_SHARD_RECHECK_MS} ms`
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
  const trials = Number(process.env.FAILOVER_TRIALS ?? 1)
  console.log(
    `\nfailover, SIGKILL of 1 of 3 runners, ${trials} trial(s); ms after the kill: the victim's last refresh ` +
      "(heartbeat or locks, before), its lease's expiry, the survivors' lock acquisitions (cluster_locks.acquired_at), the moved " +
      "entities' starts and their servers' recovery (claim, latest), how many of them were stopped again on a " +
      "survivor (their shard let go), the time from that recovery to the first " +
      "acknowledgement of each moved process, the last of those first acknowledgements (the backlog), then the " +
      "first acknowledgement of a call sent after the kill (first / median / last)\n\n" +
      "| load average before | processes moved | last refresh | lease expiry | shards acquired | entities started | " +
      "servers recovered (last) | stopped again | recovery to first ack (median / last) | backlog served (last) | " +
      "sent after the kill: first / median / last |\n|---|---|---|---|---|---|---|---|---|---|---|"
  )
  for (let i = 0; i < trials; i++) {
    const before = load()
    const f = yield* failover(script)
    console.log(
      `| ${before} | ${f.moved} of ${PROCESSES} | -${f.lastRefresh} | ${f.expiry} | ${f.acquiredFirst} to ` +
        `${f.acquiredLast} | ${f.restartedFirst} to ${f.restartedLast} | ${f.recoveredLast} | ${f.letGo} | ` +
        `${f.servingMedian} / ` +
        `${f.servingLast} | ${f.anyAckLast} | ${f.first} / ` +
        `${f.median} / ${f.last} |`
    )
  }
  yield* Scope.close(scope, Exit.void)
})

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
