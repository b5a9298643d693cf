/**
 * The `su` command line (`@effect/cli`): `serve` (the default) runs a node; `wallet create` and
 * `wallet address` manage its key file; `location publish` uploads its Scheduler-Location record; `export` and
 * `import` move schedules between stores; `outbox status` and `outbox redrive` report and re-drive the store's
 * upload outbox (all since 0.3.0, none starts the server). `--help` and `--version` work on every command. A
 * command that cannot start (an invalid setting, a busy port, a store held by another node, a bad key file…)
 * prints one line naming the setting and its fix and exits 1; `--log-level debug` also logs the whole cause.
 *
 * Mirrors the legacy ao SU binary (`./su su <port>`) with the settings of `Config.ts` (flags, `SU_*`
 * environment variables, defaults).
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Command, Options } from "@effect/cli"
import { FetchHttpClient } from "@effect/platform"
import { Console, Effect, Logger } from "effect"
import { WalletError } from "../errors.js"
import * as Location from "../network/Location.js"
import * as Wallet from "../Wallet.js"
import * as Config from "./Config.js"
import * as OutboxCli from "./internal/outbox-cli.js"
import { explain, reportFailure } from "./internal/start-error.js"
import * as Transfer from "./internal/transfer.js"
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
    Effect.provide(settings.logFormat === "json" ? Logger.json : Logger.pretty),
    // a node that cannot start says why in one line (the setting and its fix) and exits 1
    reportFailure((error) => `su: cannot start: ${explain(error, settings)}`)
  )

/**
 * `serve`: runs a node until SIGINT/SIGTERM, then shuts down gracefully. Prints the URL, the wallet address and
 * the data paths once listening. Its logs, the access log included, go through `Logger.pretty` or, with
 * `--log-format json`, `Logger.json` (one JSON object a line).
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

/** The wallet file of `settings`, which must exist: publishing never creates a key. */
const existingWallet = (settings: Pick<Config.Settings, "dataDir" | "wallet">) =>
  Effect.gen(function* () {
    const path = Path.resolve(Config.walletPath(settings))
    if (!Fs.existsSync(path)) {
      return yield* new WalletError({ path, reason: "no such file (create one with `su wallet create`)" })
    }
    const { jwk } = yield* Wallet.loadOrCreate(path)
    return yield* Wallet.make(jwk, path)
  })

/**
 * `location publish --url … [--ttl …]`: signs the Scheduler-Location record with the node's wallet (which must
 * exist) and uploads it to `--upload-url`, without starting the server; prints the record's id. Fails with
 * `WalletError`, `InvalidLocation` or `PublishFailed`.
 *
 * @since 0.3.0
 * @category constants
 */
export const locationPublish = Command.make("publish", Config.publishOptions, (settings) =>
  Effect.gen(function* () {
    const wallet = yield* existingWallet(settings)
    const location = yield* Location.make({ uploadUrl: settings.uploadUrl }).pipe(
      Effect.provideService(Wallet.Wallet, wallet),
      Effect.provide(FetchHttpClient.layer)
    )
    const published = yield* location.publish(settings.url, settings.ttl)
    yield* Console.log(
      `published ${published.id}\naddress   ${published.address}\nurl       ${published.url}\nttl       ${published.ttlMs} ms`
    )
  }).pipe(
    // one readable line and exit code 1, not an error dump
    Effect.catchAll((error) =>
      Effect.zipRight(
        Console.error(`su location publish: ${error.message}`),
        Effect.sync(() => {
          process.exitCode = 1
        })
      )
    )
  )
).pipe(Command.withDescription("Sign and upload this SU's Scheduler-Location record (the server is not started)"))

/**
 * `location`: the Scheduler-Location subcommands.
 *
 * @since 0.3.0
 * @category constants
 */
export const location = Command.make("location").pipe(
  Command.withDescription("Publish where clients find this SU (its Scheduler-Location record)"),
  Command.withSubcommands([locationPublish])
)

/**
 * `export`: writes the schedules of the store (`--data-dir`, `--store`, `--pg-url`, `--pg-schema`, as for
 * `serve`) as NDJSON (docs/export-format.md) to `--out FILE` or standard output (`--out -`, the default): every
 * process, or only `--process P`. Does not start the HTTP server. A failure (`UnknownProcess`, `InvalidProcessId`,
 * `StoreError`, a file error) is printed as one line on standard error and exits 1.
 *
 * @since 0.3.0
 * @category constants
 */
export const exportSchedules = Command.make(
  "export",
  {
    ...Config.storeOptions,
    process: Options.text("process").pipe(
      Options.optional,
      Options.withDescription("Export only this process (43-character id); every process by default")
    ),
    out: Options.text("out").pipe(
      Options.withDefault(Transfer.STDIO),
      Options.withDescription("File to write the NDJSON export to; - (the default) is standard output")
    )
  },
  (settings) =>
    Effect.flatMap(Config.resolveStore(settings), (store) =>
      Transfer.reportFailure("export")(Transfer.exportTo(store, settings))
    )
).pipe(Command.withDescription("Export the store's schedules as NDJSON (a backup, or a move to another store)"))

/**
 * `import`: reads an NDJSON export (docs/export-format.md) from `--in FILE` or standard input (`--in -`, the
 * default) into the store (the flags of `serve`). Verifies every row (hash chain from slot 0, signatures) before
 * it writes it; refuses a gap, a fork or a bad row with one line on standard error naming the process and slot,
 * or the line, and exits 1. Re-running after an interruption resumes. Does not start the HTTP server.
 *
 * @since 0.3.0
 * @category constants
 */
export const importSchedules = Command.make(
  "import",
  {
    ...Config.storeOptions,
    in: Options.text("in").pipe(
      Options.withDefault(Transfer.STDIO),
      Options.withDescription("NDJSON export to read; - (the default) is standard input")
    )
  },
  (settings) =>
    Effect.flatMap(Config.resolveStore(settings), (store) =>
      Transfer.reportFailure("import")(Transfer.importFrom(store, settings))
    )
).pipe(Command.withDescription("Import an NDJSON export into the store, verifying every row; resumable"))

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
  Command.withSubcommands([serve, wallet, location, exportSchedules, importSchedules, outbox])
)

/**
 * Runs the CLI on `process.argv`-style arguments. Needs `NodeContext` (file system, terminal).
 *
 * @since 0.1.0
 * @category utils
 */
export const run = Command.run(root, { name: "effect-scheduler-registry SU", version })
