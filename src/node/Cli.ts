/**
 * The `su` command line (`@effect/cli`): `serve` (the default) runs a node; `wallet create` and
 * `wallet address` manage its key file; `outbox status` and `outbox redrive` (since 0.3.0) report and re-drive
 * the store's upload outbox without starting the server. `--help` and `--version` work on every command.
 *
 * Mirrors the legacy ao SU binary (`./su su <port>`) with the settings of `Config.ts` (flags, `SU_*`
 * environment variables, defaults).
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Command, HelpDoc } from "@effect/cli"
import { Console, Effect } from "effect"
import * as Wallet from "../Wallet.js"
import * as Config from "./Config.js"
import * as OutboxCli from "./internal/outbox-cli.js"
import * as Node from "./Node.js"

/** The package's version, from the nearest `package.json` above this module (source, build or bundle). */
const version = ((): string => {
  for (let dir = Path.dirname(fileURLToPath(import.meta.url)); ; dir = Path.dirname(dir)) {
    try {
      const pkg = JSON.parse(Fs.readFileSync(Path.join(dir, "package.json"), "utf8")) as {
        name?: string
        version?: string
      }
      if (pkg.name === "effect-scheduler-registry" && pkg.version !== undefined) return pkg.version
    } catch {
      // no package.json here: keep walking up
    }
    if (Path.dirname(dir) === dir) return "0.0.0"
  }
})()

const serveHandler = (settings: Config.Settings) =>
  Effect.gen(function* () {
    // a setting that does not resolve (e.g. remote_confirmation without --upload-url) is printed as one line
    const config = yield* Effect.tapError(Config.resolve(settings), (e) =>
      Console.error(HelpDoc.toAnsiText(e.error).trim())
    )
    // finalizers run last-in first-out: this one runs after the node has closed, the next one before
    yield* Effect.addFinalizer(() =>
      Console.log("SU stopped: requests in flight answered, schedulers and store closed")
    )
    const node = yield* Node.start(config)
    yield* Effect.addFinalizer(() => Console.log("SU stopping: refusing new requests, finishing those in flight"))
    yield* Console.log(
      [
        `SU listening on ${node.url}`,
        `  wallet address  ${node.address}`,
        `  wallet file     ${node.walletPath}`,
        `  store           ${
          config.store.kind === "sqlite" ? node.storePath : config.store.kind === "pg" ? "postgresql" : "memory"
        }`,
        `  data directory  ${config.dataDir}`,
        `  mode            ${config.mode}`,
        `  API docs        ${node.url}/docs`
      ].join("\n")
    )
    // serve until interrupted (SIGINT / SIGTERM through NodeRuntime.runMain): the scope then closes the node
    return yield* Effect.never
  }).pipe(Effect.scoped)

/**
 * `serve`: runs a node until SIGINT/SIGTERM, then shuts down gracefully. Prints the URL, the wallet address and
 * the data paths once listening.
 *
 * @since 0.1.0
 * @category constants
 */
export const serve = Command.make("serve", Config.serveOptions, serveHandler).pipe(
  Command.withDescription("Run the scheduler unit node (the default command)")
)

const loadWallet = (settings: Pick<Config.Settings, "dataDir" | "wallet">) =>
  Effect.gen(function* () {
    const path = Path.resolve(Config.walletPath(settings))
    const { created, jwk } = yield* Wallet.loadOrCreate(path)
    const wallet = yield* Wallet.make(jwk, path)
    return { path, created, address: wallet.address }
  })

/**
 * `wallet create`: creates the wallet file if missing (RSA-4096, mode 0600) and prints its address and path.
 *
 * @since 0.1.0
 * @category constants
 */
export const walletCreate = Command.make("create", Config.walletOptions, (settings) =>
  Effect.flatMap(loadWallet(settings), ({ address, created, path }) =>
    Console.log(`${created ? "created" : "exists "} ${path}\naddress ${address}`)
  )
).pipe(Command.withDescription("Create the wallet file if it is missing, and print its address"))

/**
 * `wallet address`: prints the wallet's address (creating the file first if it is missing).
 *
 * @since 0.1.0
 * @category constants
 */
export const walletAddress = Command.make("address", Config.walletOptions, (settings) =>
  Effect.flatMap(loadWallet(settings), ({ address }) => Console.log(address))
).pipe(Command.withDescription("Print the wallet's address (the file is created if missing)"))

/**
 * `wallet`: the wallet subcommands.
 *
 * @since 0.1.0
 * @category constants
 */
export const wallet = Command.make("wallet").pipe(
  Command.withDescription("Manage the node's wallet file"),
  Command.withSubcommands([walletCreate, walletAddress])
)

/**
 * `outbox status`: the upload outbox of the store of `--data-dir` / `--store` / `--pg-url` (the server need not
 * run): items not yet uploaded (depth), pending and retrying counts, uploaded count, the oldest item's age (ms)
 * and the next attempt. Fails with `StoreError` if the store cannot be opened.
 *
 * @since 0.3.0
 * @category constants
 */
export const outboxStatus = Command.make("status", OutboxCli.options, OutboxCli.status).pipe(
  Command.withDescription("Report the upload outbox: depth, oldest item's age, pending/retrying/uploaded counts")
)

/**
 * `outbox redrive`: makes every failed, backed-off outbox item due now with its backoff reset; a running node
 * picks them up within its poll interval (1 s).
 *
 * @since 0.3.0
 * @category constants
 */
export const outboxRedrive = Command.make("redrive", OutboxCli.options, OutboxCli.redrive).pipe(
  Command.withDescription("Retry every failed upload now (resets the backoff)")
)

/**
 * `outbox`: the upload outbox subcommands.
 *
 * @since 0.3.0
 * @category constants
 */
export const outbox = Command.make("outbox").pipe(
  Command.withDescription("Inspect and re-drive the store's upload outbox (durable uploads to the bundler)"),
  Command.withSubcommands([outboxStatus, outboxRedrive])
)

/**
 * The root command `su`: without a subcommand it serves, with `serve`'s flags.
 *
 * @since 0.1.0
 * @category constants
 */
export const root = Command.make("su", Config.serveOptions, serveHandler).pipe(
  Command.withDescription("effect-scheduler-registry: an AO Scheduler Unit (legacy ao SU API, ao.TN.1)"),
  Command.withSubcommands([serve, wallet, outbox])
)

/**
 * Runs the CLI on `process.argv`-style arguments. Needs `NodeContext` (file system, terminal).
 *
 * @since 0.1.0
 * @category utils
 */
export const run = Command.run(root, { name: "effect-scheduler-registry SU", version })
