/**
 * The Arweave gateway as the SU sees it: the current block, refreshed in the background and served from memory,
 * and the transaction lookups that verify an assignment (`POST /?process-id&assign`).
 *
 * Mirrors HyperBEAM's `ar_timestamp` (`permaweb/HyperBEAM@b2743e4a:src/ar_timestamp.erl`: `GET
 * {gateway}/block/current` every 15 s, the cached `{timestamp, height, indep_hash}` served to every caller) and
 * the legacy ao SU's gateway client (`permaweb/ao@ff178d51:servers/su/src/domain/clients/gateway.rs`: `gql_tx`,
 * `/tx/{id}/status`; spec `arweave-network.md` §1–§2), with their failures fixed:
 * - the node starts without a reachable gateway (the legacy SU panics after 5 attempts; HyperBEAM blocks callers);
 * - the height never goes backwards: it starts at the store's highest `Block-Height` (or a fallback) and a
 *   gateway that reports a lower height is ignored (logged once);
 * - an outage keeps the last block, logs one warning (and one "reachable again" on recovery), counts each failed
 *   request in `su_gateway_failures_total`, and shows in `status()` (the node's `/health`).
 *
 * Size: about 425 lines, of which about 194 are code; the rest is the docstrings and `@example`s every
 * export carries. The code alone stays under 300 lines, so the module is kept whole.
 *
 * @since 0.2.0
 */
import { HttpClient } from "@effect/platform"
import {
  Clock,
  Config,
  type ConfigError,
  Context,
  Duration,
  Effect,
  Layer,
  Metric,
  Option,
  Schema,
  type Scope
} from "effect"
import { AssignmentStore } from "../AssignmentStore.js"
import { ZERO_BLOCK_HASH } from "../internal/wire-format.js"
import * as Http from "./internal/gateway-http.js"

/**
 * A block as the SU stamps it: `height` (the `Block-Height` tag), `hash` (its `indep_hash`, base64url; 32 zero
 * bytes when none was fetched) and `timestamp` (the block's time, in **seconds**; 0 when unknown).
 *
 * @since 0.2.0
 * @category models
 */
export interface Block {
  readonly height: number
  readonly hash: string
  readonly timestamp: number
}

/**
 * The gateway's state: `online` (the last refresh succeeded), `unreachable` (it failed: the last block is
 * served), `offline` (no gateway: `layerFixed`, `--gateway-url none`).
 *
 * @since 0.2.0
 * @category models
 */
export type State = "online" | "offline" | "unreachable"

/**
 * What `/health` reports: the state, the gateway's URL (null offline), the served block's height and hash, its
 * age in ms (`now - timestamp × 1000`; null when no block was fetched) and, while unreachable, the last error.
 *
 * @since 0.2.0
 * @category models
 */
export interface Status {
  readonly state: State
  readonly url: string | null
  readonly height: number
  readonly hash: string
  readonly blockAgeMs: number | null
  readonly lastError?: string
}

/**
 * A transaction as the gateway's GraphQL returns it (`data.transactions.edges[0].node`): `id`, `signature`
 * (base64url), `anchor` and `recipient` (null when empty), `owner` and `tags`.
 *
 * @since 0.2.0
 * @category models
 */
export type Transaction = typeof Http.TransactionNode.Type

/**
 * An L1 transaction's status (`GET /tx/{id}/status`): `Confirmed` with its block height and confirmations (the
 * blocks from its block to the current one, inclusive), `Pending` (202) or `NotFound` (404).
 *
 * @since 0.2.0
 * @category models
 */
export type TxStatus = Http.TxStatusReply

/**
 * The gateway could not answer (unreachable, timed out, a non-2xx status, a body that does not decode): the
 * caller may retry (HTTP 503). `url` is the gateway, `reason` what went wrong.
 *
 * @since 0.2.0
 * @category errors
 */
export class GatewayUnavailable extends Schema.TaggedError<GatewayUnavailable>()("GatewayUnavailable", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `The Arweave gateway ${this.url} is unavailable (${this.reason}); retry later`
  }
}

