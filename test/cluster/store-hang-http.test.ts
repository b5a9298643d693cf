/**
 * The HTTP reads of a runner whose store connection hangs. Two runner processes over one PostgreSQL schema, each
 * serving the node's HTTP API (`Http.layer` over `ClusterRegistry.layerCluster`, lease 6,000 ms); runner-2
 * reaches PostgreSQL through a TCP proxy (test/fixtures/tcp-proxy.ts).
 *
 * While runner-2's store connection is frozen, its routes that read the store (`GET /{pid}`,
 * `GET /processes/{pid}`, `GET /{pid}/latest`, `GET /{message}`, `GET /timestamp?process-id`, the HyperBEAM
 * schedule read) answer 503 with a body that says to retry, for its own processes and for processes hosted on
 * runner-1 alike, and never wait for the thaw (the freeze lasts until they have answered); runner-1 answers
 * them 200 meanwhile. A `POST /` of a message to runner-2 meanwhile is a 503 too (nothing sent). After the
 * thaw runner-2 answers 200 again. Polls on state (the first 503), no wall-clock bound.
 *
 * Without PostgreSQL the suite is reported as skipped, with the reason.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Schedule, Scope } from "effect"
import { messageItem, processItem } from "../fixtures/dataItems.js"
import { startTcpProxy, type TcpProxy } from "../fixtures/tcp-proxy.js"
import {
  bundleRunner,
  freePort,
  pgUnavailable,
  pgUrl,
  prepareSchema,
  type Runner,
  randomSchema,
  redacted,
  startRunner,
  TEST_LOCKS
} from "./harness.js"

const unavailable = await pgUnavailable(pgUrl)
if (unavailable !== undefined) {
  console.warn(`SKIPPED store-hang HTTP tests: no PostgreSQL at ${redacted(pgUrl)}: ${unavailable}`)
}

const PROCESSES = 12

interface Answer {
  readonly path: string
  readonly status: number
  readonly body: string
}

/** `POST /` of a data item: its status and body. */
const postAnswer = (url: string, raw: Uint8Array): Effect.Effect<Answer> =>
  Effect.promise(async () => {
    const response = await fetch(`${url}/`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: raw
    })
    return { path: "POST /", status: response.status, body: await response.text() }
  })

/** `POST /` of a data item: the status. */
const post = (url: string, raw: Uint8Array): Effect.Effect<number> =>
  Effect.map(postAnswer(url, raw), (answer) => answer.status)

/** `GET url + path`: its status and body (no client timeout: a request stuck on the store would hang here). */
const get = (url: string, path: string): Effect.Effect<Answer> =>
  Effect.promise(async () => {
    const response = await fetch(`${url}${path}`)
    return { path, status: response.status, body: await response.text() }
  })

/** Runs `effect` every 100 ms until `done` holds for its result; gives that result. */
const poll = <A>(effect: Effect.Effect<A>, done: (a: A) => boolean): Effect.Effect<A> =>
  Effect.flatMap(effect, (a) =>
    done(a)
      ? Effect.succeed(a)
      : Effect.zipRight(
          Effect.sleep("100 millis"),
          Effect.suspend(() => poll(effect, done))
        )
  )

