/**
 * The SU's HTTP server: the handlers of `Api` on the registry and the store, with CORS fully open, the OpenAPI
 * document at `/openapi.json`, a Swagger page at `/docs`, `{"error": …}` bodies for every failure, request
 * metrics, and an access log (one line per request, a request id echoed in `X-Request-Id`; since 0.3.0).
 *
 * Mirrors the legacy ao SU's routes (`servers/su/src/main.rs`, `flows.rs`; `docs/behaviours.md` §4.2–§4.6) and
 * HyperBEAM's `~scheduler@1.0` `status`, `slot` and `schedule` reads (§4.7), and the `schedule` POST the MU's
 * HyperBEAM-mode client sends (`POST /{process}/~scheduler@1.0/schedule`). Writes go through the registry:
 * `find(p, true)` starts the scheduler of a process hosted here, which assigns the next nonce; reads come from
 * the `AssignmentStore`, the durable record, with bounded `range` reads.
 *
 * Size: about 368 lines, of which about 236 are code; the rest is the docstrings and `@example`s every
 * export carries. The code alone stays under 300 lines, so the module is kept whole.
 *
 * @since 0.1.0
 */
import {
  HttpApiBuilder,
  HttpApiSwagger,
  type HttpRouter,
  type HttpServer,
  type HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Clock, Config, type ConfigError, Effect, Layer, Metric, Option, Stream } from "effect"
import { padBlockHeight } from "../Assignment.js"
import { AssignmentStore } from "../AssignmentStore.js"
import type { StoreError } from "../errors.js"
import { nodeJson, processJson } from "../internal/wire-format.js"
import * as Metrics from "../Metrics.js"
import * as Gateway from "../network/Gateway.js"
import * as Location from "../network/Location.js"
import type { ProcessId } from "../ProcessId.js"
import { getWallet, SchedulerRegistry } from "../SchedulerRegistry.js"
import { Api, BadRequest } from "./Api.js"
import * as AccessLog from "./internal/http/access-log.js"
import * as Body from "./internal/http/body.js"
import * as HyperBeamPost from "./internal/http/hyperbeam-post.js"
import * as Ingest from "./internal/http/ingest.js"
import * as Middleware from "./internal/http/middleware.js"
import * as Pages from "./internal/http/pages.js"
import * as Redirect from "./internal/http/redirect.js"
import * as Prometheus from "./internal/prometheus.js"

/**
 * Default largest request body, in bytes (10 MiB): a larger `POST /` gets 413.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024

/**
 * Default largest page, in bytes of stored entries (16 MiB): `GET /{process}` and the HyperBEAM schedule read stop
 * before the entry that would pass it (one entry at least) and say the schedule continues. Our bound: the
 * legacy ao SU bounds a message list by `MAX_READ_MEMORY` (`servers/su`, default 1 GB).
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_MAX_PAGE_BYTES = 16 * 1024 * 1024

/**
 * Where the Swagger page is served.
 *
 * @since 0.1.0
 * @category constants
 */
export const DOCS_PATH = "/docs"

/**
 * Where the OpenAPI document is served.
 *
 * @since 0.1.0
 * @category constants
 */
export const OPENAPI_PATH = "/openapi.json"

/**
 * Options of the HTTP server. All optional; defaults in brackets.
 *
 * - `bodyLimit` [10 MiB]: the largest `POST /` body, in bytes; larger ones get 413 with `connection: close`. A
 *   body up to 16 MiB over the limit is read and dropped first, so a client that sends its whole body before
 *   reading (`fetch`) sees the 413 rather than EPIPE; a larger one is refused at once.
 * - `maxPageBytes` [16 MiB] (since 0.3.0): the most bytes of stored entries one page (`GET /{process}`, the
 *   HyperBEAM schedule read) holds; a page cut by it has `has_next_page` (`continues`) true, and a single entry
 *   larger than it comes back alone (`AssignmentStore.PageQuery`).
 * - `blockHeight` [0]: when no `Gateway` is in the context, the fixed height (`Gateway.makeFixed`) reported by
 *   `/timestamp` and the HyperBEAM reads (pass the same value the registry stamps on assignments). With a
 *   `Gateway`, its current block is reported, and `POST /?process-id&assign` verifies through it.
 * - `publicUrl`: the URL this node publishes as its Scheduler-Location (`--public-url`); a redirect to it is a
 *   loop (508). With a `Location` in the context, a request for a process another SU schedules gets a 307 to
 *   that SU (see docs/http.md, "Location and redirects"); without one it gets 400.
 *
 * @since 0.1.0
 * @category options
 */
