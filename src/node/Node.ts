/**
 * The SU node: wallet, assignment store, name service, scheduler registry and HTTP server, assembled from a
 * `NodeConfig` and run until its scope closes.
 *
 * Mirrors the legacy ao SU binary (`./su su <port>`: `SU_WALLET_PATH`, `DATABASE_URL` / `SU_DATA_DIR`,
 * port 9000; `docs/behaviours.md` §4.1). Shutdown is graceful and ordered: the server stops taking requests (late ones,
 * on new or kept-alive connections, get 503 with `connection: close`, then their client's next connection is
 * refused, never reset; docs/http.md "Shutdown") and waits for those in flight (at most `shutdownGraceMs`, then
 * open connections are closed), then the registry interrupts its schedulers (each finishes the assignment it is
 * writing), then the store closes.
 *
 * Size: about 447 lines, of which about 235 are code; the rest is the docstrings and `@example`s every
 * export carries. The code alone stays under 300 lines, so the module is kept whole.
 *
 * @since 0.1.0
 */
import * as Path from "node:path"
import type { HttpServerError, SocketServer } from "@effect/platform"
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { ConfigError, Context, Effect, Layer, Option, type Scope } from "effect"
import * as AssignmentStore from "../AssignmentStore.js"
import type * as ClusterNode from "../cluster/ClusterNode.js"
import type { SignerPoolError, StoreError, StoreLocked, WalletError } from "../errors.js"
import * as NameService from "../NameService.js"
import * as Gateway from "../network/Gateway.js"
import * as Location from "../network/Location.js"
import * as Uploader from "../network/Uploader.js"
import type { Mode } from "../Scheduler.js"
import * as SchedulerRegistry from "../SchedulerRegistry.js"
import type * as StoreLock from "../StoreLock.js"
import * as Wallet from "../Wallet.js"
import * as Http from "./Http.js"
import * as Server from "./internal/http/server.js"
import { importPeer } from "./internal/peer.js"
import * as SignerPool from "./SignerPool.js"

/**
 * Where assignments are stored:
 * - `sqlite`: the SQLite file `filename` (WAL, `synchronous = FULL`);
 * - `pg`: PostgreSQL at `url` (`postgres://…`), tables in `schema` (default `public`);
 * - `memory`: in memory; nothing survives a restart (tests, demos).
 *
 * @since 0.1.0
 * @category models
 */
export type StoreConfig =
  | { readonly kind: "sqlite"; readonly filename: string }
  | { readonly kind: "pg"; readonly url: string; readonly schema?: string | undefined }
  | { readonly kind: "memory" }

/**
 * Where the node learns the current Arweave block and verifies assigned transactions (`Gateway`):
 * - `online`: the gateway at `url` (`https://arweave.net` by default from the CLI); the height starts at the
 *   store's highest `Block-Height` or `NodeConfig.blockHeight`, whichever is higher, and follows the gateway;
 * - `offline` (`--gateway-url none`): no network; `NodeConfig.blockHeight` is stamped and only messages the node
 *   holds can be assigned.
 *
 * @since 0.2.0
 * @category models
 */
export type GatewayConfig = { readonly kind: "online"; readonly url: string } | { readonly kind: "offline" }

/**
 * Where the node uploads what it schedules (`Uploader`): the ANS-104 bundler at `url` (`POST {url}/tx/arweave`),
 * `concurrency` uploads in flight [8], `timeoutMs` per attempt [30,000 ms]. Every scheduled message's data item
 * and every assignment go through the store's outbox, in every mode.
 *
 * @since 0.3.0
 * @category models
 */
export interface UploadConfig {
  readonly url: string
  readonly concurrency?: number | undefined
  readonly timeoutMs?: number | undefined
}