describe.skipIf(unavailable !== undefined)("the HTTP reads of a runner whose store connection hangs", () => {
  const scope = Effect.runSync(Scope.make())
  const schema = randomSchema("su_hang_http")
  const processes: Array<string> = []
  /** One stored message id per process. */
  const messages = new Map<string, string>()
  let runners: Array<Runner> = []
  let proxy: TcpProxy

  beforeAll(async () => {
    await Effect.runPromise(
      Effect.gen(function* () {
        const prepared = yield* prepareSchema(pgUrl, schema)
        const target = new URL(pgUrl)
        proxy = yield* startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
        const script = yield* bundleRunner
        const ports = yield* Effect.all([freePort, freePort, freePort, freePort])
        runners = yield* Effect.all(
          [0, 1].map((i) =>
            startRunner({
              script,
              name: `runner-${i + 1}`,
              url: i === 1 ? proxy.url(pgUrl) : pgUrl,
              schema,
              port: ports[i]!,
              httpPort: ports[i + 2]!
            })
          ),
          { concurrency: "unbounded" }
        )
        // until both runners hold shards and all are held
        yield* Effect.repeat(prepared.locksByRunner, {
          until: (locks) =>
            locks.size === 2 && [...locks.values()].reduce((sum, n) => sum + n, 0) === TEST_LOCKS.shards,
          schedule: Schedule.spaced("200 millis")
        }).pipe(Effect.timeout("40 seconds"), Effect.orDie)
        // every process spawned and sent one message, as aoconnect does (POST /), through runner-1
        const url = runners[0]!.httpUrl!
        const { address } = (yield* Effect.promise(() => fetch(url).then((r) => r.json()))) as {
          readonly address: string
        }
        for (let i = 0; i < PROCESSES; i++) {
          const process = yield* Effect.promise(() => processItem(address))
          expect(yield* post(url, process.getRaw())).toBe(200)
          const message = yield* Effect.promise(() => messageItem(process.id, 1))
          expect(yield* post(url, message.getRaw())).toBe(200)
          processes.push(process.id)
          messages.set(process.id, message.id)
        }
      }).pipe(Scope.extend(scope))
    )
  }, 120_000)

  afterAll(async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }, 60_000)

  /** The store reads of the HTTP API for process `p`. */
  const reads = (p: string) => [
    `/${p}`,
    `/${p}?from-nonce=-1&limit=10`,
    `/processes/${p}`,
    `/${p}/latest`,
    `/${messages.get(p)}?process-id=${p}`,
    `/timestamp?process-id=${p}`,
    `/~scheduler@1.0/schedule?target=${p}`
  ]

  it.live(
    "GET /{pid}, /processes/{pid} and the other store reads answer 503 (retry) while its store hangs",
    () =>
      Effect.gen(function* () {
        const [healthy, hung] = [runners[0]!, runners[1]!]
        const onHung = new Set(yield* hung.hosted)
        const own = processes.find((p) => onHung.has(p))
        const elsewhere = processes.find((p) => !onHung.has(p))
        expect(own).toBeDefined()
        expect(elsewhere).toBeDefined()
        const paths = [...reads(own!), ...reads(elsewhere!)]
        // before the freeze both runners answer every read
        for (const runner of [healthy, hung]) {
          const answers = yield* Effect.forEach(paths, (path) => get(runner.httpUrl!, path))
          expect(answers.filter((a) => a.status !== 200)).toEqual([])
        }
        yield* proxy.freeze
        const frozenAt = Date.now()
        // the first read that does not succeed: it waited at most one lease, and it is a 503
        const first = yield* poll(get(hung.httpUrl!, `/${own}`), (answer) => answer.status !== 200)
        console.info(
          `store-hang HTTP: the first 503 came ${Date.now() - frozenAt} ms after the freeze (printed, not asserted)`
        )
        expect(first.status).toBe(503)
        // from then on every store read of the hung runner is a 503 that says to retry, whoever hosts the process
        const during = yield* Effect.forEach(paths, (path) => get(hung.httpUrl!, path), { concurrency: "unbounded" })
        for (const answer of [first, ...during]) {
          expect({ path: answer.path, status: answer.status }).toEqual({ path: answer.path, status: 503 })
          const error = (JSON.parse(answer.body) as { readonly error: string }).error
          expect(error).toMatch(/has not answered for 6000 ms; retry, another node may answer/)
        }
        // and so does a POST / of a message, for its own process and one hosted elsewhere: 503, nothing sent
        for (const p of [own!, elsewhere!]) {
          const item = yield* Effect.promise(() => messageItem(p, 2))
          const posted = yield* postAnswer(hung.httpUrl!, item.getRaw())
          expect(posted.status).toBe(503)
          expect((JSON.parse(posted.body) as { readonly error: string }).error).toMatch(
            /has not answered for 6000 ms; retry, another node may answer/
          )
        }
        // the healthy runner answers the same reads meanwhile
        const other = yield* Effect.forEach(paths, (path) => get(healthy.httpUrl!, path))
        expect(other.filter((a) => a.status !== 200)).toEqual([])
        yield* proxy.thaw
        // once its store answers again, so does the runner
        yield* poll(get(hung.httpUrl!, `/${own}`), (answer) => answer.status === 200)
        const after = yield* Effect.forEach(paths, (path) => get(hung.httpUrl!, path))
        expect(after.filter((a) => a.status !== 200)).toEqual([])
      }),
    120_000
  )
})
