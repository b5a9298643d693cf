/**
 * `effect-scheduler-registry/node`: the SU node: the HTTP API real ao clients call, its server, configuration,
 * command line and signer threads. Needs the optional peers `@effect/platform`, `@effect/platform-node` and
 * `@effect/cli`, plus those of the store it runs on (`/sqlite` by default).
 *
 * @since 0.2.0
 */

/**
 * The Arweave gateway: the current block (refreshed every 15 s, never backwards) and the transaction lookups
 * of a verified assign (`src/network/Gateway.ts`).
 *
 * @since 0.2.0
 * @category modules
 */
export * as Gateway from "../network/Gateway.js"
/**
 * The Scheduler-Location record: publish this SU's URL (and keep it published), resolve another SU's URL from
 * its record (`src/network/Location.ts`).
 *
 * @since 0.3.0
 * @category modules
 */
export * as Location from "../network/Location.js"
/**
 * Durable uploads to an ANS-104 bundler: the drain loop of the store's outbox, and the `remote_confirmation`
 * hook (`src/network/Uploader.ts`).
 *
 * @since 0.3.0
 * @category modules
 */
export * as Uploader from "../network/Uploader.js"
/**
 * The HTTP API definition (`HttpApi`): routes, inputs, errors.
 *
 * @since 0.2.0
 * @category modules
 */
export * as Api from "./Api.js"
/**
 * The `su` command line.
 *
 * @since 0.2.0
 * @category modules
 */
export * as Cli from "./Cli.js"
/**
 * Settings: flags, environment variables and defaults.
 *
 * @since 0.2.0
 * @category modules
 */
export * as Config from "./Config.js"
/**
 * The HTTP handlers and server Layer.
 *
 * @since 0.2.0
 * @category modules
 */
export * as Http from "./Http.js"
/**
 * The node assembled from a configuration.
 *
 * @since 0.2.0
 * @category modules
 */
export * as Node from "./Node.js"
/**
 * Signing on worker threads.
 *
 * @since 0.2.0
 * @category modules
 */
export * as SignerPool from "./SignerPool.js"
