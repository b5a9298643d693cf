/**
 * The spec of every `serve` setting (`Config.ts` is the public face): its flag, its environment variable, its
 * default and its rule, one `internal/setting.ts` spec each, from which both the flags and `Config.fromEnv` are
 * made. The defaults are here so that this module needs nothing of `Config.ts` but its `Settings` type.
 */
import * as Os from "node:os"
import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Config, Effect, Schema } from "effect"
import type { Settings } from "../Config.js"
import { DEFAULT_BODY_LIMIT, DEFAULT_MAX_PAGE_BYTES } from "../Http.js"
import * as Node from "../Node.js"
import { defaultSize as defaultSignerThreads } from "../SignerPool.js"
import * as NetworkSettings from "./network-settings.js"
import * as Setting from "./setting.js"
import * as UploadSettings from "./upload-settings.js"

export const DEFAULT_PORT = 9000
export const DEFAULT_HOST = "127.0.0.1"
export const DEFAULT_DATA_DIR = "./data"
export const DEFAULT_IDLE_TTL_MS = 300_000
export const DEFAULT_GATEWAY_URL = "https://arweave.net"
export const STORES = ["sqlite", "pg", "memory"] as const
export const MODES = ["local_confirmation", "aggressive", "remote_confirmation"] as const
export const LOG_FORMATS = ["pretty", "json"] as const

const Port = Schema.Int.pipe(Schema.between(0, 65535))
const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

/** At most 4 signer threads per core: more only adds memory (about 5–15 MB each), and a typo could exhaust it. */
const MAX_SIGNER_THREADS = 4 * Os.availableParallelism()
const SignerThreads = NonNegativeInt.pipe(Schema.lessThanOrEqualTo(MAX_SIGNER_THREADS))

/** `SU_IDENTITIES`: comma-separated wallet files; read by both the environment and the flag's fallback. */
const identitiesEnv = Config.array(Config.string(), "SU_IDENTITIES").pipe(Config.withDefault([] as Array<string>))

/**
 * Every setting, one spec each (`internal/setting.ts`): its flag, its environment variable, its default and its
 * rule, from which both the `serve` flags and `fromEnv` are made.
 */