export interface Options {
  readonly bodyLimit?: number | undefined
  readonly maxPageBytes?: number | undefined
  readonly blockHeight?: number | undefined
  readonly publicUrl?: string | undefined
}

const notFound = (what: string) => new BadRequest({ error: `${what} not found` })

/** Not in the store: a redirect when another SU schedules `processId`, else "`what` not found" (400). */
const notHere = (processId: string, what: string) => new Redirect.NotHosted({ processId, error: `${what} not found` })

const handlers = (options: Options) => {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT
  const maxBytes = options.maxPageBytes ?? DEFAULT_MAX_PAGE_BYTES

  const context = Effect.gen(function* () {
    const registry = yield* SchedulerRegistry
    const store = yield* AssignmentStore
    const wallet = yield* getWallet()
    const gateway = Option.getOrElse(yield* Effect.serviceOption(Gateway.Gateway), () =>
      Gateway.makeFixed(options.blockHeight ?? 0)
    )
    const requireHosted = (processId: ProcessId) => Ingest.requireHosted(registry, processId)
    const redirects: Redirect.Deps = {
      gateway,
      location: yield* Effect.serviceOption(Location.Location),
      addresses: new Set((yield* registry.getWallets()).map((w) => w.address)),
      address: wallet.address,
      publicUrl: options.publicUrl,
      known: new Map()
    }
    const settle = (request: HttpServerRequest.HttpServerRequest) => Redirect.settle(redirects, request)
    return { registry, store, gateway, address: wallet.address, requireHosted, settle }
  })

  const su = HttpApiBuilder.group(Api, "su", (h) =>
    Effect.map(context, ({ address, gateway, registry, settle, store }) => {
      const fromStore = <A>(effect: Effect.Effect<A, StoreError>) => Effect.catchAll(effect, Ingest.failHttp)
      return h
        .handle("info", () => Effect.map(Clock.currentTimeMillis, (now) => ({ timestamp: String(now), address })))
        .handleRaw("schedule", ({ request, urlParams }) =>
          Effect.gen(function* () {
            const processId = urlParams["process-id"]
            const assign = urlParams.assign
            if (processId === undefined && assign === undefined) {
              if (urlParams.exclude !== undefined || urlParams["base-layer"] !== undefined) {
                return yield* new BadRequest({ error: "exclude and base-layer go with process-id and assign" })
              }
            }
            if (processId !== undefined || assign !== undefined) {
              if (processId === undefined || assign === undefined) {
                return yield* new BadRequest({ error: "process-id and assign must be given together" })
              }
              // an assignment names an existing transaction; a body would be a message the client believes is
              // scheduled and is not
              if ((yield* Body.read(request, bodyLimit)).byteLength > 0) {
                return yield* new BadRequest({
                  error: "POST /?process-id&assign takes no body: post a data item to / without them"
                })
              }
              return yield* Ingest.assign({ registry, store, gateway }, processId, assign, {
                exclude: urlParams.exclude,
                baseLayer: urlParams["base-layer"] !== undefined
              })
            }
            const body = yield* Body.read(request, bodyLimit)
            if (body.byteLength === 0) {
              return yield* new BadRequest({ error: "The body is empty: POST / takes a signed ANS-104 data item" })
            }
            return yield* Ingest.postDataItem(registry, body)
          }).pipe(settle(request))
        )
        .handle("timestamp", ({ request, urlParams }) =>
          Effect.gen(function* () {
            const answer = Effect.map(Clock.currentTimeMillis, (now) => ({
              timestamp: String(now),
              block_height: padBlockHeight(gateway.current().height)
            }))
            // a process another SU schedules is redirected, as the legacy router does; otherwise the time is
            // answered whatever the process (as the legacy SU does)
            const processId = urlParams["process-id"]
            if (processId === undefined || Option.isSome(yield* fromStore(store.getProcess(processId))))
              return yield* answer
            return yield* Effect.fail(notHere(processId, `Process ${processId}`)).pipe(
              settle(request),
              Effect.orElse(() => answer)
            )
          }).pipe(settle(request))
        )
        .handle("process", ({ path, request }) =>
          Effect.gen(function* () {
            const found = yield* fromStore(store.getProcess(path.processId))
            if (Option.isNone(found)) return yield* notHere(path.processId, `Process ${path.processId}`)
            const message = found.value.message
            if (message === undefined) return yield* notFound(`Process ${path.processId}`)
            return processJson({ ...found.value, message })
          }).pipe(settle(request))
        )
        .handle("latest", ({ path, request }) =>
          Effect.gen(function* () {
            const latest = yield* fromStore(store.latest(path.processId))
            if (Option.isNone(latest)) return yield* notHere(path.processId, `Process ${path.processId}`)
            const slot = latest.value.slot
            const [entry] = yield* fromStore(
              store.range(path.processId, { by: "slot", from: slot === 0 ? undefined : slot - 1, to: slot, limit: 1 })
            )
            if (entry === undefined) return yield* notFound(`Process ${path.processId}`)
            return nodeJson(entry)
          }).pipe(settle(request))
        )
        .handle("read", ({ path, request, urlParams }) =>
          Effect.gen(function* () {
            const showAnchor = urlParams["show-anchor"] !== undefined
            const asProcess = path.id as string as ProcessId
            const process = yield* fromStore(store.getProcess(asProcess))
            if (Option.isSome(process)) {
              const page = yield* fromStore(
                Pages.legacyPage(store, asProcess, {
                  from: urlParams.from,
                  to: urlParams.to,
                  limit: urlParams.limit,
                  fromNonce: urlParams["from-nonce"],
                  toNonce: urlParams["to-nonce"],
                  showAnchor,
                  maxBytes
                })
              )
              // the page is JSON already (`Api.Page`'s encoded form, mostly the stored node JSON of each edge):
              // encoding 1,000 edges through the schema and serialising them again took longer than reading them.
              // Its chunks go to the socket as they are (one writev, Node corks the response's writes of one
              // tick), with their length: joining a 4 MB page into one buffer first cost a third of the read
              return HttpServerResponse.stream(Stream.fromIterable(page.chunks), {
                contentType: "application/json",
                contentLength: page.byteLength
              })
            }
            const processId = urlParams["process-id"]
            const message = yield* fromStore(store.getMessage(path.id, processId))
            if (Option.isSome(message)) return nodeJson(message.value, { showAnchor })
            // a message of a process held here is just not found; otherwise its process may live elsewhere
            if (processId !== undefined && Option.isSome(yield* fromStore(store.getProcess(processId)))) {
              return yield* notFound("Message or Process")
            }
            return yield* notHere(processId ?? path.id, "Message or Process")
          }).pipe(settle(request))
        )
    })
  )

  const hyperbeam = HttpApiBuilder.group(Api, "hyperbeam", (h) =>
    Effect.map(context, ({ address, gateway, registry, requireHosted, settle, store }) =>
      h
        .handleRaw("post", ({ path, request }) =>
          HyperBeamPost.post(registry, request, path.processId, bodyLimit).pipe(settle(request))
        )
        .handle("status", () =>
          Effect.map(registry.getProcesses(), (processes) => ({
            address,
            processes: [...processes],
            "cache-control": "no-store" as const
          }))
        )
        .handle("slot", ({ request, urlParams }) =>
          Effect.gen(function* () {
            const scheduler = yield* requireHosted(urlParams.target)
            const info = yield* Effect.catchAll(scheduler.info, Ingest.failHttp)
            const block = gateway.current()
            return {
              process: urlParams.target,
              current: info.slot,
              timestamp: yield* Clock.currentTimeMillis,
              "block-height": block.height,
              "block-hash": block.hash,
              "cache-control": "no-store" as const,
              "wallet-address": address
            }
          }).pipe(settle(request))
        )
        .handle("schedule", ({ headers, request, urlParams }) =>
          Effect.gen(function* () {
            // HyperBEAM's find_server starts the scheduler of a local process on this read too
            const scheduler = yield* requireHosted(urlParams.target)
            const info = yield* Effect.catchAll(scheduler.info, Ingest.failHttp)
            const read = yield* Effect.catchAll(
              Pages.slotRange(store, urlParams.target, {
                from: urlParams.from,
                to: urlParams.to,
                latest: info.slot,
                maxBytes
              }),
              Ingest.failHttp
            )
            const block = gateway.current()
            const time = { timestamp: yield* Clock.currentTimeMillis, blockHeight: block.height, blockHash: block.hash }
            return headers.accept?.includes("application/aos-2") === true
              ? Pages.aos2Schedule(urlParams.target, read, time)
              : Pages.httpSchedule(urlParams.target, read, time)
          }).pipe(settle(request))
        )
    )
  )

  const ops = HttpApiBuilder.group(Api, "ops", (h) =>
    Effect.map(context, ({ gateway, registry }) =>
      h
        .handle("health", () => Effect.map(gateway.status, (state) => ({ status: "ok" as const, gateway: state })))
        .handle("metrics", () =>
          Effect.gen(function* () {
            const processes = yield* registry.getProcesses()
            yield* Metric.set(Metrics.activeSchedulers, processes.length)
            return Prometheus.render(Metric.unsafeSnapshot())
          })
        )
    )
  )

  return Layer.mergeAll(su, hyperbeam, ops)
}

