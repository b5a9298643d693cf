/**
 * A pool of signer threads, so that every core signs assignments.
 *
 * An RSA-4096 signature costs about 3 ms of CPU, which makes signing the bottleneck of `schedule`. A scheduler
 * hands the pool a whole run of its queued messages at once (`AssignmentSigner.signChain`): one thread lays out,
 * hashes, signs and chains the run (each `Hash-Chain` needs the previous assignment's id, so one process's run is
 * signed in order, on one thread) and sends back the signed items in one message, their bytes transferred, not
 * copied. Different processes' runs sign on different threads at once. Each thread holds at most two jobs, so
 * it has the next at hand when one ends, and never waits for the main thread between runs.
 *
 * The threads are plain `node:worker_threads` running the library-free assignment core from its source text
 * (`internal/assignment-core.ts`): no module loader, no Effect runtime, a few MB each (`npm run bench`, S6). They
 * run at the main thread's priority. Each gets the key once, as a JWK, when it starts.
 *
 * @since 0.1.0
 */
import * as Os from "node:os"
import { Config, type ConfigError, Context, Effect, Layer, type Scope } from "effect"
import type { AssignmentSigner } from "../Assignment.js"
import { SignerPoolError } from "../errors.js"
import { Wallet } from "../Wallet.js"
import * as Threads from "./internal/signer-threads.js"

/**
 * A running signer pool. It is an `AssignmentSigner` (`owner`, `sign`, `signChain`), so it can be passed as
 * `Scheduler.Options.signer` or as the registry option `signer`.
 *
 * - `owner`: the wallet's public modulus (512 bytes).
 * - `sign(data)`: the RSA-PSS SHA-256 signature (salt 32 bytes, 512 bytes) of `data`, computed on a signer
 *   thread.
 * - `signChain(start, entries, growth?)`: the signed, chained assignments of one run (`Assignment.signChain`),
 *   computed on one signer thread. With `growth` (since 0.5.0) the run can grow while it is signed: entries pushed
 *   afterwards follow the job to its thread, which signs them after the others if they arrive before it ends.
 * - `size`: the number of signer threads.
 *
 * Both die (a defect) if the signer thread crashed, or once the pool's scope has closed. A caller interrupted
 * while its job is queued is dropped before it is sent.
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
 * - `size` [`defaultSize()`]: signer threads.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly size?: number | undefined
}

/**
 * The default number of signer threads: one per core (`os.availableParallelism()`), since signing is what a
 * scheduler unit spends its CPU on; 0 (sign in-line, on the main thread) on a single core, where a thread would
 * only add round trips. Measured in `npm run bench` (S1–S3).
 *
 * @since 0.4.0
 * @category constructors
 */
export const defaultSize = (): number => {
  const cores = Os.availableParallelism()
  return cores <= 1 ? 0 : cores
}

/**
 * Starts the signer threads for the `Wallet` in the current scope; closing the scope terminates them. Fails with
 * `SignerPoolError` if a thread cannot start or cannot read the key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<SignerPool["Type"], SignerPoolError, Wallet | Scope.Scope> =>
  Effect.gen(function* () {
    const wallet = yield* Wallet
    const size = Math.max(1, options.size ?? defaultSize())
    const pool = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => Threads.start(wallet.privateKey, size),
        catch: (cause) => new SignerPoolError({ reason: cause instanceof Error ? cause.message : String(cause) })
      }),
      (pool) => Effect.promise(() => pool.close())
    )
    return SignerPool.of({
      owner: wallet.owner,
      size,
      sign: (data) => pool.run<Uint8Array>({ kind: "sign", data }),
      signChain: (start, entries, growth) => pool.run({ kind: "chain", start, entries, growth })
    })
  })

/**
 * The pool as a layer (`make` in the layer's scope).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<SignerPool, SignerPoolError, Wallet> =>
  Layer.scoped(SignerPool, make(options))

/**
 * The pool as a layer, its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<SignerPool, SignerPoolError | ConfigError.ConfigError, Wallet> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