/**
 * The gateway answered that transaction `id` does not exist (no GraphQL edge): the legacy SU's "Transaction not
 * found" (HTTP 400).
 *
 * @since 0.2.0
 * @category errors
 */
export class TransactionNotFound extends Schema.TaggedError<TransactionNotFound>()("TransactionNotFound", {
  id: Schema.String
}) {
  override get message(): string {
    return `Transaction ${this.id} not found`
  }
}

/**
 * The node has no gateway (`--gateway-url none`, `layerFixed`), so it cannot look up `id` (HTTP 400).
 *
 * @since 0.2.0
 * @category errors
 */
export class GatewayOffline extends Schema.TaggedError<GatewayOffline>()("GatewayOffline", {
  id: Schema.String
}) {
  override get message(): string {
    return `This scheduler unit is offline (no gateway) and cannot verify transaction ${this.id}: only messages it holds can be assigned`
  }
}

/**
 * Every failure of a gateway lookup.
 *
 * @since 0.2.0
 * @category errors
 */
export type LookupError = GatewayUnavailable | TransactionNotFound | GatewayOffline

/**
 * The gateway service.
 *
 * - `url`: the gateway's base URL, `undefined` offline.
 * - `current()`: the served block, synchronously (no Effect: the scheduler reads it for every assignment).
 *   Never lower than the previous value.
 * - `status`: the state and the served block's age (for `/health`); also sets the block-age gauge.
 * - `refresh`: fetches the current block now (what the background refresher does every `refreshIntervalMs`);
 *   succeeds with the block served afterwards, whether or not the gateway answered.
 * - `transaction(id)`: the transaction through GraphQL; `TransactionNotFound`, `GatewayUnavailable`, or
 *   `GatewayOffline` when there is no gateway.
 * - `txStatus(id)`: the L1 status of `id` (`GET /tx/{id}/status`); `GatewayUnavailable` or `GatewayOffline`.
 *
 * @since 0.2.0
 * @category services
 */
export class Gateway extends Context.Tag("effect-scheduler-registry/Gateway")<
  Gateway,
  {
    readonly url: string | undefined
    readonly current: () => Block
    readonly status: Effect.Effect<Status>
    readonly refresh: Effect.Effect<Block>
    readonly transaction: (id: string) => Effect.Effect<Transaction, LookupError>
    readonly txStatus: (id: string) => Effect.Effect<TxStatus, GatewayUnavailable | GatewayOffline>
  }
>() {}

/**
 * Options of an online gateway; defaults in brackets.
 *
 * - `url`: the gateway's base URL, e.g. `https://arweave.net` (a trailing `/` is ignored).
 * - `fallbackHeight` [0]: the height served until the gateway answers, when the store holds no assignment
 *   higher (the node passes `--block-height`).
 * - `refreshIntervalMs` [15,000]: ms between background refreshes (HyperBEAM's `ar_timestamp` period).
 * - `timeoutMs` [5,000]: ms each request attempt may take.
 * - `retries` [2] and `retryDelayMs` [500]: further attempts of a failed request, that many ms apart.
 * - `startTimeoutMs` [2,000] (since 0.3.0): how long `make` waits for the first block, in one attempt. A gateway
 *   that is down or hangs delays the start by at most this much; the node then serves the floor and the
 *   refresher keeps trying.
 * - `failingRetryMs` [1,000] (since 0.3.0): while the gateway is unreachable, the refresher retries after this
 *   many ms, doubling each time up to `refreshIntervalMs`, so a recovered gateway is seen within seconds.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly url: string
  readonly fallbackHeight?: number | undefined
  readonly refreshIntervalMs?: number | undefined
  readonly timeoutMs?: number | undefined
  readonly retries?: number | undefined
  readonly retryDelayMs?: number | undefined
  readonly startTimeoutMs?: number | undefined
  readonly failingRetryMs?: number | undefined
}

/**
 * The default refresh period, in ms (HyperBEAM's `ar_timestamp` refresher).
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_REFRESH_INTERVAL_MS = 15_000

/**
 * The default gateway of the node (`--gateway-url`).
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_URL = "https://arweave.net"

/**
 * `su_gateway_failures_total`: failed gateway requests (after their retries), tagged `request` = `block`,
 * `graphql` or `status`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const failures = Metric.counter("su_gateway_failures_total", {
  description: "Gateway requests that failed after their retries",
  incremental: true
})

/**
 * `su_gateway_block_age_seconds`: the age of the served block (now minus its timestamp), set at each refresh and
 * each `status` read.
 *
 * @since 0.2.0
 * @category metrics
 */