export const settings = {
  port: Setting.integer({
    flag: "port",
    env: "SU_PORT",
    rule: Port,
    what: "0–65535",
    default: DEFAULT_PORT,
    text: "HTTP port to listen on; 0 picks a free port"
  }),
  host: Setting.text({ flag: "host", env: "SU_HOST", default: DEFAULT_HOST, text: "Address to listen on" }),
  dataDir: Setting.text({
    flag: "data-dir",
    env: "SU_DATA_DIR",
    default: DEFAULT_DATA_DIR,
    kind: "directory",
    text: "Directory of the wallet and the SQLite store"
  }),
  wallet: Setting.optionalText({
    flag: "wallet",
    env: "SU_WALLET",
    kind: "file",
    shown: "<data-dir>/wallet.json",
    text: "Arweave JWK key file, created if missing"
  }),
  store: Setting.choice({
    flag: "store",
    env: "SU_STORE",
    choices: STORES,
    default: "sqlite",
    text: "Assignment store: sqlite (<data-dir>/su.sqlite), pg (needs --pg-url) or memory"
  }),
  pgUrl: Setting.optionalText({
    flag: "pg-url",
    env: "SU_PG_URL",
    text: "PostgreSQL connection string for --store pg, postgres://user:pass@host:port/db"
  }),
  mode: Setting.choice({
    flag: "mode",
    env: "SU_MODE",
    choices: MODES,
    default: "local_confirmation",
    text:
      "When POST / replies: local_confirmation (after the store write), aggressive (after signing) or " +
      "remote_confirmation (after the bundler acknowledged the message and its assignment; needs --upload-url)"
  }),
  bodyLimit: Setting.integer({
    flag: "body-limit",
    env: "SU_BODY_LIMIT",
    rule: PositiveInt,
    what: "a positive integer",
    default: DEFAULT_BODY_LIMIT,
    text: "Largest request body in bytes; larger ones get 413"
  }),
  blockHeight: Setting.integer({
    flag: "block-height",
    env: "SU_BLOCK_HEIGHT",
    rule: NonNegativeInt,
    what: "a non-negative integer",
    default: 0,
    text: "Arweave block height stamped on assignments and /timestamp"
  }),
  gatewayUrl: (() => {
    const rule = Schema.String.pipe(
      Schema.filter(
        (url) => NetworkSettings.gatewayOf(url) !== undefined || `expected an http(s) URL or "none", got ${url}`
      )
    )
    const env = Config.string("SU_GATEWAY_URL").pipe(
      Config.withDefault(DEFAULT_GATEWAY_URL),
      Config.validate({ message: 'SU_GATEWAY_URL must be an http(s) URL or "none"', validation: Schema.is(rule) })
    )
    return {
      env,
      flag: Options.text("gateway-url").pipe(
        Options.mapEffect(Setting.ruled("gateway-url", rule, 'an http(s) URL or "none"')),
        Options.withFallbackConfig(env),
        Options.withDescription(
          "Arweave gateway for the block height/hash (GET /block/current every 15 s) and to verify assigned " +
            `transactions (GraphQL, /tx/{id}/status); "none" runs offline, stamping --block-height (env SU_GATEWAY_URL, default ${DEFAULT_GATEWAY_URL})`
        )
      )
    } satisfies Setting.Setting<string>
  })(),
  idleTtl: Setting.integer({
    flag: "idle-ttl",
    env: "SU_IDLE_TTL",
    rule: NonNegativeInt,
    what: "a non-negative integer (ms)",
    default: DEFAULT_IDLE_TTL_MS,
    text: "ms without a request before a scheduler passivates; 0 = never"
  }),
  otlpUrl: Setting.optionalText({
    flag: "otlp-url",
    env: "SU_OTLP_URL",
    text: "Export traces as OTLP/HTTP JSON to this URL, e.g. http://127.0.0.1:4318/v1/traces"
  }),
  signers: Setting.integer({
    flag: "signers",
    env: "SU_SIGNERS",
    rule: SignerThreads,
    what: `an integer from 0 to ${MAX_SIGNER_THREADS} (4 per core)`,
    default: defaultSignerThreads(),
    text: "Threads that sign assignments, one run of a process's messages at a time (default: one per core, 0 on one core); 0 signs in-line on the main thread"
  }),
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
  } satisfies Setting.Setting<ReadonlyArray<string>>,
  cluster: Setting.boolean({
    flag: "cluster",
    env: "SU_CLUSTER",
    text: "Run as one runner of a scheduler cluster over PostgreSQL (needs --store pg)"
  }),
  pgSchema: Setting.optionalText({
    flag: "pg-schema",
    env: "SU_PG_SCHEMA",
    shown: "public",
    text: "PostgreSQL schema of the tables"
  }),
  runnerHost: Setting.text({
    flag: "runner-host",
    env: "SU_RUNNER_HOST",
    default: "localhost",
    text: "Where other runners reach this one"
  }),
  runnerPort: Setting.integer({
    flag: "runner-port",
    env: "SU_RUNNER_PORT",
    rule: Port,
    what: "0–65535",
    default: 34431,
    text: "The runner's port for other runners"
  }),
  shards: Setting.integer({
    flag: "shards",
    env: "SU_SHARDS",
    rule: PositiveInt,
    what: "a positive integer",
    default: 300,
    text: "Shards of the cluster; every runner must agree"
  }),
  shardLockExpirationMs: Setting.integer({
    flag: "shard-lock-expiration-ms",
    env: "SU_SHARD_LOCK_EXPIRATION_MS",
    rule: PositiveInt,
    what: "a positive integer (ms)",
    default: 6_000,
    text: "ms after its last refresh before a runner's shards may move"
  }),
  shardLockRefreshMs: Setting.integer({
    flag: "shard-lock-refresh-ms",
    env: "SU_SHARD_LOCK_REFRESH_MS",
    rule: PositiveInt,
    what: "a positive integer (ms)",
    default: 2_000,
    text: "ms between shard-lock refreshes"
  }),
  maxPageBytes: Setting.integer({
    flag: "max-page-bytes",
    env: "SU_MAX_PAGE_BYTES",
    rule: PositiveInt,
    what: "a positive integer (bytes)",
    default: DEFAULT_MAX_PAGE_BYTES,
    text: "Most bytes of stored entries in one page of GET /{process} or ~scheduler@1.0/schedule; a larger entry comes alone"
  }),
  headersTimeout: Setting.integer({
    flag: "headers-timeout",
    env: "SU_HEADERS_TIMEOUT",
    rule: PositiveInt,
    what: "a positive integer (ms)",
    default: Node.DEFAULT_HEADERS_TIMEOUT_MS,
    text: "ms for a request's headers to arrive, then 408 and the connection is closed"
  }),
  requestTimeout: Setting.integer({
    flag: "request-timeout",
    env: "SU_REQUEST_TIMEOUT",
    rule: PositiveInt,
    what: "a positive integer (ms)",
    default: Node.DEFAULT_REQUEST_TIMEOUT_MS,
    text: "ms for a whole request, body included, to arrive, then 408; at least --headers-timeout"
  }),
  logFormat: Setting.choice({
    flag: "log-format",
    env: "SU_LOG_FORMAT",
    choices: LOG_FORMATS,
    default: "pretty",
    text: "Log lines (the access log included): pretty, or json (one object a line)"
  }),
  publicUrl: NetworkSettings.publicUrl,
  locationTtl: NetworkSettings.locationTtl,
  strictKeyPerms: Setting.boolean({
    flag: "strict-key-perms",
    env: "SU_STRICT_KEY_PERMS",
    text: "Refuse a wallet file that its group or others may read (chmod 600 fixes it) instead of warning"
  }),
  ...UploadSettings.settings
} satisfies { readonly [K in keyof Settings]: Setting.Setting<Settings[K]> }

/** `--wallet` for the commands that read a key and never create one (`wallet address`, `location publish`). */
export const existingWallet = Setting.optionalText({
  flag: "wallet",
  env: "SU_WALLET",
  kind: "file",
  shown: "<data-dir>/wallet.json",
  text: "Arweave JWK key file (wallet create makes it; the other commands need it to exist)"
})

/** `--upload-url` for `location publish`: the bundler the record is uploaded to. */
export const bundlerUrl = Setting.optionalText({
  flag: "upload-url",
  env: "SU_UPLOAD_URL",
  legacyEnv: "UPLOAD_NODE_URL",
  text: "ANS-104 bundler the Scheduler-Location record is uploaded to (POST {url}/tx/arweave)"
})
