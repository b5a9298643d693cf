/**
 * One runner of a test cluster, as a child process: `ClusterRegistry.layerCluster` over this runner's
 * `Sharding` (`layerSharding`: NodeClusterSocket on loopback) with the shard locks in PostgreSQL
 * (`layerRunnerStorage`) and the PostgreSQL `AssignmentStore`, in the schema `CLUSTER_SCHEMA`. The test drives
 * it over a control channel of JSON lines.
 *
 * Environment: `PG_URL`, `CLUSTER_SCHEMA`, `RUNNER_PORT`, `SHARDS`, `LOCK_REFRESH_MS`, `LOCK_EXPIRATION_MS`,
 * `REFRESH_ASSIGNMENTS_MS`, `SHARD_RECHECK_MS` (optional), `LOG_LEVEL` (optional, `Debug`), `WALLET_FILE`; with `HTTP_PORT`, it also serves the
 * node's HTTP API (`Http.layer`) on `127.0.0.1:HTTP_PORT` over its registry and the store `layerCluster` gives,
 * as a node does.
 *
 * stdin, one command a line:
 * - `{"id":n,"op":"schedule","processId":p,"messageId":m,"timeoutMs":t}`: `find(p, true)` (once per process)
 *   then `schedule`; replies `{"id":n,"ok":true,"slot","assignmentId","hashChain","timestamp"}` or
 *   `{"id":n,"ok":false,"tag","reason"}`.
 * - `{"id":n,"op":"hosted"}`: `getProcesses()`, replies `{"id":n,"ok":true,"hosted":[…]}`.
 * - `{"id":n,"op":"hang"}`: from now on every call to this runner's `RunnerStorage` (shard locks, heartbeat,
 *   runner list) never returns, as when its connection to the database hangs; the `AssignmentStore` still
 *   works, so a runner that did not stop its entities would go on writing.
 *
 * stdout: protocol lines start with `@@` (logs go to stderr): `{"ready":true}`, the replies, and every registry
 * event as `{"event":tag,"reason","processId","t":ms}`, where `t` is `Date.now()` when it was published:
 * `Registered` before a server first touches the store, `Unregistered` after it has ended.
 */
import * as Fs from "node:fs"
import * as NodeHttp from "node:http"
import * as Readline from "node:readline"
import { RunnerStorage } from "@effect/cluster"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Logger, LogLevel, Queue, Runtime } from "effect"
import { Message } from "../../src/Assignment.js"
import * as ClusterNode from "../../src/cluster/ClusterNode.js"
import * as ClusterRegistry from "../../src/cluster/ClusterRegistry.js"
import * as Http from "../../src/node/Http.js"
import type { MessageId } from "../../src/ProcessId.js"
import * as PgStore from "../../src/pg/PgStore.js"
import type * as Scheduler from "../../src/Scheduler.js"
import { SchedulerRegistry } from "../../src/SchedulerRegistry.js"
import * as SqlStore from "../../src/sql/SqlStore.js"
import * as Wallet from "../../src/Wallet.js"

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback
  if (value === undefined) throw new Error(`${name} is not set`)
  return value
}

const emit = (line: unknown) => {
  process.stdout.write(`@@${JSON.stringify(line)}\n`)
}

const runnerOptions: ClusterNode.RunnerOptions = {
  runnerHost: "127.0.0.1",
  runnerPort: Number(env("RUNNER_PORT")),
  shardsPerGroup: Number(env("SHARDS", "60")),
  shardLockRefreshIntervalMs: Number(env("LOCK_REFRESH_MS", "2000")),
  shardLockExpirationMs: Number(env("LOCK_EXPIRATION_MS", "6000")),
  refreshAssignmentsIntervalMs: Number(
    env("REFRESH_ASSIGNMENTS_MS", String(ClusterNode.DEFAULT_REFRESH_ASSIGNMENTS_MS))
  ),
  // the default unless set (bench/cluster.ts compares)
  shardRecheckIntervalMs: process.env.SHARD_RECHECK_MS === undefined ? undefined : Number(process.env.SHARD_RECHECK_MS)
}

