/**
 * The node's configuration in one place: every setting's command-line flag, environment variable and default,
 * and how they resolve into a `NodeConfig`. A flag wins over its environment variable, which wins over the
 * default.
 *
 * | flag | env | default |
 * |---|---|---|
 * | `--port` | `SU_PORT` | 9000 (the legacy ao SU's port) |
 * | `--host` | `SU_HOST` | 127.0.0.1 |
 * | `--data-dir` | `SU_DATA_DIR` | ./data |
 * | `--wallet` | `SU_WALLET` | `<data-dir>/wallet.json` (created on first start) |
 * | `--store` | `SU_STORE` | sqlite (`<data-dir>/su.sqlite`); or pg, memory |
 * | `--pg-url` | `SU_PG_URL` | — (required with `--store pg`) |
 * | `--mode` | `SU_MODE` | local_confirmation; or aggressive, remote_confirmation |
 * | `--body-limit` | `SU_BODY_LIMIT` | 10485760 bytes (10 MiB) |
 * | `--block-height` | `SU_BLOCK_HEIGHT` | 0 (offline: the height stamped; online: the height until the gateway answers) |
 * | `--gateway-url` | `SU_GATEWAY_URL` | https://arweave.net; `none` = offline (no gateway: `--block-height` is stamped, only held messages can be assigned) |
 * | `--idle-ttl` | `SU_IDLE_TTL` | 300000 ms (an idle scheduler passivates; 0 = never) |
 * | `--otlp-url` | `SU_OTLP_URL` | — (export traces as OTLP/HTTP JSON to this URL) |
 * | `--signers` | `SU_SIGNERS` | 0 (sign in-line); N > 0 signs on N worker threads (`SignerPool`) |
 * | `--identity` (repeatable) | `SU_IDENTITIES` (comma-separated) | — (further wallet files the node hosts processes for) |
 * | `--cluster` | `SU_CLUSTER` | false; true makes the node one runner of a cluster (needs `--store pg`) |
 * | `--pg-schema` | `SU_PG_SCHEMA` | public |
 * | `--runner-host` / `--runner-port` | `SU_RUNNER_HOST` / `SU_RUNNER_PORT` | localhost / 34431 |
 * | `--shards` | `SU_SHARDS` | 300 (every runner must agree) |
 * | `--shard-lock-expiration-ms` / `--shard-lock-refresh-ms` | `SU_SHARD_LOCK_EXPIRATION_MS` / `SU_SHARD_LOCK_REFRESH_MS` | 35000 / 10000 |
 *
 * @since 0.1.0
 */
import * as Path from "node:path"
import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Config, type ConfigError, Effect, Either, Schema } from "effect"
import { DEFAULT_BODY_LIMIT } from "./Http.js"
import type { GatewayConfig, NodeConfig, StoreConfig } from "./Node.js"

/**
 * The default port, the legacy ao SU's (`servers/su/README.md`).
 *
 * @since 0.1.0
 */
export const DEFAULT_PORT = 9000

/**
 * The default listening address: loopback only; pass `--host 0.0.0.0` to serve other machines.
 *
 * @since 0.1.0
 */
export const DEFAULT_HOST = "127.0.0.1"

/**
 * The default data directory (relative to the working directory).
 *
 * @since 0.1.0
 */
export const DEFAULT_DATA_DIR = "./data"

/**
 * The default idle time-to-live of a scheduler on the node, in ms: five minutes without a request and it
 * passivates, freeing its memory; the next request reactivates it from the store.
 *
 * @since 0.1.0
 */
export const DEFAULT_IDLE_TTL_MS = 300_000

/**
 * The default `--gateway-url`: the node is online unless told otherwise.
 *
 * @since 0.2.0
 */
export const DEFAULT_GATEWAY_URL = "https://arweave.net"

/**
 * The `--gateway-url` value that runs the node offline (no gateway).
 *
 * @since 0.2.0
 */
export const OFFLINE = "none"

/**
 * The `GatewayConfig` of a `--gateway-url` value: `none` is offline; an http(s) URL is online; anything else is
 * `undefined` (invalid).
 *
 * @since 0.2.0
 */
