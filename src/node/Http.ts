/**
 * The SU's HTTP server: the handlers of `Api` on the registry and the store, with CORS fully open, the OpenAPI
 * document at `/openapi.json`, a Swagger page at `/docs`, `{"error": …}` bodies for every failure and request
 * metrics.
 *
 * Mirrors the legacy ao SU's routes (`servers/su/src/main.rs`, `flows.rs`; `docs/behaviours.md` §4.2–§4.6) and
 * HyperBEAM's `~scheduler@1.0` `status`, `slot` and `schedule` reads (§4.7), and the `schedule` POST the MU's
 * HyperBEAM-mode client sends (`POST /{process}/~scheduler@1.0/schedule`). Writes go through the registry:
 * `find(p, true)` starts the scheduler of a process hosted here, which assigns the next nonce; reads come from
 * the `AssignmentStore`, the durable record, with bounded `range` reads.
 *
 * Size: about 330 lines, of which about 205 are code; the rest is the docstrings and `@example`s every
 * export carries. The code alone stays under 300 lines, so the module is kept whole.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpApiSwagger, type HttpRouter, type HttpServer, HttpServerResponse } from "@effect/platform"
import { Clock, Config, type ConfigError, Effect, Layer, Metric, Option } from "effect"
import { padBlockHeight } from "../Assignment.js"
import { AssignmentStore } from "../AssignmentStore.js"
import type { StoreError } from "../errors.js"
import { nodeJson, processJson } from "../internal/wire-format.js"
import * as Metrics from "../Metrics.js"
import * as Gateway from "../network/Gateway.js"
import type { ProcessId } from "../ProcessId.js"
import { getWallet, SchedulerRegistry } from "../SchedulerRegistry.js"
import { Api, BadRequest } from "./Api.js"
import * as Body from "./internal/http/body.js"
import * as HyperBeamPost from "./internal/http/hyperbeam-post.js"
import * as Ingest from "./internal/http/ingest.js"
import * as Middleware from "./internal/http/middleware.js"
import * as Pages from "./internal/http/pages.js"
import * as Prometheus from "./internal/prometheus.js"

/**
 * Default largest request body, in bytes (10 MiB): a larger `POST /` gets 413.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024

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
 * - `bodyLimit` [10 MiB]: the largest `POST /` body, in bytes; larger ones get 413 and are not read.
 * - `blockHeight` [0]: when no `Gateway` is in the context, the fixed height (`Gateway.makeFixed`) reported by
 *   `/timestamp` and the HyperBEAM reads (pass the same value the registry stamps on assignments). With a
 *   `Gateway`, its current block is reported, and `POST /?process-id&assign` verifies through it.
 *
 * @since 0.1.0
 * @category options
 */
export interface Options {
  readonly bodyLimit?: number | undefined
  readonly blockHeight?: number | undefined
}

const notFound = (what: string) => new BadRequest({ error: `${what} not found` })

const handlers = (options: Options) => {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT

  const context = Effect.gen(function* () {
    const registry = yield* SchedulerRegistry
    const store = yield* AssignmentStore
    const wallet = yield* getWallet()
    const gateway = Option.getOrElse(yield* Effect.serviceOption(Gateway.Gateway), () =>
      Gateway.makeFixed(options.blockHeight ?? 0)
    )
    const requireHosted = (processId: ProcessId) => Ingest.requireHosted(registry, processId)
    return { registry, store, gateway, address: wallet.address, requireHosted }
  })

  const su = HttpApiBuilder.group(Api, "su", (h) =>
    Effect.map(context, ({ address, gateway, registry, store }) => {
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
          })
        )
        .handle("timestamp", () =>
          Effect.map(Clock.currentTimeMillis, (now) => ({
            timestamp: String(now),
            block_height: padBlockHeight(gateway.current().height)
          }))
        )
        .handle("process", ({ path }) =>
          fromStore(store.getProcess(path.processId)).pipe(
            Effect.flatMap((found) =>
              Option.isSome(found) && found.value.message !== undefined
                ? Effect.succeed(processJson({ ...found.value, message: found.value.message }))
                : Effect.fail(notFound(`Process ${path.processId}`))
            )
          )
        )
        .handle("latest", ({ path }) =>
          Effect.gen(function* () {
            const latest = yield* fromStore(store.latest(path.processId))
            if (Option.isNone(latest)) return yield* notFound(`Process ${path.processId}`)
            const slot = latest.value.slot
            const [entry] = yield* fromStore(
              store.range(path.processId, { by: "slot", from: slot === 0 ? undefined : slot - 1, to: slot, limit: 1 })
            )
            if (entry === undefined) return yield* notFound(`Process ${path.processId}`)
            return nodeJson(entry)
          })
        )
        .handle("read", ({ path, urlParams }) =>
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
                  showAnchor
                })
              )
              // the page is JSON already (`Api.Page`'s encoded form, mostly the stored node JSON of each edge):
              // encoding 1,000 edges through the schema and serialising them again took longer than reading them
              return HttpServerResponse.uint8Array(page, { contentType: "application/json" })
            }
            const message = yield* fromStore(store.getMessage(path.id, urlParams["process-id"]))
            if (Option.isNone(message)) return yield* notFound("Message or Process")
            return nodeJson(message.value, { showAnchor })
          })
        )
    })
  )

  const hyperbeam = HttpApiBuilder.group(Api, "hyperbeam", (h) =>
    Effect.map(context, ({ address, gateway, registry, requireHosted, store }) =>
      h
        .handleRaw("post", ({ path, request }) => HyperBeamPost.post(registry, request, path.processId, bodyLimit))
        .handle("status", () =>
          Effect.map(registry.getProcesses(), (processes) => ({
            address,
            processes: [...processes],
            "cache-control": "no-store" as const
          }))
        )
        .handle("slot", ({ urlParams }) =>
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
          })
        )
        .handle("schedule", ({ headers, urlParams }) =>
          Effect.gen(function* () {
            // HyperBEAM's find_server starts the scheduler of a local process on this read too
            const scheduler = yield* requireHosted(urlParams.target)
            const info = yield* Effect.catchAll(scheduler.info, Ingest.failHttp)
            const read = yield* Effect.catchAll(
              Pages.slotRange(store, urlParams.target, { from: urlParams.from, to: urlParams.to, latest: info.slot }),
              Ingest.failHttp
            )
            const block = gateway.current()
            const time = { timestamp: yield* Clock.currentTimeMillis, blockHeight: block.height, blockHash: block.hash }
            return headers.accept?.includes("application/aos-2") === true
              ? Pages.aos2Schedule(urlParams.target, read, time)
              : Pages.httpSchedule(urlParams.target, read, time)
          })
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
  HttpApiBuilder.serve(Middleware.metrics).pipe(
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