/**
 * A resolved node configuration (see `Config.ts` for flags, environment variables and defaults).
 *
 * - `port` (0 = any free port) and `host`: where the HTTP server listens.
 * - `dataDir`: the node's directory; `walletPath`: its JWK key file, created on first start if missing.
 * - `store`: see `StoreConfig`. `mode`: when `POST /` replies (`Scheduler.Mode`).
 * - `bodyLimit`: the largest request body, in bytes. `blockHeight`: the block height stamped on assignments
 *   offline, and the floor until the gateway answers online.
 * - `gateway` (since 0.2.0): see `GatewayConfig`.
 * - `shutdownGraceMs` [10,000]: how long shutdown waits for in-flight requests and kept-alive connections before
 *   closing every connection (the drain's 500 ms quiet period is at most this).
 *   Meanwhile every new request, on a new or a kept-alive connection, gets 503 with `connection: close`.
 * - `headersTimeoutMs` [30,000] and `requestTimeoutMs` [120,000] (since 0.3.0): a request whose headers, or
 *   whose whole body, have not arrived within them gets 408 and its connection is closed (Node's
 *   `http.Server` `headersTimeout` and `requestTimeout`); the first must not exceed the second.
 * - `maxPageBytes` [16 MiB] (since 0.3.0): the most bytes of stored entries one page holds (`Http.Options`).
 * - `idleTimeToLiveMs` [off]: ms without a request before a scheduler passivates (the CLI's default is 300,000).
 * - `otlpUrl` [off]: export traces as OTLP/HTTP JSON to this URL (`Tracing.layerOtlp`).
 * - `signers` [`SignerPool.defaultSize()`: one per core, 0 on one core]: signer threads (`SignerPool`); 0 signs
 *   in-line on the main thread.
 * - `identityPaths` [none]: further wallet files (created if missing); a process whose `Scheduler` tag names
 *   one of them is hosted here and signed by it.
 * - `cluster` [off]: run as one runner of a scheduler cluster (`ClusterNode.layerClusterNode`); needs a `pg`
 *   store, whose database also holds the shard locks.
 * - `publicUrl` [none] (since 0.3.0): this SU's public origin, published as the Scheduler-Location of each of its
 *   identities on start and every half `locationTtlMs` [3,600,000 ms] (`Location.keepPublished`); needs
 *   `upload`. A request for a process another SU schedules is redirected (307) to that SU's published location
 *   whenever the gateway is online; a redirect back to `publicUrl` is a loop (508).
 * - `strictKeyPerms` [false] (since 0.3.0): refuse a wallet file its group or others may read, instead of
 *   warning (`Wallet.checkPermissions`).
 *
 * Outside a cluster the node holds its store's writer lock for its life (`layerStoreLock`): a second node on
 * the same SQLite file or PostgreSQL schema fails to start with `StoreLocked`.
 * - `upload` [off] (since 0.3.0): see `UploadConfig`; required by `remote_confirmation` (without it the node
 *   fails to start with a `ConfigError`). Not supported with `cluster`. Its `url` is also where the
 *   Scheduler-Location record is uploaded (`publicUrl`).
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeConfig {
  readonly port: number
  readonly host: string
  readonly dataDir: string
  readonly walletPath: string
  readonly store: StoreConfig
  readonly mode: Exclude<Mode, "disabled">
  readonly bodyLimit: number
  readonly blockHeight: number
  readonly gateway: GatewayConfig
  readonly shutdownGraceMs?: number | undefined
  readonly headersTimeoutMs?: number | undefined
  readonly requestTimeoutMs?: number | undefined
  readonly maxPageBytes?: number | undefined
  readonly idleTimeToLiveMs?: number | undefined
  readonly otlpUrl?: string | undefined
  readonly signers?: number | undefined
  readonly identityPaths?: ReadonlyArray<string> | undefined
  readonly cluster?: ClusterNode.RunnerOptions | undefined
  readonly publicUrl?: string | undefined
  readonly locationTtlMs?: number | undefined
  readonly strictKeyPerms?: boolean | undefined
  readonly upload?: UploadConfig | undefined
}

/**
 * Default `NodeConfig.headersTimeoutMs`: 30 s for a request's headers to arrive (Node's default is 60 s).
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_HEADERS_TIMEOUT_MS = 30_000

/**
 * Default `NodeConfig.requestTimeoutMs`: 120 s for a whole request, body included, to arrive (a 10 MiB body at
 * 1 Mbit/s takes about 84 s; Node's default is 300 s).
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000

/**
 * A running node: its wallet address, where it listens (`url`, `host`, `port`, the actual port when 0 was
 * asked) and the files it uses (`walletPath`, and `storePath` for SQLite).
 *
 * @since 0.1.0
 * @category models
 */
export interface RunningNode {
  readonly address: string
  readonly url: string
  readonly host: string
  readonly port: number
  readonly walletPath: string
  readonly storePath: string | undefined
}