export const gatewayOf = (value: string): GatewayConfig | undefined => {
  if (value === OFFLINE) return { kind: "offline" }
  try {
    const url = new URL(value)
    return url.protocol === "http:" || url.protocol === "https:" ? { kind: "online", url: value } : undefined
  } catch {
    return undefined
  }
}

/**
 * The stores `--store` accepts.
 *
 * @since 0.1.0
 */
export const STORES = ["sqlite", "pg", "memory"] as const

/**
 * The modes `--mode` accepts (`Scheduler.Mode` without `disabled`, which would refuse every process).
 *
 * @since 0.1.0
 */
export const MODES = ["local_confirmation", "aggressive", "remote_confirmation"] as const

/**
 * The settings before derived defaults are filled in: what flags, environment and defaults give.
 * `wallet` and `pgUrl` are `undefined` when neither a flag nor the environment sets them.
 *
 * @since 0.1.0
 */
export interface Settings {
  readonly port: number
  readonly host: string
  readonly dataDir: string
  readonly wallet: string | undefined
  readonly store: (typeof STORES)[number]
  readonly pgUrl: string | undefined
  readonly mode: (typeof MODES)[number]
  readonly bodyLimit: number
  readonly blockHeight: number
  readonly gatewayUrl: string
  readonly idleTtl: number
  readonly otlpUrl: string | undefined
  readonly signers: number
  readonly identities: ReadonlyArray<string>
  readonly cluster: boolean
  readonly pgSchema: string | undefined
  readonly runnerHost: string
  readonly runnerPort: number
  readonly shards: number
  readonly shardLockExpirationMs: number
  readonly shardLockRefreshMs: number
}

const Port = Schema.Int.pipe(Schema.between(0, 65535))
const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

/** One setting: its environment `Config` (with default) and its flag, which falls back to that `Config`. */
const setting = <A>(env: Config.Config<A>, flag: Options.Options<A>, description: string) => ({
  env,
  flag: flag.pipe(Options.withFallbackConfig(env), Options.withDescription(description))
})

const optionalSetting = <A>(env: Config.Config<A>, flag: Options.Options<A>, description: string) => ({
  env: Config.option(env),
  flag: flag.pipe(Options.withFallbackConfig(env), Options.optional, Options.withDescription(description))
})

/** `SU_IDENTITIES`: comma-separated wallet files; read by both the environment and the flag's fallback. */
const identitiesEnv = Config.array(Config.string(), "SU_IDENTITIES").pipe(Config.withDefault([] as Array<string>))

