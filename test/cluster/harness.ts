/**
 * Runs a cluster of runner processes (test/cluster/runner.ts) on loopback over one PostgreSQL schema, for the
 * cluster tests and bench/cluster.ts.
 *
 * - `pgUnavailable(url)`: why PostgreSQL cannot be used, or `undefined`.
 * - `prepareSchema(url, schema)`: creates the schema, the store's tables and the cluster's tables once, before
 *   runners start together; drops the schema when the scope closes.
 * - `bundleRunner`, then `startRunner({ script, … })`: spawns one runner (plain `node` on the bundled script) and waits until
 *   it is ready; the scope's close stops it.
 */
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { SqlClient } from "@effect/sql"
import { Deferred, Duration, Effect, Exit, Layer, type Scope } from "effect"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import * as ClusterNode from "../../src/cluster/ClusterNode.js"
import * as PgStore from "../../src/pg/PgStore.js"
import * as SqlStore from "../../src/sql/SqlStore.js"
import { bundleEntry } from "../fixtures/child.js"
import { dropSchemaOnClose } from "../fixtures/pg.js"

export { pgUnavailable, pgUrl, randomSchema, redacted } from "../fixtures/pg.js"

/**
 * Shard-lock settings shared by the test runners (ms): the defaults (`ClusterNode.DEFAULT_*`), a 6,000 ms
 * lease refreshed every 2,000 ms, so a runner
 * that cannot refresh stops its entities within 4,000 ms, 2,000 ms before anyone may take them over. (A
 * shorter refresh also shortens the time a refresh may take before the runner gives its shards up, which a
 * busy 2-core machine exceeds now and then.)
 */
export interface LockSettings {
  readonly shards: number
  readonly lockRefreshMs: number
  readonly lockExpirationMs: number
  readonly refreshAssignmentsMs: number
}

export const TEST_LOCKS: LockSettings = {
  shards: 60,
  lockRefreshMs: ClusterNode.DEFAULT_LOCK_REFRESH_MS,
  lockExpirationMs: ClusterNode.DEFAULT_LOCK_EXPIRATION_MS,
  refreshAssignmentsMs: ClusterNode.DEFAULT_REFRESH_ASSIGNMENTS_MS
}

/**
 * Creates `schema` with the store's and the cluster's tables (so that runners starting together do not race
 * on creating them), and drops it, with everything in it, when the scope closes. Gives the store and the
 * client, for checks, and `locksByRunner`: the shard locks held now, by runner address.
 */
export const prepareSchema = (url: string, schema: string, locks: LockSettings = TEST_LOCKS) =>
  Effect.gen(function* () {
    const client = PgStore.layerClient({ url, schema, maxConnections: 4 })
    const tables = Layer.mergeAll(
      SqlStore.layer(),
      Layer.discard(
        ClusterNode.layerRunnerStorage({
          shardsPerGroup: locks.shards,
          shardLockExpirationMs: locks.lockExpirationMs
        })
      )
    )
    const context = yield* Layer.build(
      tables.pipe(Layer.provideMerge(dropSchemaOnClose(schema)), Layer.provideMerge(client))
    )
    const store = yield* Effect.provide(AssignmentStore.AssignmentStore, context)
    const sql = yield* Effect.provide(SqlClient.SqlClient, context)
    /** Shard locks held now (not expired), by runner address. */
    const locksByRunner = Effect.map(
      sql<{ address: string; shards: number }>`
        SELECT address, count(*)::int AS shards FROM cluster_locks
        WHERE acquired_at > NOW() - ${`${locks.lockExpirationMs} milliseconds`}::interval
        GROUP BY address ORDER BY address`,
      (rows) => new Map(rows.map((r) => [r.address, Number(r.shards)]))
    )
    return { store, sql, locksByRunner }
  })

/** A free TCP port on loopback. */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(address.port)))
  })
})

/** A runner's reply to a command. */
export interface Reply {
  readonly id: number
  readonly ok: boolean
  readonly slot?: number
  readonly assignmentId?: string
  readonly hashChain?: string
  readonly timestamp?: number
  readonly tag?: string
  readonly reason?: string
  readonly hosted?: ReadonlyArray<string>
}

/** A registry event a runner printed, with `Date.now()` at publication. */
export interface RunnerEvent {
  readonly event: string
  readonly reason?: string
  readonly processId: string
  readonly t: number
}

/** A started runner. */
export interface Runner {
  readonly name: string
  readonly port: number
  /** Where it serves the node's HTTP API (`http://127.0.0.1:<port>`), when started with `httpPort`. */
  readonly httpUrl?: string | undefined
  readonly events: Array<RunnerEvent>
  /** Schedules message `messageId` for `processId` through this runner's registry. */
  readonly schedule: (processId: string, messageId: string, timeoutMs?: number) => Effect.Effect<Reply>
  readonly hosted: Effect.Effect<ReadonlyArray<string>>
  /** Makes every later RunnerStorage call of this runner hang. */
  readonly hang: Effect.Effect<void>
  /** SIGKILL; returns `Date.now()` at the kill. */
  readonly kill: Effect.Effect<number>
  readonly alive: () => boolean
  readonly stderr: () => string
}

