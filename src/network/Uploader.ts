/**
 * Durable uploads to an ANS-104 bundler: a background fiber drains the store's outbox (`AssignmentStore.Outbox`,
 * written in the same transaction as each assignment) to `POST {url}/tx/arweave`, the raw signed data item as
 * `application/octet-stream`, with a timeout per attempt, bounded concurrency and a capped exponential backoff
 * (`Schedule`). An attempt succeeds only on a 2xx whose JSON `id` is the item's own; a wrong id, a 5xx, a hang or
 * a transport error is retried later, never dropped. Its `upload` is the `Scheduler.Upload` hook the schedulers
 * use: every mode queues; `remote_confirmation` replies once both items are acknowledged.
 *
 * Sources: the legacy ao SU's uploader (`permaweb/ao servers/su/src/domain/clients/uploader.rs`: `UPLOAD_NODE_URL`
 * joined with `tx/arweave`, the message then the assignment, backoff from 1 s doubling to 32 s) and HyperBEAM's
 * `remote_confirmation` (`dev_scheduler_server.erl`, `hb_client:upload/1`). Unlike the legacy SU, the queue
 * survives a crash and retries never give up (`redrive` resets the backoff).
 *
 * @since 0.3.0
 */
import type { HttpClient } from "@effect/platform"
import { Config, type ConfigError, Context, Effect, Layer, type Metric, type Scope } from "effect"
import type { AssignmentStore, OutboxStatus } from "../AssignmentStore.js"
import type { StoreError } from "../errors.js"
import type { Upload } from "../Scheduler.js"
import * as Internal from "./internal/uploader.js"

/**
 * Options of the uploader. Defaults in brackets; every duration is in ms.
 *
 * - `url`: the bundler's base URL (e.g. `https://up.arweave.net`); items go to `tx/arweave` resolved against it,
 *   as the legacy SU resolves `UPLOAD_NODE_URL` (keep a trailing `/` to keep a path).
 * - `concurrency` [8]: uploads in flight at once.
 * - `timeoutMs` [30,000]: the most one attempt may take.
 * - `backoffBaseMs` [1,000] / `backoffCapMs` [32,000]: after the n-th failure of an item, the next attempt waits
 *   `min(cap, base × 2^(n-1))` (the legacy SU's 1 s … 32 s).
 * - `pollIntervalMs` [1,000]: how often an idle uploader looks at the outbox (a new assignment wakes it at once).
 * - `checkUrl` [none]: a gateway; items queued before this start are first looked up there (`HEAD {checkUrl}/{id}`)
 *   and not posted again if found, so a crash between the bundler's answer and its record posts nothing twice.
 *
 * @since 0.3.0
 * @category options
 */
export interface Options {
  readonly url: string
  readonly concurrency?: number | undefined
  readonly timeoutMs?: number | undefined
  readonly backoffBaseMs?: number | undefined
  readonly backoffCapMs?: number | undefined
  readonly pollIntervalMs?: number | undefined
  readonly checkUrl?: string | undefined
}

/**
 * The uploader service.
 *
 * - `upload`: the `Scheduler.Upload` hook to give the schedulers (`SchedulerRegistry.Options.upload`).
 * - `status(options)`: the outbox's state (`OutboxStatus`); fails with `StoreError`.
 * - `redrive`: makes every failed item due now, its backoff reset; succeeds with how many; fails with `StoreError`.
 *
 * @since 0.3.0
 * @category models
 */
export class Uploader extends Context.Tag("effect-scheduler-registry/Uploader")<
  Uploader,
  {
    readonly upload: Upload
    readonly status: (
      options?: { readonly uploaded?: boolean | undefined } | undefined
    ) => Effect.Effect<OutboxStatus, StoreError>
    readonly redrive: Effect.Effect<number, StoreError>
  }
>() {}

