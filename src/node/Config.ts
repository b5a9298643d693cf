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
 * | `--signers` | `SU_SIGNERS` | one per core (0 on a single core); N > 0 signs on N threads (`SignerPool`), 0 in-line; at most 4 per core |
 * | `--identity` (repeatable) | `SU_IDENTITIES` (comma-separated) | — (further wallet files the node hosts processes for) |
 * | `--cluster` | `SU_CLUSTER` | false; true makes the node one runner of a cluster (needs `--store pg`) |
 * | `--pg-schema` | `SU_PG_SCHEMA` | public |
 * | `--runner-host` / `--runner-port` | `SU_RUNNER_HOST` / `SU_RUNNER_PORT` | localhost / 34431 |
 * | `--shards` | `SU_SHARDS` | 300 (every runner must agree) |
 * | `--shard-lock-expiration-ms` / `--shard-lock-refresh-ms` | `SU_SHARD_LOCK_EXPIRATION_MS` / `SU_SHARD_LOCK_REFRESH_MS` | 6000 / 2000 |
 * | `--max-page-bytes` | `SU_MAX_PAGE_BYTES` | 16777216 bytes (16 MiB) of stored entries per page; one entry at least |
 * | `--headers-timeout` / `--request-timeout` | `SU_HEADERS_TIMEOUT` / `SU_REQUEST_TIMEOUT` | 30000 / 120000 ms, then 408 (headers ≤ request) |
 * | `--log-format` | `SU_LOG_FORMAT` | pretty; or json (one JSON object a line) |
 * | `--location-ttl` | `SU_LOCATION_TTL` | 3600000 ms (the record's `Time-To-Live`; it is published again every half TTL) |
 * | `--strict-key-perms` | `SU_STRICT_KEY_PERMS` | false (a wallet file readable by group/others gets a warning); true refuses it |
 * | `--upload-url` | `SU_UPLOAD_URL`, else the legacy SU's `UPLOAD_NODE_URL` | — (no uploads; required by `--mode remote_confirmation`): the ANS-104 bundler every message and assignment is uploaded to (`POST {url}/tx/arweave`) |
 * | `--upload-concurrency` | `SU_UPLOAD_CONCURRENCY` | 8 uploads in flight |
 * | `--upload-timeout-ms` | `SU_UPLOAD_TIMEOUT_MS` | 30000 ms per upload attempt |
 *
 * `su export` and `su import` take the store flags (`storeOptions`: `--data-dir`, `--store`, `--pg-url`,
 * `--pg-schema`) plus their own `--process` / `--out` and `--in` (`Cli.ts`, docs/export-format.md).
 *
 * @since 0.1.0
 */
import * as Path from "node:path"
import { HelpDoc, ValidationError } from "@effect/cli"
import type { HttpServer } from "@effect/platform"
import { type Config, type ConfigError, Effect, Either, Layer } from "effect"

import type { Wallet } from "../Wallet.js"
import * as NetworkSettings from "./internal/network-settings.js"
import * as Setting from "./internal/setting.js"
import * as Specs from "./internal/settings.js"
import * as UploadSettings from "./internal/upload-settings.js"
import type { NodeConfig, StartError, StoreConfig } from "./Node.js"
import * as Node from "./Node.js"

/**
 * The default port, the legacy ao SU's (`servers/su/README.md`).
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_PORT = Specs.DEFAULT_PORT

/**
 * The default listening address: loopback only; pass `--host 0.0.0.0` to serve other machines.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_HOST = Specs.DEFAULT_HOST

/**
 * The default data directory (relative to the working directory).
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_DATA_DIR = Specs.DEFAULT_DATA_DIR

/**
 * The default idle time-to-live of a scheduler on the node, in ms: five minutes without a request and it
 * passivates, freeing its memory; the next request reactivates it from the store.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_IDLE_TTL_MS = Specs.DEFAULT_IDLE_TTL_MS

/**
 * The default `--gateway-url`: the node is online unless told otherwise.
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_GATEWAY_URL = Specs.DEFAULT_GATEWAY_URL

/**
 * The `--gateway-url` value that runs the node offline (no gateway).
 *
 * @since 0.2.0
 * @category constants
 */
export const OFFLINE = NetworkSettings.OFFLINE

/**
 * The `GatewayConfig` of a `--gateway-url` value: `none` is offline; an http(s) URL is online; anything else is
 * `undefined` (invalid).
 *
 * @since 0.2.0
 * @category utils
 */
export const gatewayOf = NetworkSettings.gatewayOf

/**
 * The location settings, checked: `--upload-url` an http(s) URL, `--public-url` a bare http(s) origin that
 * needs `--upload-url`. Gives `NodeConfig`'s `uploadUrl`, `publicUrl` and `locationTtlMs`, or the reason.
 *
 * @since 0.3.0
 * @category utils
 */
export const locationOf = NetworkSettings.locationOf

/**
 * The stores `--store` accepts.
 *
 * @since 0.1.0
 * @category constants
 */
export const STORES = Specs.STORES

/**
 * The modes `--mode` accepts (`Scheduler.Mode` without `disabled`, which would refuse every process).
 *
 * @since 0.1.0
 * @category constants
 */
export const MODES = Specs.MODES

/**
 * The formats `--log-format` accepts: `pretty` (Effect's `Logger.pretty`, colours on a terminal) or `json`
 * (`Logger.json`, one JSON object a line, for log collectors).
 *
 * @since 0.3.0
 * @category constants
 */
export const LOG_FORMATS = Specs.LOG_FORMATS

/**
 * The settings before derived defaults are filled in: what flags, environment and defaults give.
 * `wallet` and `pgUrl` are `undefined` when neither a flag nor the environment sets them.
 *
 * @since 0.1.0
 * @category models
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
  readonly maxPageBytes: number
  readonly headersTimeout: number
  readonly requestTimeout: number
  readonly logFormat: (typeof LOG_FORMATS)[number]
  readonly publicUrl: string | undefined
  readonly locationTtl: number
  readonly strictKeyPerms: boolean
  readonly uploadUrl: string | undefined
  readonly uploadConcurrency: number
  readonly uploadTimeoutMs: number
}

/**
 * The flags of `serve`, each falling back to its environment variable, then its default; `Command.make` turns
 * them into a `Settings` value.
 *
 * @since 0.1.0
 * @category options
 */
export const serveOptions = Setting.flags(Specs.settings)

/**
 * The flags of `location publish`: `--url` (the origin to publish), `--ttl` (its `Time-To-Live`, ms [3,600,000]),
 * and `--upload-url`, `--data-dir`, `--wallet` as for `serve`.
 *
 * @since 0.3.0
 * @category options
 */
export const publishOptions = {
  ...NetworkSettings.publishFlags,
  uploadUrl: Specs.bundlerUrl.flag,
  dataDir: serveOptions.dataDir,
  wallet: Specs.existingWallet.flag
}

/**
 * The flags of the `wallet` commands: `--data-dir` and `--wallet`, as for `serve` (`wallet address` needs the
 * file to exist; `wallet create` creates it).
 *
 * @since 0.1.0
 * @category options
 */
export const walletOptions = {
  dataDir: serveOptions.dataDir,
  wallet: Specs.existingWallet.flag
}

/**
 * The store flags, as for `serve`: `--data-dir`, `--store`, `--pg-url`, `--pg-schema`. Used by `su export` and
 * `su import`.
 *
 * @since 0.3.0
 * @category options
 */
export const storeOptions = {
  dataDir: serveOptions.dataDir,
  store: serveOptions.store,
  pgUrl: serveOptions.pgUrl,
  pgSchema: serveOptions.pgSchema
}

const NEEDS_PG_URL =
  "--store pg needs --pg-url (env SU_PG_URL): give the PostgreSQL connection string, e.g. " +
  "--pg-url postgres://user:password@127.0.0.1:5432/db, or use --store sqlite"
const CLUSTER_NEEDS_PG =
  "--cluster needs PostgreSQL: add --store pg and --pg-url (env SU_STORE=pg, SU_PG_URL), " +
  "or drop --cluster (SU_CLUSTER) to run one node on its own"

/**
 * The `StoreConfig` of the store flags: `<data-dir>/su.sqlite` for `sqlite`. Fails with a `ValidationError` when
 * `--store pg` has no `--pg-url` / `SU_PG_URL`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const resolveStore = (
  s: Pick<Settings, "dataDir" | "store" | "pgUrl" | "pgSchema">
): Either.Either<StoreConfig, ValidationError.ValidationError> => {
  switch (s.store) {
    case "sqlite":
      return Either.right({ kind: "sqlite", filename: Path.join(s.dataDir, "su.sqlite") })
    case "memory":
      return Either.right({ kind: "memory" })
    case "pg":
      return s.pgUrl === undefined
        ? Either.left(ValidationError.missingValue(HelpDoc.p(NEEDS_PG_URL)))
        : Either.right({ kind: "pg", url: s.pgUrl, schema: s.pgSchema })
  }
}

/**
 * The wallet file of `settings`: `--wallet`, else `<data-dir>/wallet.json`.
 *
 * @since 0.1.0
 * @category options
 */
export const walletPath = (s: Pick<Settings, "dataDir" | "wallet">): string =>
  s.wallet ?? Path.join(s.dataDir, "wallet.json")

/**
 * The settings from the environment alone, with defaults: for running a node without the CLI.
 * Fails with a `ConfigError` naming the variable that does not parse.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEnv: Config.Config<Settings> = Setting.env(Specs.settings)

const missing = (text: string) => Either.left(ValidationError.missingValue(HelpDoc.p(text)))

/**
 * Fills in derived defaults: the wallet file and the SQLite file under the data directory. Fails with a
 * `ValidationError` when `--store pg` has no `--pg-url` / `SU_PG_URL`, or `--headers-timeout` exceeds
 * `--request-timeout`. `logFormat` is the CLI's (`Cli.serve` installs the logger), not the node's.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (s: Settings): Either.Either<NodeConfig, ValidationError.ValidationError> => {
  const resolved = resolveStore(s)
  if (Either.isLeft(resolved)) return Either.left(resolved.left)
  const store = resolved.right
  const gateway = gatewayOf(s.gatewayUrl)
  if (gateway === undefined) {
    return Either.left(
      ValidationError.invalidValue(HelpDoc.p(`--gateway-url must be an http(s) URL or "none", got ${s.gatewayUrl}`))
    )
  }
  if (s.headersTimeout > s.requestTimeout) {
    return Either.left(
      ValidationError.invalidValue(
        HelpDoc.p(
          `--headers-timeout (${s.headersTimeout} ms) must not exceed --request-timeout (${s.requestTimeout} ms)`
        )
      )
    )
  }
  const location = locationOf(s)
  if (Either.isLeft(location)) return Either.left(ValidationError.invalidValue(HelpDoc.p(location.left)))
  const refused = UploadSettings.refusal(s)
  if (refused !== undefined) return Either.left(refused)
  if (s.cluster && store.kind !== "pg") {
    return missing(CLUSTER_NEEDS_PG)
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
    maxPageBytes: s.maxPageBytes,
    headersTimeoutMs: s.headersTimeout,
    requestTimeoutMs: s.requestTimeout,
    publicUrl: location.right.publicUrl,
    locationTtlMs: location.right.locationTtlMs,
    upload: UploadSettings.uploadConfig(s),
    cluster: s.cluster
      ? {
          runnerHost: s.runnerHost,
          runnerPort: s.runnerPort,
          shardsPerGroup: s.shards,
          shardLockExpirationMs: s.shardLockExpirationMs,
          shardLockRefreshIntervalMs: s.shardLockRefreshMs
        }
      : undefined,
    strictKeyPerms: s.strictKeyPerms
  })
}

/**
 * `fromEnv` resolved: a `NodeConfig` from the environment alone.
 *
 * @since 0.1.0
 * @category constructors
 */
export const nodeConfigFromEnv: Effect.Effect<NodeConfig, ConfigError.ConfigError | ValidationError.ValidationError> =
  Effect.flatMap(fromEnv, resolve)

/**
 * The node configured from the environment alone (`nodeConfigFromEnv`), as a Layer: `Node.layer`'s services,
 * for running a node inside an application without the CLI. Fails with `ConfigError` or `ValidationError` for a
 * setting that does not parse, or with `Node.StartError`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerNodeFromEnv: Layer.Layer<
  Wallet | HttpServer.HttpServer,
  StartError | ConfigError.ConfigError | ValidationError.ValidationError
> = Layer.unwrapEffect(Effect.map(nodeConfigFromEnv, Node.layer))