/** Flipped by the `hang` command: every RunnerStorage call made after it never completes. */
let hanging = false
const hangable = Layer.effect(
  RunnerStorage.RunnerStorage,
  Effect.map(RunnerStorage.RunnerStorage, (storage): RunnerStorage.RunnerStorage["Type"] => {
    const gate = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.suspend(() => (hanging ? Effect.never : effect))
    return {
      register: (runner, healthy) => gate(storage.register(runner, healthy)),
      unregister: (address) => gate(storage.unregister(address)),
      getRunners: gate(storage.getRunners),
      setRunnerHealth: (address, healthy) => gate(storage.setRunnerHealth(address, healthy)),
      acquire: (address, shardIds) => gate(storage.acquire(address, shardIds)),
      refresh: (address, shardIds) => gate(storage.refresh(address, shardIds)),
      release: (address, shardId) => gate(storage.release(address, shardId)),
      releaseAll: (address) => gate(storage.releaseAll(address))
    }
  })
).pipe(Layer.provide(ClusterNode.layerRunnerStorage(runnerOptions)))

const client = PgStore.layerClient({
  url: env("PG_URL"),
  schema: env("CLUSTER_SCHEMA"),
  maxConnections: 6,
  ...ClusterNode.sessionTimeouts(runnerOptions.shardLockExpirationMs)
})
const wallet = Wallet.layerJwk(JSON.parse(Fs.readFileSync(env("WALLET_FILE"), "utf8")))

const registry = ClusterRegistry.layerCluster({
  timeoutMs: 30_000,
  storeTimeoutMs: runnerOptions.shardLockExpirationMs
}).pipe(
  Layer.provideMerge(
    Layer.merge(ClusterNode.layerSharding(runnerOptions).pipe(Layer.provide(hangable)), SqlStore.layer())
  ),
  Layer.provide(client),
  Layer.provide(wallet)
)
const httpPort = process.env.HTTP_PORT
const cluster =
  httpPort === undefined
    ? registry
    : Http.layer().pipe(
        Layer.provide(NodeHttpServer.layer(NodeHttp.createServer, { port: Number(httpPort), host: "127.0.0.1" })),
        Layer.provideMerge(registry)
      )

interface Command {
  readonly id: number
  readonly op: "schedule" | "hosted" | "hang"
  readonly processId?: string
  readonly messageId?: string
  readonly timeoutMs?: number
}

const program = Effect.gen(function* () {
  const registry = yield* SchedulerRegistry
  const events = yield* registry.subscribe
  yield* Effect.forkScoped(
    Effect.forever(
      Effect.map(Queue.take(events), (event) =>
        emit({
          event: event._tag,
          reason: event._tag === "Unregistered" ? event.reason : undefined,
          processId: event.name.id,
          t: Date.now()
        })
      )
    )
  )
  const handles = new Map<string, Scheduler.Scheduler>()
  const run = (command: Command) =>
    Effect.gen(function* () {
      if (command.op === "hang") {
        hanging = true
        return { id: command.id, ok: true }
      }
      if (command.op === "hosted") return { id: command.id, ok: true, hosted: yield* registry.getProcesses() }
      const processId = command.processId!
      let handle = handles.get(processId)
      if (handle === undefined) {
        handle = yield* registry.find(processId, true)
        handles.set(processId, handle)
      }
      const raw = new Uint8Array(64).fill(command.id & 0xff)
      const a = yield* handle.schedule(new Message({ id: command.messageId as MessageId, raw }), {
        timeoutMs: command.timeoutMs
      })
      return {
        id: command.id,
        ok: true,
        slot: a.slot,
        assignmentId: a.id,
        hashChain: a.hashChain,
        timestamp: a.timestamp
      }
    }).pipe(
      Effect.catchAll((error) =>
        Effect.succeed({ id: command.id, ok: false, tag: error._tag, reason: "reason" in error ? error.reason : "" })
      ),
      Effect.catchAllDefect((defect) =>
        Effect.succeed({ id: command.id, ok: false, tag: "Defect", reason: String(defect) })
      ),
      Effect.map(emit)
    )
  const runtime = yield* Effect.runtime<never>()
  const lines = Readline.createInterface({ input: process.stdin })
  lines.on("line", (line) => {
    if (line.trim() !== "") Runtime.runFork(runtime)(run(JSON.parse(line) as Command))
  })
  emit({ ready: true })
  // the parent closes stdin to stop the runner gracefully
  yield* Effect.async<void>((resume) => {
    lines.once("close", () => resume(Effect.void))
  })
})

Effect.runFork(
  program.pipe(
    Effect.scoped,
    Effect.provide(cluster),
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))),
    // LOG_LEVEL=Debug shows the cluster's and the registry's debug lines (bench/cluster.ts FAILOVER_DEBUG)
    Logger.withMinimumLogLevel(process.env.LOG_LEVEL === "Debug" ? LogLevel.Debug : LogLevel.Info),
    Effect.tapErrorCause((cause) => Effect.sync(() => emit({ failed: String(cause) }))),
    Effect.ensuring(Effect.sync(() => process.exit(0)))
  )
)