const settings = {
  port: setting(
    Config.integer("SU_PORT").pipe(Config.withDefault(DEFAULT_PORT)),
    Options.integer("port").pipe(Options.withSchema(Port)),
    `Port to listen on, 0 for any free port (env SU_PORT, default ${DEFAULT_PORT})`
  ),
  host: setting(
    Config.string("SU_HOST").pipe(Config.withDefault(DEFAULT_HOST)),
    Options.text("host"),
    `Address to listen on (env SU_HOST, default ${DEFAULT_HOST})`
  ),
  dataDir: setting(
    Config.string("SU_DATA_DIR").pipe(Config.withDefault(DEFAULT_DATA_DIR)),
    Options.directory("data-dir"),
    `Directory of the wallet and the SQLite store (env SU_DATA_DIR, default ${DEFAULT_DATA_DIR})`
  ),
  wallet: optionalSetting(
    Config.string("SU_WALLET"),
    Options.file("wallet"),
    "Arweave JWK key file, created if missing (env SU_WALLET, default <data-dir>/wallet.json)"
  ),
  store: setting(
    Config.literal(...STORES)("SU_STORE").pipe(Config.withDefault("sqlite" as const)),
    Options.choice("store", STORES),
    "Assignment store: sqlite (<data-dir>/su.sqlite), pg (needs --pg-url) or memory (env SU_STORE, default sqlite)"
  ),
  pgUrl: optionalSetting(
    Config.string("SU_PG_URL"),
    Options.text("pg-url"),
    "PostgreSQL connection string for --store pg, postgres://user:pass@host:port/db (env SU_PG_URL)"
  ),
  mode: setting(
    Config.literal(...MODES)("SU_MODE").pipe(Config.withDefault("local_confirmation" as const)),
    Options.choice("mode", MODES),
    "When POST / replies: local_confirmation (after the store write), aggressive (after signing) or " +
      "remote_confirmation (env SU_MODE, default local_confirmation)"
  ),
  bodyLimit: setting(
    Config.integer("SU_BODY_LIMIT").pipe(Config.withDefault(DEFAULT_BODY_LIMIT)),
    Options.integer("body-limit").pipe(Options.withSchema(PositiveInt)),
    `Largest request body in bytes; larger ones get 413 (env SU_BODY_LIMIT, default ${DEFAULT_BODY_LIMIT})`
  ),
  blockHeight: setting(
    Config.integer("SU_BLOCK_HEIGHT").pipe(Config.withDefault(0)),
    Options.integer("block-height").pipe(Options.withSchema(NonNegativeInt)),
    "Arweave block height stamped on assignments and /timestamp (env SU_BLOCK_HEIGHT, default 0)"
  ),
  gatewayUrl: setting(
    Config.string("SU_GATEWAY_URL").pipe(
      Config.validate({
        message: 'SU_GATEWAY_URL must be an http(s) URL or "none"',
        validation: (url) => gatewayOf(url) !== undefined
      }),
      Config.withDefault(DEFAULT_GATEWAY_URL)
    ),
    Options.text("gateway-url").pipe(
      Options.withSchema(
        Schema.String.pipe(
          Schema.filter((url) => gatewayOf(url) !== undefined || `expected an http(s) URL or "none", got ${url}`)
        )
      )
    ),
    "Arweave gateway for the block height/hash (GET /block/current every 15 s) and to verify assigned " +
      `transactions (GraphQL, /tx/{id}/status); "none" runs offline, stamping --block-height (env SU_GATEWAY_URL, default ${DEFAULT_GATEWAY_URL})`
  ),
  idleTtl: setting(
    Config.integer("SU_IDLE_TTL").pipe(Config.withDefault(DEFAULT_IDLE_TTL_MS)),
    Options.integer("idle-ttl").pipe(Options.withSchema(NonNegativeInt)),
    `ms without a request before a scheduler passivates; 0 = never (env SU_IDLE_TTL, default ${DEFAULT_IDLE_TTL_MS})`
  ),
  otlpUrl: optionalSetting(
    Config.string("SU_OTLP_URL"),
    Options.text("otlp-url"),
    "Export traces as OTLP/HTTP JSON to this URL, e.g. http://127.0.0.1:4318/v1/traces (env SU_OTLP_URL)"
  ),
  signers: setting(
    Config.integer("SU_SIGNERS").pipe(Config.withDefault(0)),
    Options.integer("signers").pipe(Options.withSchema(NonNegativeInt)),
    "Worker threads that sign assignments, so several processes sign on several cores; 0 signs in-line " +
      "(env SU_SIGNERS, default 0)"
  ),
  identities: {
    env: identitiesEnv,
    // repeated flags, else the environment: `repeated` gives [] when absent, so the fallback is explicit
    flag: Options.file("identity").pipe(
      Options.repeated,
      Options.mapEffect((paths) =>
        paths.length > 0
          ? Effect.succeed(paths)
          : Effect.mapError(identitiesEnv, (e) => ValidationError.invalidValue(HelpDoc.p(String(e))))
      ),
      Options.withDescription(
        "A further wallet (JWK file, created if missing): processes whose Scheduler tag names it are hosted here " +
          "and signed by it; repeat for more (env SU_IDENTITIES, comma-separated)"
      )
    )
  },
  cluster: setting(
    Config.boolean("SU_CLUSTER").pipe(Config.withDefault(false)),
    Options.boolean("cluster"),
    "Run as one runner of a scheduler cluster over PostgreSQL (needs --store pg) (env SU_CLUSTER, default false)"
  ),
  pgSchema: optionalSetting(
    Config.string("SU_PG_SCHEMA"),
    Options.text("pg-schema"),
    "PostgreSQL schema of the tables (env SU_PG_SCHEMA, default public)"
  ),
  runnerHost: setting(
    Config.string("SU_RUNNER_HOST").pipe(Config.withDefault("localhost")),
    Options.text("runner-host"),
    "Where other runners reach this one (env SU_RUNNER_HOST, default localhost)"
  ),
  runnerPort: setting(
    Config.integer("SU_RUNNER_PORT").pipe(Config.withDefault(34431)),
    Options.integer("runner-port").pipe(Options.withSchema(Port)),
    "The runner's port for other runners (env SU_RUNNER_PORT, default 34431)"
  ),
  shards: setting(
    Config.integer("SU_SHARDS").pipe(Config.withDefault(300)),
    Options.integer("shards").pipe(Options.withSchema(PositiveInt)),
    "Shards of the cluster; every runner must agree (env SU_SHARDS, default 300)"
  ),
  shardLockExpirationMs: setting(
    Config.integer("SU_SHARD_LOCK_EXPIRATION_MS").pipe(Config.withDefault(35_000)),
    Options.integer("shard-lock-expiration-ms").pipe(Options.withSchema(PositiveInt)),
    "ms after its last refresh before a runner's shards may move (env SU_SHARD_LOCK_EXPIRATION_MS, default 35000)"
  ),
  shardLockRefreshMs: setting(
    Config.integer("SU_SHARD_LOCK_REFRESH_MS").pipe(Config.withDefault(10_000)),
    Options.integer("shard-lock-refresh-ms").pipe(Options.withSchema(PositiveInt)),
    "ms between shard-lock refreshes (env SU_SHARD_LOCK_REFRESH_MS, default 10000)"
  )
}