/**
 * The implemented API (`HttpApi.Api`) over the ambient `SchedulerRegistry` and `AssignmentStore`, without a
 * server: for `HttpApiBuilder.serve`, `HttpApiBuilder.toWebHandler` or tests.
 *
 * @example
 * ```ts
 * import { HttpApiBuilder, HttpServer } from "@effect/platform"
 * import { Layer } from "effect"
 * import { AssignmentStore, NameService, SchedulerRegistry, Wallet } from "effect-scheduler-registry"
 * import { Http } from "effect-scheduler-registry/node"
 *
 * const RegistryLive = SchedulerRegistry.layer().pipe(
 *   Layer.provide(Layer.mergeAll(NameService.layer, Wallet.layerGenerate)),
 *   Layer.provideMerge(AssignmentStore.layerMemory)
 * )
 *
 * // the API as a web handler (`(request: Request) => Promise<Response>`), with no server
 * const { handler, dispose } = HttpApiBuilder.toWebHandler(
 *   Layer.mergeAll(Http.layerApi().pipe(Layer.provide(RegistryLive)), HttpServer.layerContext)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi = (options: Options = {}) => HttpApiBuilder.api(Api).pipe(Layer.provide(handlers(options)))

/**
 * Serves the SU API on the ambient `HttpServer` (e.g. `NodeHttpServer.layer`) until the Layer's scope closes.
 * Closing it stops taking requests; the server layer then waits for in-flight requests before it closes.
 * Every response carries `X-Request-Id` (the client's, when it is 1–128 characters of `[A-Za-z0-9._:+=/-]`, else
 * a new UUID) and is logged once through the ambient `Logger`: message `METHOD path status`, annotations
 * `method`, `path` (the values of the id parameters `process-id`, `assign`, `target` and `exclude` dropped),
 * `status`, `bytes`, `durationMs` and `requestId`; level Info, Warning for a 5xx.
 *
 * @example
 * ```ts
 * import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { NameService, SchedulerRegistry, Wallet } from "effect-scheduler-registry"
 * import { Http } from "effect-scheduler-registry/node"
 * import { SqliteStore } from "effect-scheduler-registry/sqlite"
 * import { createServer } from "node:http"
 *
 * const RegistryLive = SchedulerRegistry.layer().pipe(
 *   Layer.provide(Layer.mergeAll(NameService.layer, Wallet.layerFile("./data/wallet.json"))),
 *   Layer.provideMerge(SqliteStore.layer({ filename: "./data/su.sqlite" }))
 * )
 *
 * const ServerLive = Http.layer({ bodyLimit: 10 * 1024 * 1024 }).pipe(
 *   Layer.provide(RegistryLive),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 8080 }))
 * )
 *
 * Layer.launch(ServerLive).pipe(NodeRuntime.runMain)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<
  never,
  never,
  SchedulerRegistry | AssignmentStore | HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices
> =>
  HttpApiBuilder.serve((app) => AccessLog.accessLog(Middleware.metrics(app))).pipe(
    Layer.provide(HttpApiSwagger.layer({ path: DOCS_PATH })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: OPENAPI_PATH })),
    Layer.provide(HttpApiBuilder.middlewareCors()),
    Layer.provide(HttpApiBuilder.middleware(Api, Middleware.errors([DOCS_PATH, OPENAPI_PATH]))),
    Layer.provide(layerApi(options))
  )

/**
 * `layer` with its options read from `Config`, e.g. `Http.layerConfig({ bodyLimit: Config.integer("SU_BODY_LIMIT") })`.
 * Fails with `ConfigError` when the config does not load.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<
  never,
  ConfigError.ConfigError,
  SchedulerRegistry | AssignmentStore | HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices
> => Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