/**
 * Every way starting a node can fail: the wallet file (`WalletError`), the store (`StoreError`), another node
 * holding the store (`StoreLocked`, since 0.3.0), the signer threads (`SignerPoolError`, since 0.4.0), the port (`ServeError`, e.g. already in use), or a `publicUrl`
 * that is not a bare http(s) origin (`InvalidLocation`).
 *
 * @since 0.1.0
 * @category errors
 */
export type StartError =
  | WalletError
  | StoreError
  | StoreLocked
  | HttpServerError.ServeError
  | SignerPoolError
  | SocketServer.SocketServerError
  | ConfigError.ConfigError
  | Location.InvalidLocation

/** A Layer of the SQLite store module, loaded (with its optional peers) only when used. */
const withSqlite = <A, E>(use: (module: typeof import("../sqlite/SqliteStore.js")) => Layer.Layer<A, E>) =>
  importPeer(() => import("../sqlite/SqliteStore.js"), use, "the SQLite store (--store sqlite)", [
    "@effect/sql",
    "@effect/sql-sqlite-node"
  ])

/** A Layer of the PostgreSQL store module, loaded (with its optional peers) only when used. */
const withPg = <A, E>(use: (module: typeof import("../pg/PgStore.js")) => Layer.Layer<A, E>) =>
  importPeer(() => import("../pg/PgStore.js"), use, "the PostgreSQL store (--store pg)", [
    "@effect/sql",
    "@effect/sql-pg"
  ])

/**
 * The store Layer of a `StoreConfig`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { NameService, SchedulerRegistry, Wallet } from "effect-scheduler-registry"
 * import { Node } from "effect-scheduler-registry/node"
 *
 * // the store chosen at run time; its SQL peers are loaded only if chosen
 * const RegistryLive = SchedulerRegistry.layer().pipe(
 *   Layer.provide(
 *     Layer.mergeAll(
 *       NameService.layer,
 *       Wallet.layerFile("./data/wallet.json"),
 *       Node.layerStore({ kind: "pg", url: "postgres://127.0.0.1:5432/postgres", schema: "su" })
 *     )
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStore = (config: StoreConfig): Layer.Layer<AssignmentStore.AssignmentStore, StoreError> => {
  switch (config.kind) {
    case "sqlite":
      return withSqlite((SqliteStore) => SqliteStore.layer({ filename: config.filename }))
    case "pg":
      return withPg((PgStore) => PgStore.layer({ url: config.url, schema: config.schema }))
    case "memory":
      return AssignmentStore.layerMemory
  }
}

/**
 * The writer lock of a `StoreConfig` (`StoreLock`): `SqliteStore.layerLock` for `sqlite` (a lock file beside
 * the database), `PgStore.layerLock` for `pg` (an advisory lock on the schema); none for `memory`. Fails with
 * `StoreLocked` naming the holder, or `StoreError` (operation `lock`).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Node } from "effect-scheduler-registry/node"
 *
 * // as the node does outside a cluster: the lock first, then the store
 * const config: Node.StoreConfig = { kind: "sqlite", filename: "./data/su.sqlite" }
 * const StoreLive = Node.layerStore(config).pipe(Layer.provide(Node.layerStoreLock(config)))
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layerStoreLock = (
  config: StoreConfig
): Layer.Layer<StoreLock.StoreLock, StoreLocked | StoreError> | Layer.Layer<never> => {
  switch (config.kind) {
    case "sqlite":
      return withSqlite((SqliteStore) => SqliteStore.layerLock({ filename: config.filename }))
    case "pg":
      return withPg((PgStore) => PgStore.layerLock({ url: config.url, schema: config.schema }))
    case "memory":
      return Layer.empty
  }
}

/**
 * The gateway Layer of a config: `Gateway.layer` over `fetch` for `online` (its floor is the store in the
 * context, when there is one, and `blockHeight`), `Gateway.layerFixed(blockHeight)` for `offline`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerGateway = (config: Pick<NodeConfig, "gateway" | "blockHeight">): Layer.Layer<Gateway.Gateway> =>
  config.gateway.kind === "offline"
    ? Gateway.layerFixed(config.blockHeight)
    : Gateway.layer({ url: config.gateway.url, fallbackHeight: config.blockHeight }).pipe(
        Layer.provide(FetchHttpClient.layer)
      )

/**
 * The uploader Layer of a config: `Uploader.layer` over `fetch` and the store in context when `upload` is set
 * (items queued before this start are first looked up on the online gateway), else nothing.
 */
