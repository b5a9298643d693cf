/**
 * A pool of worker threads that sign assignments, so that every core signs.
 *
 * An RSA-4096 signature costs 3–6 ms of CPU, which makes signing the bottleneck of `schedule`. With the pool,
 * the scheduler's fiber still builds the data item and computes its ANS-104 signature data on the main thread
 * (`Assignment.build`), and a worker thread does only the RSA-PSS signature. Each worker gets the key once, as
 * a JWK, when it starts, and parses it once. Each scheduler awaits its signature before it assigns the next
 * slot, so the pool never reorders one process's assignments; different processes sign in parallel.
 *
 * The workers are `@effect/platform` serialized workers (`Worker.makeSerialized` on `@effect/platform-node`'s
 * `NodeWorker`, one per thread) running `internal/signer-worker`. Requests are batched naturally
 * (`internal/signer-lanes`): each worker has two lanes, and a free lane takes its share of the queued requests
 * (up to `maxBatch`) as one message, so the per-message cost is paid per batch under load and nothing waits
 * under light load. A worker thread runs at a nice value 5 above the main thread's (Linux; best effort), so
 * the main thread, which hands out the batches and serves HTTP, gets a core at once. From compiled
 * JavaScript the workers start as plain `.js` workers; from TypeScript source (tsx, vitest) through a small
 * bootstrap that registers tsx, see docs/benchmarks.md.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import * as Os from "node:os"
import { pathToFileURL } from "node:url"
import * as WorkerThreads from "node:worker_threads"
import { Worker, type WorkerError } from "@effect/platform"
import { NodeWorker } from "@effect/platform-node"
import { Config, type ConfigError, Context, Effect, Layer, Schema, type Scope } from "effect"
import type { AssignmentSigner } from "../Assignment.js"
import { Jwk, Wallet } from "../Wallet.js"
import * as Lanes from "./internal/signer-lanes.js"
import { InitialMessage, Sign, type SignerRequest } from "./internal/signer-protocol.js"

/**
 * A running signer pool. It is an `AssignmentSigner` (`owner`, `sign`), so it can be passed as
 * `Scheduler.Options.signer` or as the registry option `signer`.
 *
 * - `owner`: the wallet's public modulus (512 bytes).
 * - `sign(data)`: the RSA-PSS SHA-256 signature (salt 32 bytes, 512 bytes) of `data`, computed on a worker
 *   thread. Dies with the `WorkerError` if a worker cannot be reached (it crashed), or with an `Error` once the
 *   pool's scope has closed. A caller interrupted while its request is queued is dropped before it is sent.
 * - `size`: the number of worker threads.
 *
 * @since 0.1.0
 * @category models
 */
export class SignerPool extends Context.Tag("effect-scheduler-registry/SignerPool")<
  SignerPool,
  AssignmentSigner & { readonly size: number }
>() {}

/**
 * Options of the pool. Defaults in brackets.
 *
 * - `size` [`os.availableParallelism()`]: worker threads. Signing is CPU-bound, so one per core; the main
 *   thread's share (HTTP, deep hash, store) is small next to the signatures.
 * - `maxBatch` [16]: the most signatures sent to one worker in one message. Requests are batched naturally:
 *   a worker that is free takes its share of what is queued, so under light load each message carries one
 *   signature and under load the per-message cost (encode, post, decode) is paid once per batch.
 *
 * @since 0.1.0
 * @category options
 */
export interface Options {
  readonly size?: number | undefined
  readonly maxBatch?: number | undefined
}

const DEFAULT_MAX_BATCH = 16

/** The worker script next to this module: `.ts` when running from source, `.js` when compiled. */
const workerUrl = (): URL => {
  const ext = import.meta.url.endsWith(".ts") ? "ts" : "js"
  return new URL(`./internal/signer-worker.${ext}`, import.meta.url)
}

/**
 * The ESM entry of tsx's register API (`tsx/esm/api`). `import.meta.resolve` where the runtime has it (Node,
 * tsx); under vitest, through `require.resolve` and the sibling `.mjs` file of the CommonJS entry it finds.
 */