/**
 * Default `concurrency`: uploads in flight at once.
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_CONCURRENCY: number = Internal.DEFAULT_CONCURRENCY

/**
 * Default `timeoutMs` of one upload attempt, in ms.
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_TIMEOUT_MS: number = Internal.DEFAULT_TIMEOUT_MS

/**
 * The URL items are posted to for an upload `url`: `tx/arweave` resolved against it, as the legacy SU does
 * (`https://x/v1` → `https://x/tx/arweave`, `https://x/v1/` → `https://x/v1/tx/arweave`).
 *
 * @since 0.3.0
 * @category utils
 */
export const bundlerUrl: (url: string) => string = Internal.bundlerUrl

/**
 * Starts the drain loop in the current scope (it stops when the scope closes; items in flight then stay queued)
 * over the `AssignmentStore` in context, whose `outbox` it drains. Fails with `StoreError` if the store has no
 * outbox.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { AssignmentStore } from "effect-scheduler-registry"
 * import { Uploader } from "effect-scheduler-registry/node"
 *
 * const program = Effect.gen(function* () {
 *   const uploader = yield* Uploader.make({ url: "https://up.arweave.net", concurrency: 4 })
 *   return yield* uploader.status() // { pending: 0, retrying: 0, … }
 * }).pipe(Effect.scoped, Effect.provide([AssignmentStore.layerMemory, FetchHttpClient.layer]))
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<Uploader["Type"], StoreError, AssignmentStore | HttpClient.HttpClient | Scope.Scope> =>
  Internal.make(options)

/**
 * `make` as a Layer; give the schedulers its `upload` (`SchedulerRegistry.layer({ upload })`).
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import { AssignmentStore } from "effect-scheduler-registry"
 * import { Uploader } from "effect-scheduler-registry/node"
 *
 * const UploaderLive = Uploader.layer({ url: "https://up.arweave.net" }).pipe(
 *   Layer.provide(Layer.merge(AssignmentStore.layerMemory, FetchHttpClient.layer))
 * )
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Uploader, StoreError, AssignmentStore | HttpClient.HttpClient> =>
  Layer.scoped(Uploader, make(options))

/**
 * `layer` with its options read from `Config`. Fails with `ConfigError` when the config does not load, or
 * `StoreError` as `layer` does.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Config, Layer } from "effect"
 * import { AssignmentStore } from "effect-scheduler-registry"
 * import { Uploader } from "effect-scheduler-registry/node"
 *
 * const UploaderLive = Uploader.layerConfig({
 *   url: Config.string("SU_UPLOAD_URL"),
 *   concurrency: Config.integer("SU_UPLOAD_CONCURRENCY")
 * }).pipe(Layer.provide(Layer.merge(AssignmentStore.layerMemory, FetchHttpClient.layer)))
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<Uploader, StoreError | ConfigError.ConfigError, AssignmentStore | HttpClient.HttpClient> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * Gauge of the outbox items not yet acknowledged by the bundler (`su_upload_outbox_depth`), sampled by the
 * drain loop.
 *
 * @since 0.3.0
 * @category metrics
 */
export const outboxDepth: Metric.Metric.Gauge<number> = Internal.outboxDepth

/**
 * Gauge of the age of the oldest item not yet uploaded, in ms, 0 when none waits
 * (`su_upload_outbox_oldest_age_ms`).
 *
 * @since 0.3.0
 * @category metrics
 */
export const outboxOldestAge: Metric.Metric.Gauge<number> = Internal.outboxOldestAge

/**
 * Histogram of successful upload attempts' duration in ms (`su_upload_latency`).
 *
 * @since 0.3.0
 * @category metrics
 */
export const uploadLatency = Internal.uploadLatency

/**
 * Counter of data items the bundler acknowledged (`su_uploads_total`).
 *
 * @since 0.3.0
 * @category metrics
 */
export const uploads = Internal.uploads

/**
 * Counter of failed upload attempts (`su_upload_failures_total`), tagged `kind`: `status` (not 2xx),
 * `wrong_id` (2xx with another item's id), `timeout`, `transport`, `body` (a 2xx without a JSON `id`).
 *
 * @since 0.3.0
 * @category metrics
 */
export const uploadFailures = Internal.uploadFailures