const optionalFlag = <A>(flag: Options.Options<{ _tag: "Some"; value: A } | { _tag: "None" }>) =>
  Options.map(flag, (o): A | undefined => (o._tag === "Some" ? o.value : undefined))

/**
 * The flags of `serve`, each falling back to its environment variable, then its default; `Command.make` turns
 * them into a `Settings` value.
 *
 * @since 0.1.0
 */
export const serveOptions = {
  port: settings.port.flag,
  host: settings.host.flag,
  dataDir: settings.dataDir.flag,
  wallet: optionalFlag(settings.wallet.flag),
  store: settings.store.flag,
  pgUrl: optionalFlag(settings.pgUrl.flag),
  mode: settings.mode.flag,
  bodyLimit: settings.bodyLimit.flag,
  blockHeight: settings.blockHeight.flag,
  gatewayUrl: settings.gatewayUrl.flag,
  idleTtl: settings.idleTtl.flag,
  otlpUrl: optionalFlag(settings.otlpUrl.flag),
  signers: settings.signers.flag,
  identities: settings.identities.flag,
  cluster: settings.cluster.flag,
  pgSchema: optionalFlag(settings.pgSchema.flag),
  runnerHost: settings.runnerHost.flag,
  runnerPort: settings.runnerPort.flag,
  shards: settings.shards.flag,
  shardLockExpirationMs: settings.shardLockExpirationMs.flag,
  shardLockRefreshMs: settings.shardLockRefreshMs.flag
} satisfies { readonly [K in keyof Settings]: Options.Options<Settings[K]> }

/**
 * The flags of the `wallet` commands: `--data-dir` and `--wallet`, as for `serve`.
 *
 * @since 0.1.0
 */
export const walletOptions = {
  dataDir: serveOptions.dataDir,
  wallet: serveOptions.wallet
}

/**
 * The wallet file of `settings`: `--wallet`, else `<data-dir>/wallet.json`.
 *
 * @since 0.1.0
 */
export const walletPath = (s: Pick<Settings, "dataDir" | "wallet">): string =>
  s.wallet ?? Path.join(s.dataDir, "wallet.json")

/**
 * The settings from the environment alone, with defaults: for running a node without the CLI.
 * Fails with a `ConfigError` naming the variable that does not parse.
 *
 * @since 0.1.0
 */