const tsxApi = (): string => {
  if (typeof import.meta.resolve === "function") return import.meta.resolve("tsx/esm/api")
  const cjs = createRequire(import.meta.url).resolve("tsx/esm/api")
  return pathToFileURL(cjs.replace(/\.cjs$/, ".mjs")).href
}

/**
 * Starts one signer worker thread. A `.ts` worker needs a TypeScript loader, and on Node 20 neither the
 * parent's `--import` loader flags nor `execArgv: ["--import", "tsx"]` apply to a worker's entry module
 * ("Unknown file extension .ts"). So it starts from a small evaluated bootstrap that registers tsx
 * (`tsx/esm/api`'s `register()`) and then imports the `.ts` worker.
 */
const spawn = (): WorkerThreads.Worker => {
  const url = workerUrl()
  if (url.pathname.endsWith(".js")) return new WorkerThreads.Worker(url)
  const bootstrap = `import(${JSON.stringify(tsxApi())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}) })`
  return new WorkerThreads.Worker(bootstrap, { eval: true })
}

/**
 * Starts the pool in the current scope for the ambient `Wallet`: `size` worker threads, each given the key
 * once. Closing the scope stops the workers (a worker still signing finishes that signature first).
 * Fails with `WorkerError` if a worker cannot start.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { SignerPool } from "effect-scheduler-registry/node"
 *
 * const program = Effect.gen(function* () {
 *   const pool = yield* SignerPool.make({ size: 2 })
 *   return yield* pool.sign(new Uint8Array(48)) // on a worker thread
 * }).pipe(Effect.scoped, Effect.provide(Wallet.layerFile("./data/wallet.json")))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<SignerPool["Type"], WorkerError.WorkerError, Wallet | Scope.Scope> =>
  Effect.gen(function* () {
    const wallet = yield* Wallet
    const size = Math.max(1, options.size ?? Os.availableParallelism())
    const initial = new InitialMessage({
      jwk: Schema.decodeUnknownSync(Jwk)(wallet.privateKey.export({ format: "jwk" }))
    })
    const workers = yield* Effect.forEach(
      Array.from({ length: size }),
      () => Worker.makeSerialized<SignerRequest>({ initialMessage: () => initial }),
      { concurrency: "unbounded" }
    ).pipe(Effect.provide(NodeWorker.layer(spawn)))
    const sign = yield* Lanes.make(
      // two lanes per worker: the worker has the next batch at hand while the main thread takes the last one's
      // replies, so it never waits for the main thread between batches
      workers.flatMap((worker) => {
        const send: Lanes.SendBatch = (data) => worker.executeEffect(new Sign({ data }))
        return [send, send]
      }),
      options.maxBatch ?? DEFAULT_MAX_BATCH
    )
    return SignerPool.of({ owner: wallet.owner, size, sign })
  })

/**
 * The pool as a Layer over the ambient `Wallet`; its workers stop when the Layer is released.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { AssignmentStore, NameService, SchedulerRegistry, Wallet } from "effect-scheduler-registry"
 * import { SignerPool } from "effect-scheduler-registry/node"
 *
 * // every scheduler signs on the pool's worker threads
 * const RegistryLive = Layer.unwrapEffect(
 *   Effect.map(SignerPool.SignerPool, (signer) => SchedulerRegistry.layer({ signer }))
 * ).pipe(
 *   Layer.provide(SignerPool.layer({ size: 4 })),
 *   Layer.provide(Layer.mergeAll(NameService.layer, AssignmentStore.layerMemory)),
 *   Layer.provideMerge(Wallet.layerFile("./data/wallet.json"))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<SignerPool, WorkerError.WorkerError, Wallet> =>
  Layer.scoped(SignerPool, make(options))

/**
 * `layer` with its options read from `Config` (e.g. `{ size: Config.integer("SU_SIGNERS") }`). Fails with
 * `ConfigError` when the config does not load, or `WorkerError` as `layer` does.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<SignerPool, WorkerError.WorkerError | ConfigError.ConfigError, Wallet> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
