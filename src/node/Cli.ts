/**
 * The `su` command line (`@effect/cli`): `serve` (the default) runs a node; `wallet create` and
 * `wallet address` manage its key file. `--help` and `--version` work on every command. A command that cannot
 * start (an invalid setting, a busy port, a store held by another node, a bad key file…) prints one line naming
 * the setting and its fix and exits 1; `--log-level debug` also logs the whole cause.
 *
 * Mirrors the legacy ao SU binary (`./su su <port>`) with the settings of `Config.ts` (flags, `SU_*`
 * environment variables, defaults).
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import type { WalletError } from "../errors.js"
import * as Wallet from "../Wallet.js"
import * as Config from "./Config.js"
import { explain, reportFailure } from "./internal/start-error.js"
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
    const config = yield* Config.resolve(settings)
    let started = false
    // finalizers run last-in first-out: this one runs after the node has closed (if it ever started)
    yield* Effect.addFinalizer(() =>
      started ? Console.log("SU stopped: requests in flight answered, schedulers and store closed") : Effect.void
    )
    const node = yield* Node.start(config)
    started = true
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
  }).pipe(
    Effect.scoped,
    // a node that cannot start says why in one line (the setting and its fix) and exits 1
    reportFailure((error) => `su: cannot start: ${explain(error, settings)}`)
  )

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

/** Runs a `wallet` command on the wallet file of `settings`, reporting a failure in one line (exit 1). */
const walletCommand = (
  name: string,
  settings: Pick<Config.Settings, "dataDir" | "wallet">,
  run: (path: string) => Effect.Effect<void, WalletError>
) =>
  run(Path.resolve(Config.walletPath(settings))).pipe(
    reportFailure((error) => `su wallet ${name}: ${explain(error, settings)}`)
  )

/**
 * `wallet create`: creates the wallet file (RSA-4096, mode 0600) and prints its path and address. Never
 * overwrites: an existing file is an error (exit 1).
 *
 * @since 0.1.0
 * @category constants
 */
export const walletCreate = Command.make("create", Config.walletOptions, (settings) =>
  walletCommand("create", settings, (path) =>
    Effect.gen(function* () {
      const wallet = yield* Effect.flatMap(Wallet.create(path), (jwk) => Wallet.make(jwk, path))
      yield* Console.log(`created ${path}\naddress ${wallet.address}`)
    })
  )
).pipe(Command.withDescription("Create the wallet file (mode 0600) and print its address; never overwrites one"))

/**
 * `wallet address`: prints the wallet's address. Never creates a key: a missing file is an error (exit 1).
 *
 * @since 0.1.0
 * @category constants
 */
export const walletAddress = Command.make("address", Config.walletOptions, (settings) =>
  walletCommand("address", settings, (path) =>
    Effect.flatMap(
      Effect.flatMap(Wallet.load(path), (jwk) => Wallet.make(jwk, path)),
      (wallet) => Console.log(wallet.address)
    )
  )
).pipe(Command.withDescription("Print the wallet's address (a missing file is an error, never created)"))

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
 * The root command `su`: without a subcommand it serves, with `serve`'s flags.
 *
 * @since 0.1.0
 * @category constants
 */
export const root = Command.make("su", Config.serveOptions, serveHandler).pipe(
  Command.withDescription("effect-scheduler-registry: an AO Scheduler Unit (legacy ao SU API, ao.TN.1)"),
  Command.withSubcommands([serve, wallet])
)

/**
 * Runs the CLI on `process.argv`-style arguments. Needs `NodeContext` (file system, terminal).
 *
 * @since 0.1.0
 * @category utils
 */
export const run = Command.run(root, { name: "effect-scheduler-registry SU", version })