/** The runner script bundled for plain `node` (see test/fixtures/child.ts); removed when the scope closes. */
export const bundleRunner: Effect.Effect<string, never, Scope.Scope> = bundleEntry(
  new URL("./runner.ts", import.meta.url)
)

const walletFile = fileURLToPath(new URL("../fixtures/wallet.json", import.meta.url))

/**
 * Spawns a runner on `port` over `schema` and waits until it is ready (or fails with its stderr); with
 * `httpPort`, it also serves the node's HTTP API there.
 */
export const startRunner = (options: {
  readonly script: string
  readonly name: string
  readonly url: string
  readonly schema: string
  readonly port: number
  readonly httpPort?: number | undefined
  readonly locks?: LockSettings | undefined
}): Effect.Effect<Runner, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const script = options.script
    const locks = options.locks ?? TEST_LOCKS
    const ready = yield* Deferred.make<void, Error>()
    const pending = new Map<number, (reply: Reply) => void>()
    const events: Array<RunnerEvent> = []
    let stderr = ""
    let nextId = 1
    let exited = false
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        ChildProcess.spawn(process.execPath, [script], {
          stdio: ["pipe", "pipe", "pipe"],
          env: {
            ...process.env,
            PG_URL: options.url,
            CLUSTER_SCHEMA: options.schema,
            RUNNER_PORT: String(options.port),
            SHARDS: String(locks.shards),
            LOCK_REFRESH_MS: String(locks.lockRefreshMs),
            LOCK_EXPIRATION_MS: String(locks.lockExpirationMs),
            REFRESH_ASSIGNMENTS_MS: String(locks.refreshAssignmentsMs),
            WALLET_FILE: walletFile,
            ...(options.httpPort === undefined ? {} : { HTTP_PORT: String(options.httpPort) })
          }
        })
      ),
      (child) =>
        Effect.async<void>((resume) => {
          if (exited) return resume(Effect.void)
          const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
          child.once("exit", () => {
            clearTimeout(timer)
            resume(Effect.void)
          })
          child.stdin?.end()
        })
    )
    let buffered = ""
    child.stdout!.setEncoding("utf8")
    child.stdout!.on("data", (chunk: string) => {
      buffered += chunk
      let newline = buffered.indexOf("\n")
      while (newline >= 0) {
        const line = buffered.slice(0, newline)
        buffered = buffered.slice(newline + 1)
        newline = buffered.indexOf("\n")
        if (!line.startsWith("@@")) continue
        const message = JSON.parse(line.slice(2)) as Record<string, unknown>
        if (message.ready === true) Deferred.unsafeDone(ready, Exit.void)
        else if (typeof message.failed === "string") {
          Deferred.unsafeDone(ready, Exit.fail(new Error(`${options.name} failed: ${message.failed}`)))
        } else if (typeof message.event === "string") events.push(message as unknown as RunnerEvent)
        else if (typeof message.id === "number") {
          const resolve = pending.get(message.id)
          pending.delete(message.id)
          resolve?.(message as unknown as Reply)
        }
      }
    })
    child.stderr!.setEncoding("utf8")
    child.stderr!.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(process.env.LOG_LEVEL === "Debug" ? -4_000_000 : -20_000)
    })
    child.stdin!.on("error", () => {})
    child.once("exit", (code, signal) => {
      exited = true
      Deferred.unsafeDone(
        ready,
        Exit.fail(new Error(`${options.name} exited (${code ?? signal}): ${stderr.slice(-2000)}`))
      )
      for (const [id, resolve] of pending) resolve({ id, ok: false, tag: "RunnerDied", reason: String(signal ?? code) })
      pending.clear()
    })
    yield* Deferred.await(ready).pipe(
      Effect.timeoutFail({
        duration: Duration.seconds(45),
        onTimeout: () => new Error(`${options.name} was not ready within 45 s: ${stderr.slice(-2000)}`)
      })
    )

    const call = (command: Record<string, unknown>) =>
      Effect.async<Reply>((resume) => {
        const id = nextId++
        if (exited) return resume(Effect.succeed({ id, ok: false, tag: "RunnerDied", reason: "exited" }))
        pending.set(id, (reply) => resume(Effect.succeed(reply)))
        child.stdin!.write(`${JSON.stringify({ ...command, id })}\n`)
      })

    return {
      name: options.name,
      port: options.port,
      httpUrl: options.httpPort === undefined ? undefined : `http://127.0.0.1:${options.httpPort}`,
      events,
      schedule: (processId, messageId, timeoutMs) => call({ op: "schedule", processId, messageId, timeoutMs }),
      hosted: Effect.map(call({ op: "hosted" }), (reply) => reply.hosted ?? []),
      hang: Effect.asVoid(call({ op: "hang" })),
      kill: Effect.sync(() => {
        child.kill("SIGKILL")
        return Date.now()
      }),
      alive: () => !exited,
      stderr: () => stderr
    } satisfies Runner
  })
