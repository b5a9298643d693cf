/**
 * `effect-scheduler-registry/testing`: helpers for users who test (and property-test) their own applications on
 * the registry. Imports only the core; needs no optional peer (fast-check comes with `effect`). Each module is
 * exported as a namespace.
 *
 * @since 0.2.0
 */

/**
 * fast-check `Arbitrary`s of process and message ids, and specs of ao data items with `sign` to sign them with
 * the test key.
 *
 * @since 0.2.0
 * @category modules
 */
export * as Arbitraries from "./Arbitraries.js"
/**
 * A fault-injecting `AssignmentStore` (fail, die, hang, commit-then-fail, delay) over another store.
 *
 * @since 0.2.0
 * @category modules
 */
export * as FaultyStore from "./FaultyStore.js"
/**
 * A fixed RSA-4096 test key and its `Wallet` layer (never for production).
 *
 * @since 0.2.0
 * @category modules
 */
export * as TestWallet from "./TestWallet.js"
