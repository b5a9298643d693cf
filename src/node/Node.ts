/**
 * The SU node: wallet, assignment store, name service, scheduler registry and HTTP server, assembled from a
 * `NodeConfig` and run until its scope closes.
 *
 * Mirrors the legacy ao SU binary (`./su su <port>`: `SU_WALLET_PATH`, `DATABASE_URL` / `SU_DATA_DIR`,
 * port 9000; `docs/behaviours.md` §4.1). Shutdown is graceful and ordered: the server stops taking requests (late ones
 * on open connections get 503) and waits for those in flight (at most `shutdownGraceMs`, then open connections
 * are closed), then the registry interrupts its schedulers (each finishes the assignment it is writing), then
 * the store closes.
 *
 * Size: about 448 lines, of which about 248 are code; the rest is the docstrings and `@example`s every
 * export carries. The code alone stays under 300 lines, so the module is kept whole.
 *
 * @since 0.1.0
 */
import * as NodeHttp from "node:http"
import * as Path from "node:path"
import type { HttpServerError, SocketServer, WorkerError } from "@effect/platform"
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { ConfigError, Context, Effect, Layer, Option, type Scope } from "effect"
import * as AssignmentStore from "../AssignmentStore.js"
import type * as ClusterNode from "../cluster/ClusterNode.js"
import type { StoreError, WalletError } from "../errors.js"
import * as NameService from "../NameService.js"
import * as Gateway from "../network/Gateway.js"
import * as Uploader from "../network/Uploader.js"
import type { Mode } from "../Scheduler.js"
import * as SchedulerRegistry from "../SchedulerRegistry.js"
import * as Wallet from "../Wallet.js"
import * as Http from "./Http.js"
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
 * - `shutdownGraceMs` [10,000]: how long shutdown waits for in-flight requests before closing connections.
 * - `idleTimeToLiveMs` [off]: ms without a request before a scheduler passivates (the CLI's default is 300,000).
 * - `otlpUrl` [off]: export traces as OTLP/HTTP JSON to this URL (`Tracing.layerOtlp`).
 * - `signers` [0]: worker threads that sign assignments (`SignerPool`); 0 signs in-line on the main thread.
 * - `identityPaths` [none]: further wallet files (created if missing); a process whose `Scheduler` tag names
 *   one of them is hosted here and signed by it.
 * - `cluster` [off]: run as one runner of a scheduler cluster (`ClusterNode.layerClusterNode`); needs a `pg`
 *   store, whose database also holds the shard locks.
 * - `upload` [off] (since 0.3.0): see `UploadConfig`; required by `remote_confirmation` (without it the node
 *   fails to start with a `ConfigError`). Not supported with `cluster`.
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
  readonly idleTimeToLiveMs?: number | undefined
  readonly otlpUrl?: string | undefined
  readonly signers?: number | undefined
  readonly identityPaths?: ReadonlyArray<string> | undefined
  readonly cluster?: ClusterNode.RunnerOptions | undefined
  readonly upload?: UploadConfig | undefined
}

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
 * Every way starting a node can fail: the wallet file (`WalletError`), the store (`StoreError`), or the port
 * (`ServeError`, e.g. already in use).
 *
 * @since 0.1.0
 * @category errors
 */
export type StartError =
  | WalletError
  | StoreError
  | HttpServerError.ServeError
  | WorkerError.WorkerError
  | SocketServer.SocketServerError
  | ConfigError.ConfigError

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
      return importPeer(
        () => import("../sqlite/SqliteStore.js"),
        (SqliteStore) => SqliteStore.layer({ filename: config.filename }),
        "the SQLite store (--store sqlite)",
        ["@effect/sql", "@effect/sql-sqlite-node"]
      )
    case "pg":
      return importPeer(
        () => import("../pg/PgStore.js"),
        (PgStore) => PgStore.layer({ url: config.url, schema: config.schema }),
        "the PostgreSQL store (--store pg)",
        ["@effect/sql", "@effect/sql-pg"]
      )
    case "memory":
      return AssignmentStore.layerMemory
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

/** The body of requests that arrive while the node shuts down. */
const SHUTTING_DOWN = JSON.stringify({ error: "The scheduler unit is shutting down" })

/**
 * Drains the server when the scope closes, before `server.close()` waits for its connections: requests still
 * arriving on open keep-alive connections get 503 with `connection: close` (the API's handler is already gone),
 * connections are closed as soon as they are idle, and any still open after `graceMs` are closed.
 */
const drainOnClose = (server: NodeHttp.Server, graceMs: number) =>
  Layer.scopedDiscard(
    Effect.addFinalizer(() =>
      Effect.sync(() => {
        server.on("request", (_req: NodeHttp.IncomingMessage, res: NodeHttp.ServerResponse) => {
          res.writeHead(503, { "content-type": "application/json", connection: "close" }).end(SHUTTING_DOWN)
        })
        const idle = setInterval(() => server.closeIdleConnections(), 25).unref()
        server.once("close", () => clearInterval(idle))
        setTimeout(() => {
          clearInterval(idle)
          server.closeAllConnections()
        }, graceMs).unref()
      })
    )
  )

/** The Node HTTP server, drained on close (see `drainOnClose`). */
const layerServer = (config: NodeConfig) =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      const server = NodeHttp.createServer()
      // errors Node's HTTP parser answers itself (headers or URL over its limit, malformed requests) get the
      // API's JSON error body and open CORS too, instead of a bare status line
      server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
        if (!socket.writable) return socket.destroy()
        const [status, text] =
          error.code === "HPE_HEADER_OVERFLOW" ? [431, "Request Header Fields Too Large"] : [400, "Bad Request"]
        const body = JSON.stringify({
          error: status === 431 ? "The request's URL or headers are too large" : "Malformed HTTP request"
        })
        socket.end(
          `HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\naccess-control-allow-origin: *\r\n` +
            `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
        )
      })
      return Layer.provideMerge(
        drainOnClose(server, config.shutdownGraceMs ?? 10_000),
        NodeHttpServer.layer(() => server, { port: config.port, host: config.host })
      )
    })
  )

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
  const signers = config.signers ?? 0
  // every assignment carries the gateway's current height, read synchronously from its cache
  const withIdentities = (options: SchedulerRegistry.Options) =>
    Layer.unwrapEffect(
      Effect.gen(function* () {
        const gateway = yield* Gateway.Gateway
        const uploader = yield* Effect.serviceOption(Uploader.Uploader)
        const identities = yield* Effect.forEach(config.identityPaths ?? [], (path) =>
          Effect.flatMap(Wallet.loadOrCreate(path), ({ jwk }) => Wallet.make(jwk, path))
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
          Layer.provideMerge(Layer.mergeAll(Wallet.layerFile(config.walletPath), tracing, layerGateway(config)))
        )
      : registry.pipe(
          Layer.provideMerge(
            Layer.merge(layerGateway(config), layerUploader(config)).pipe(
              Layer.provideMerge(
                Layer.mergeAll(
                  NameService.layer,
                  Wallet.layerFile(config.walletPath),
                  layerStore(config.store),
                  tracing
                )
              )
            )
          )
        )
  // the server is built after, so released before, the registry and the store
  const http = Http.layer({ bodyLimit: config.bodyLimit, blockHeight: config.blockHeight }).pipe(
    Layer.provideMerge(layerServer(config))
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