export const blockAge = Metric.gauge("su_gateway_block_age_seconds", {
  description: "Age of the block the scheduler unit stamps on assignments, in seconds"
})

const ageMs = (block: Block, now: number): number | null =>
  block.timestamp === 0 ? null : now - block.timestamp * 1000

const setAge = (age: number | null) => (age === null ? Effect.void : Metric.set(blockAge, age / 1000))

/**
 * An online gateway in the current scope: reads the store's highest block height (when an `AssignmentStore` is
 * in the context) as the floor, fetches the current block once (a failure is logged, never fatal), then refreshes
 * it every `refreshIntervalMs` on a fiber of the scope.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { Gateway } from "effect-scheduler-registry/node"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const gateway = yield* Gateway.make({ url: "https://arweave.net" })
 *     return gateway.current().height
 *   })
 * ).pipe(Effect.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Gateway["Type"], never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const url = options.url.replace(/\/+$/, "")
    const request: Http.RequestOptions = {
      timeoutMs: options.timeoutMs ?? 5_000,
      retries: options.retries ?? 2,
      retryDelayMs: options.retryDelayMs ?? 500
    }
    const store = yield* Effect.serviceOption(AssignmentStore)
    const stored = Option.isNone(store)
      ? Option.none<number>()
      : yield* store.value.maxBlockHeight().pipe(
          Effect.tapError((e) => Effect.logWarning("could not read the store's highest block height", e)),
          Effect.orElseSucceed(() => Option.none<number>())
        )
    const floor = Math.max(
      options.fallbackHeight ?? 0,
      Option.getOrElse(stored, () => 0)
    )

    // one fiber writes (under the lock), any reads; JS runs one at a time, so plain variables suffice
    let block: Block = { height: floor, hash: ZERO_BLOCK_HASH, timestamp: 0 }
    let failing = false
    let lowerLogged = false
    let lastError: string | undefined
    const lock = yield* Effect.makeSemaphore(1)

    const failed = (kind: "block" | "graphql" | "status") => Metric.increment(Metric.tagged(failures, "request", kind))

    const refreshWith = (attempt: Http.RequestOptions): Effect.Effect<Block> =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const fetched = yield* Effect.either(Http.currentBlock(client, url, attempt))
          if (fetched._tag === "Left") {
            lastError = fetched.left
            yield* failed("block")
            if (!failing) {
              failing = true
              yield* Effect.logWarning(
                `gateway ${url} unreachable (${fetched.left}): serving block ${block.height} until it answers`
              )
            }
            return block
          }
          if (failing) {
            failing = false
            lastError = undefined
            yield* Effect.logInfo(`gateway ${url} reachable again`)
          }
          const next = fetched.right
          if (next.height < block.height) {
            if (!lowerLogged) {
              lowerLogged = true
              yield* Effect.logWarning(
                `gateway ${url} reports height ${next.height}, below the served ${block.height}: ignored`
              )
            }
            return block
          }
          lowerLogged = false
          block = { height: next.height, hash: next.indep_hash, timestamp: next.timestamp }
          yield* setAge(ageMs(block, yield* Clock.currentTimeMillis))
          return block
        })
      )
    const refresh = refreshWith(request)

    // the start waits for one bounded attempt; the refresher does the rest
    yield* refreshWith({
      ...request,
      retries: 0,
      timeoutMs: Math.min(request.timeoutMs, options.startTimeoutMs ?? 2_000)
    })
    const intervalMs = options.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS
    const firstRetryMs = Math.min(options.failingRetryMs ?? 1_000, intervalMs)
    let retryMs = firstRetryMs
    const nextDelay = (): Duration.Duration => {
      if (!failing) {
        retryMs = firstRetryMs
        return Duration.millis(intervalMs)
      }
      const delay = retryMs
      retryMs = Math.min(retryMs * 2, intervalMs)
      return Duration.millis(delay)
    }
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Effect.suspend(() => Effect.sleep(nextDelay())),
          refresh
        )
      )
    )

    const status = Effect.map(Clock.currentTimeMillis, (now): Status => {
      const served = { url, height: block.height, hash: block.hash, blockAgeMs: ageMs(block, now) }
      return failing && lastError !== undefined
        ? { state: "unreachable", ...served, lastError }
        : { state: failing ? "unreachable" : "online", ...served }
    }).pipe(Effect.tap((s) => setAge(s.blockAgeMs)))

    // while the gateway is known to be unreachable, a lookup makes one attempt instead of 1 + retries, so a
    // client's request gets its 503 in one timeout rather than in three
    const lookup = (): Http.RequestOptions => (failing ? { ...request, retries: 0 } : request)

    const transaction = (id: string): Effect.Effect<Transaction, LookupError> =>
      Http.transaction(client, url, id, lookup()).pipe(
        Effect.tapError(() => failed("graphql")),
        Effect.mapError((reason) => new GatewayUnavailable({ url, reason })),
        Effect.flatMap(
          Option.match({
            onNone: () => Effect.fail(new TransactionNotFound({ id })),
            onSome: Effect.succeed
          })
        )
      )

    const txStatus = (id: string): Effect.Effect<TxStatus, GatewayUnavailable> =>
      Http.txStatus(client, url, id, lookup()).pipe(
        Effect.tapError(() => failed("status")),
        Effect.mapError((reason) => new GatewayUnavailable({ url, reason }))
      )

    return Gateway.of({ url, current: () => block, status, refresh, transaction, txStatus })
  })

/**
 * A gateway without a network: `current()` is always `{height, hash, timestamp: 0}` (`hash` defaults to 32 zero
 * bytes, as HyperBEAM's debug mode), `status` says `offline`, and every lookup fails with `GatewayOffline`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeFixed = (height: number, hash: string = ZERO_BLOCK_HASH): Gateway["Type"] => {
  const block: Block = { height, hash, timestamp: 0 }
  return Gateway.of({
    url: undefined,
    current: () => block,
    status: Effect.succeed({ state: "offline", url: null, height, hash, blockAgeMs: null }),
    refresh: Effect.succeed(block),
    transaction: (id) => Effect.fail(new GatewayOffline({ id })),
    txStatus: (id) => Effect.fail(new GatewayOffline({ id }))
  })
}

/**
 * An online gateway as a Layer (see `make`): the refresher stops when the Layer's scope closes. Provide an
 * `HttpClient` (`FetchHttpClient.layer`, `NodeHttpClient.layerUndici`) and, for the never-backwards floor, the
 * `AssignmentStore`.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import { AssignmentStore } from "effect-scheduler-registry"
 * import { Gateway } from "effect-scheduler-registry/node"
 *
 * const gateway = Gateway.layer({ url: "https://arweave.net", fallbackHeight: 1_600_000 }).pipe(
 *   Layer.provide(Layer.merge(FetchHttpClient.layer, AssignmentStore.layerMemory))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Gateway, never, HttpClient.HttpClient> =>
  Layer.scoped(Gateway, make(options))

/**
 * `layer` with its options from a `Config`, e.g. `Config.all({ url: Config.string("SU_GATEWAY_URL") })`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<Gateway, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * The offline gateway (`makeFixed`) as a Layer: for library users without a network and for tests.
 *
 * @example
 * ```ts
 * import { Gateway } from "effect-scheduler-registry/node"
 *
 * const offline = Gateway.layerFixed(1_600_000)
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerFixed = (height: number, hash?: string): Layer.Layer<Gateway> =>
  Layer.succeed(Gateway, makeFixed(height, hash))