const layerUploader = (
  config: Pick<NodeConfig, "upload" | "gateway">
):
  | Layer.Layer<never, StoreError, AssignmentStore.AssignmentStore>
  | Layer.Layer<Uploader.Uploader, StoreError, AssignmentStore.AssignmentStore> =>
  config.upload === undefined
    ? Layer.empty
    : Uploader.layer({
        url: config.upload.url,
        concurrency: config.upload.concurrency,
        timeoutMs: config.upload.timeoutMs,
        checkUrl: config.gateway.kind === "online" ? config.gateway.url : undefined
      }).pipe(Layer.provide(FetchHttpClient.layer))

/**
 * The node as a Layer that serves until its scope closes, also giving its `Wallet` and `HttpServer` (for the
 * address and the bound port).
 *
 * @example
 * ```ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { Node } from "effect-scheduler-registry/node"
 *
 * const config: Node.NodeConfig = {
 *   port: 8080,
 *   host: "0.0.0.0",
 *   dataDir: "./data",
 *   walletPath: "./data/wallet.json",
 *   store: { kind: "sqlite", filename: "./data/su.sqlite" },
 *   gateway: { kind: "online", url: "https://arweave.net" },
 *   mode: "local_confirmation",
 *   bodyLimit: 10 * 1024 * 1024,
 *   blockHeight: 0
 * }
 *
 * Layer.launch(Node.layer(config)).pipe(NodeRuntime.runMain)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: NodeConfig): Layer.Layer<Wallet.Wallet | HttpServer.HttpServer, StartError> => {
  if (config.mode === "remote_confirmation" && config.upload === undefined) {
    return Layer.fail(
      ConfigError.InvalidData(["mode"], "remote_confirmation needs an upload URL (--upload-url): a bundler to confirm")
    )
  }
  const otlpUrl = config.otlpUrl
  const tracing =
    otlpUrl === undefined
      ? Layer.empty
      : importPeer(
          () => import("../tracing/Tracing.js"),
          (Tracing) => Tracing.layerOtlp({ url: otlpUrl }),
          "trace export (--otlp-url)",
          ["@effect/opentelemetry", "@opentelemetry/sdk-trace-base"]
        )
  const registryOptions: SchedulerRegistry.Options = {
    mode: config.mode,
    idleTimeToLiveMs: config.idleTimeToLiveMs
  }
  const signers = config.signers ?? SignerPool.defaultSize()
  const keyOptions: Wallet.FileOptions = { strictPermissions: config.strictKeyPerms }
  // every assignment carries the gateway's current height, read synchronously from its cache
  const withIdentities = (options: SchedulerRegistry.Options) =>
    Layer.unwrapEffect(
      Effect.gen(function* () {
        const gateway = yield* Gateway.Gateway
        const uploader = yield* Effect.serviceOption(Uploader.Uploader)
        const identities = yield* Effect.forEach(config.identityPaths ?? [], (path) =>
          Wallet.fromFile(path, keyOptions)
        )
        return SchedulerRegistry.layer({
          ...options,
          identities,
          blockHeight: () => gateway.current().height,
          ...(Option.isSome(uploader) ? { upload: uploader.value.upload } : {})
        })
      })
    )
  const registry =
    signers === 0
      ? withIdentities(registryOptions)
      : Layer.unwrapEffect(
          Effect.map(SignerPool.SignerPool, (signer) => withIdentities({ ...registryOptions, signer }))
        ).pipe(Layer.provide(SignerPool.layer({ size: signers })))
  const core: Layer.Layer<
    SchedulerRegistry.SchedulerRegistry | AssignmentStore.AssignmentStore | Wallet.Wallet | Gateway.Gateway,
    StartError
  > =
    config.cluster !== undefined && config.store.kind === "pg"
      ? Layer.unwrapEffect(
          Effect.map(Gateway.Gateway, (gateway) =>
            importPeer(
              () => import("../cluster/ClusterNode.js"),
              (ClusterNode) =>
                ClusterNode.layerClusterNode({
                  ...config.cluster,
                  pgUrl: (config.store as { readonly url: string }).url,
                  schema: (config.store as { readonly schema?: string | undefined }).schema,
                  mode: config.mode,
                  blockHeight: () => gateway.current().height,
                  idleTimeToLiveMs: config.idleTimeToLiveMs
                }),
              "the cluster (--cluster)",
              ["@effect/cluster", "@effect/rpc", "@effect/sql", "@effect/sql-pg"]
            )
          )
        ).pipe(
          // the cluster's store is its own: the gateway's floor is --block-height there
          Layer.provideMerge(
            Layer.mergeAll(Wallet.layerFile(config.walletPath, keyOptions), tracing, layerGateway(config))
          )
        )
      : registry.pipe(
          Layer.provideMerge(
            Layer.merge(layerGateway(config), layerUploader(config)).pipe(
              Layer.provideMerge(
                Layer.mergeAll(
                  NameService.layer,
                  Wallet.layerFile(config.walletPath, keyOptions),
                  // the lock is taken before the store opens, and released after it closes
                  layerStore(config.store).pipe(Layer.provide(layerStoreLock(config.store))),
                  tracing
                )
              )
            )
          )
        )
  // the server is built after, so released before, the registry and the store
  // redirects resolve other SUs' locations through the gateway; --public-url publishes this one's
  const publicUrl = config.publicUrl
  const location = Location.layer({
    gatewayUrl: config.gateway.kind === "online" ? config.gateway.url : undefined,
    uploadUrl: config.upload?.url
  }).pipe(Layer.provide(FetchHttpClient.layer))
  // one record per identity: processes name any of them in their Scheduler tag
  const publishing =
    publicUrl === undefined
      ? Layer.empty
      : Layer.scopedDiscard(
          Effect.flatMap(SchedulerRegistry.SchedulerRegistry, (registry) =>
            Effect.flatMap(registry.getWallets(), (wallets) =>
              Effect.forEach(wallets, (wallet) =>
                Location.keepPublished({ url: publicUrl, ttlMs: config.locationTtlMs, wallet })
              )
            )
          )
        )
  const http = Http.layer({
    bodyLimit: config.bodyLimit,
    blockHeight: config.blockHeight,
    maxPageBytes: config.maxPageBytes,
    publicUrl
  }).pipe(
    Layer.provideMerge(
      Server.layer({
        port: config.port,
        host: config.host,
        graceMs: config.shutdownGraceMs ?? 10_000,
        headersTimeoutMs: config.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
        requestTimeoutMs: config.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
      })
    ),
    Layer.merge(publishing),
    Layer.provide(location)
  )
  return Layer.provideMerge(http, core).pipe(
    Layer.map((context) =>
      Context.make(Wallet.Wallet, Context.get(context, Wallet.Wallet)).pipe(
        Context.add(HttpServer.HttpServer, Context.get(context, HttpServer.HttpServer))
      )
    )
  )
}

/**
 * Starts a node in the current scope and returns where it listens. Closing the scope shuts it down gracefully.
 *
 * @example
 * ```ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Console, Effect } from "effect"
 * import { Node } from "effect-scheduler-registry/node"
 *
 * const program = Effect.gen(function* () {
 *   const node = yield* Node.start({
 *     port: 0, // any free port
 *     host: "127.0.0.1",
 *     dataDir: "./data",
 *     walletPath: "./data/wallet.json",
 *     store: { kind: "memory" },
 *     gateway: { kind: "offline" },
 *     mode: "aggressive",
 *     bodyLimit: 10 * 1024 * 1024,
 *     blockHeight: 0
 *   })
 *   yield* Console.log(`${node.address} listens on ${node.url}`)
 *   return yield* Effect.never
 * })
 *
 * Effect.scoped(program).pipe(NodeRuntime.runMain)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (config: NodeConfig): Effect.Effect<RunningNode, StartError, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Layer.build(layer(config))
    const wallet = Context.get(context, Wallet.Wallet)
    const address = Context.get(context, HttpServer.HttpServer).address
    const host = address._tag === "TcpAddress" ? address.hostname : config.host
    const port = address._tag === "TcpAddress" ? address.port : config.port
    return {
      address: wallet.address,
      url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
      host,
      port,
      walletPath: Path.resolve(config.walletPath),
      storePath: config.store.kind === "sqlite" ? Path.resolve(config.store.filename) : undefined
    }
  })