export const fromEnv: Config.Config<Settings> = Config.all({
  port: Config.validate(settings.port.env, { message: "SU_PORT must be 0–65535", validation: Schema.is(Port) }),
  host: settings.host.env,
  dataDir: settings.dataDir.env,
  wallet: Config.map(settings.wallet.env, (o) => (o._tag === "Some" ? o.value : undefined)),
  store: settings.store.env,
  pgUrl: Config.map(settings.pgUrl.env, (o) => (o._tag === "Some" ? o.value : undefined)),
  mode: settings.mode.env,
  bodyLimit: Config.validate(settings.bodyLimit.env, {
    message: "SU_BODY_LIMIT must be a positive integer",
    validation: Schema.is(PositiveInt)
  }),
  blockHeight: Config.validate(settings.blockHeight.env, {
    message: "SU_BLOCK_HEIGHT must be a non-negative integer",
    validation: Schema.is(NonNegativeInt)
  }),
  gatewayUrl: settings.gatewayUrl.env,
  idleTtl: Config.validate(settings.idleTtl.env, {
    message: "SU_IDLE_TTL must be a non-negative integer (ms)",
    validation: Schema.is(NonNegativeInt)
  }),
  otlpUrl: Config.map(settings.otlpUrl.env, (o) => (o._tag === "Some" ? o.value : undefined)),
  signers: Config.validate(settings.signers.env, {
    message: "SU_SIGNERS must be a non-negative integer",
    validation: Schema.is(NonNegativeInt)
  }),
  identities: settings.identities.env,
  cluster: settings.cluster.env,
  pgSchema: Config.map(settings.pgSchema.env, (o) => (o._tag === "Some" ? o.value : undefined)),
  runnerHost: settings.runnerHost.env,
  runnerPort: settings.runnerPort.env,
  shards: settings.shards.env,
  shardLockExpirationMs: settings.shardLockExpirationMs.env,
  shardLockRefreshMs: settings.shardLockRefreshMs.env
})

/**
 * Fills in derived defaults: the wallet file and the SQLite file under the data directory. Fails with a
 * `ValidationError` when `--store pg` has no `--pg-url` / `SU_PG_URL`.
 *
 * @since 0.1.0
 */
export const resolve = (s: Settings): Either.Either<NodeConfig, ValidationError.ValidationError> => {
  let store: StoreConfig
  switch (s.store) {
    case "sqlite":
      store = { kind: "sqlite", filename: Path.join(s.dataDir, "su.sqlite") }
      break
    case "memory":
      store = { kind: "memory" }
      break
    case "pg":
      if (s.pgUrl === undefined) {
        return Either.left(ValidationError.missingValue(HelpDoc.p("--store pg needs --pg-url or SU_PG_URL")))
      }
      store = { kind: "pg", url: s.pgUrl, schema: s.pgSchema }
      break
  }
  const gateway = gatewayOf(s.gatewayUrl)
  if (gateway === undefined) {
    return Either.left(
      ValidationError.invalidValue(HelpDoc.p(`--gateway-url must be an http(s) URL or "none", got ${s.gatewayUrl}`))
    )
  }
  if (s.cluster && store.kind !== "pg") {
    return Either.left(ValidationError.missingValue(HelpDoc.p("--cluster needs --store pg and --pg-url")))
  }
  return Either.right({
    port: s.port,
    host: s.host,
    dataDir: s.dataDir,
    walletPath: walletPath(s),
    store,
    mode: s.mode,
    bodyLimit: s.bodyLimit,
    blockHeight: s.blockHeight,
    gateway,
    idleTimeToLiveMs: s.idleTtl === 0 ? undefined : s.idleTtl,
    otlpUrl: s.otlpUrl,
    signers: s.signers,
    identityPaths: s.identities,
    cluster: s.cluster
      ? {
          runnerHost: s.runnerHost,
          runnerPort: s.runnerPort,
          shardsPerGroup: s.shards,
          shardLockExpirationMs: s.shardLockExpirationMs,
          shardLockRefreshIntervalMs: s.shardLockRefreshMs
        }
      : undefined
  })
}

/**
 * `fromEnv` resolved: a `NodeConfig` from the environment alone.
 *
 * @since 0.1.0
 */
export const nodeConfigFromEnv: Effect.Effect<NodeConfig, ConfigError.ConfigError | ValidationError.ValidationError> =
  Effect.flatMap(fromEnv, resolve)
