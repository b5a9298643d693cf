/**
 * Where a scheduler unit is found: its `Scheduler-Location` record. `publish` signs the record with the node's
 * `Wallet` and uploads it to an ANS-104 bundler; `keepPublished` does so on start and again before its TTL runs
 * out; `resolve` finds another SU's URL from its latest record through the gateway's GraphQL, the way
 * `@permaweb/ao-scheduler-utils` does (`locate`, `validate`, `raw`), and checks it.
 *
 * Sources: the reference deploy script (`permaweb/ao@ff178d51:.devcontainer/services/su/deploy-scheduler/
 * index.js`) for the record's tags; scheduler-utils' `GetSchedulerLocation` query (`scheduler-utils/src/client/
 * gateway.js`) for the lookup; HyperBEAM's `find_server` (`src/dev_scheduler.erl`) for the lookup cache. Stricter
 * than scheduler-utils, which trusts the gateway and never expires a record: `resolve` skips records whose owner
 * is not the address asked for, and refuses a record older than its own `Time-To-Live`.
 *
 * Size: about 415 lines, of which about 205 are code; the rest is the docstrings and `@example`s every
 * export carries. The code alone stays under 300 lines, so the module is kept whole.
 *
 * @since 0.3.0
 */
import * as Crypto from "node:crypto"
import { HttpClient } from "@effect/platform"
import { Clock, Config, type ConfigError, Context, Duration, Effect, Either, Layer, Schema, type Scope } from "effect"
import { Wallet } from "../Wallet.js"
import type { RequestOptions } from "./internal/gateway-http.js"
import * as Http from "./internal/location-http.js"

/**
 * A resolved location: the SU's `url` (an origin, no trailing `/`), its `address`, the record's `id`, its
 * `ttlMs` and when it expires (`expiresAt`, ms since the epoch: the record's block time, or the lookup time for
 * a record not mined yet, plus `ttlMs`).
 *
 * @since 0.3.0
 * @category models
 */
export interface SchedulerLocation {
  readonly url: string
  readonly address: string
  readonly id: string
  readonly ttlMs: number
  readonly expiresAt: number
}

/**
 * What `publish` uploaded: the record's `id`, the `url` and `ttlMs` it carries, and the signing `address`.
 *
 * @since 0.3.0
 * @category models
 */
export interface Published {
  readonly id: string
  readonly url: string
  readonly ttlMs: number
  readonly address: string
}

/**
 * `publish` was given a URL that is not a bare http(s) origin, or a TTL that is not a positive integer of ms.
 *
 * @since 0.3.0
 * @category errors
 */
export class InvalidLocation extends Schema.TaggedError<InvalidLocation>()("InvalidLocation", {
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid Scheduler-Location: ${this.reason}`
  }
}

/**
 * The record could not be uploaded: no bundler is configured (`uploadUrl` undefined), or the bundler at `url`
 * failed (unreachable, timed out, non-2xx, or acknowledged another id).
 *
 * @since 0.3.0
 * @category errors
 */
export class PublishFailed extends Schema.TaggedError<PublishFailed>()("PublishFailed", {
  url: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    return `Could not publish the Scheduler-Location${this.url === undefined ? "" : ` to ${this.url}`}: ${this.reason}`
  }
}

/**
 * `address` has no usable Scheduler-Location record: none at all, or none signed by that address with a valid
 * `Url` and `Time-To-Live`; or the node has no gateway to look it up.
 *
 * @since 0.3.0
 * @category errors
 */
export class LocationNotFound extends Schema.TaggedError<LocationNotFound>()("LocationNotFound", {
  address: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `No Scheduler-Location for ${this.address}: ${this.reason}`
  }
}

/**
 * The latest record of `address` (pointing at `url`) expired at `expiredAt` (ms since the epoch): its owner no
 * longer vouches for it.
 *
 * @since 0.3.0
 * @category errors
 */
export class LocationExpired extends Schema.TaggedError<LocationExpired>()("LocationExpired", {
  address: Schema.String,
  url: Schema.String,
  expiredAt: Schema.Number
}) {
  override get message(): string {
    return `The Scheduler-Location of ${this.address} (${this.url}) expired at ${new Date(this.expiredAt).toISOString()}`
  }
}

/**
 * The gateway at `url` could not answer the lookup (unreachable, timed out, non-2xx, garbage): retry later
 * (HTTP 503).
 *
 * @since 0.3.0
 * @category errors
 */
export class LookupUnavailable extends Schema.TaggedError<LookupUnavailable>()("LookupUnavailable", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `The Scheduler-Location lookup at ${this.url} is unavailable (${this.reason}); retry later`
  }
}

/**
 * Every failure of `resolve`.
 *
 * @since 0.3.0
 * @category errors
 */
export type ResolveError = LocationNotFound | LocationExpired | LookupUnavailable

/**
 * The location service.
 *
 * - `address`: the node wallet's address, which signs the records.
 * - `publish(url, ttlMs?, wallet?)`: signs (with `wallet`, by default the node's) and uploads a record saying
 *   that address's SU is at `url` (a bare http(s) origin) for `ttlMs` ms [`DEFAULT_TTL_MS`]; `InvalidLocation` or
 *   `PublishFailed`. A node hosting processes for further identities publishes one record per identity.
 * - `resolve(address)`: the location of the SU with that address, from its latest valid record, cached until the
 *   record expires (at most 1,000 addresses, the oldest evicted first); `LocationNotFound`, `LocationExpired` or `LookupUnavailable`.
 *
 * @since 0.3.0
 * @category services
 */
export class Location extends Context.Tag("effect-scheduler-registry/Location")<
  Location,
  {
    readonly address: string
    readonly publish: (
      url: string,
      ttlMs?: number,
      wallet?: Wallet["Type"]
    ) => Effect.Effect<Published, InvalidLocation | PublishFailed>
    readonly resolve: (address: string) => Effect.Effect<SchedulerLocation, ResolveError>
  }
>() {}

/**
 * Options; defaults in brackets.
 *
 * - `gatewayUrl`: the gateway whose `/graphql` `resolve` asks; without it `resolve` fails with `LocationNotFound`.
 * - `uploadUrl`: the bundler `publish` posts to (`{uploadUrl}/tx/arweave`); without it `publish` fails.
 * - `timeoutMs` [5,000], `retries` [2], `retryDelayMs` [500]: each request's timeout (ms), further attempts, and
 *   the ms between them.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly gatewayUrl?: string | undefined
  readonly uploadUrl?: string | undefined
  readonly timeoutMs?: number | undefined
  readonly retries?: number | undefined
  readonly retryDelayMs?: number | undefined
}

/**
 * The default `Time-To-Live` of a published record, in ms: one hour, the reference deploy script's value.
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_TTL_MS = 3_600_000

/** How many resolved locations `resolve` keeps (scheduler-utils keeps 100). */
const CACHE_SIZE = 1_000

/**
 * `url` as a record carries it: its origin, when `url` is a bare http(s) origin (a trailing `/` is allowed);
 * otherwise the reason it is not.
 *
 * @since 0.3.0
 * @category utils
 */
export const originOf = (url: string): Either.Either<string, string> => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return Either.left(`${JSON.stringify(url)} is not a URL`)
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return Either.left(`${JSON.stringify(url)} is not http(s)`)
  }
  if (parsed.pathname !== "/" || parsed.search !== "" || parsed.hash !== "" || parsed.username !== "") {
    return Either.left(`${JSON.stringify(url)} is not a bare origin (clients drop the path)`)
  }
  return Either.right(parsed.origin)
}

const tagOf = (node: Http.RecordNode, name: string): string | undefined =>
  node.tags.find((t) => t.name.toLowerCase() === name.toLowerCase())?.value

/** The record's URL and TTL when it is `address`'s own and well formed. */
const validRecord = (node: Http.RecordNode, address: string) => {
  if (node.owner.address !== address) return undefined
  const key = node.owner.key
  if (
    key != null &&
    Crypto.createHash("sha256").update(Buffer.from(key, "base64url")).digest("base64url") !== address
  ) {
    return undefined
  }
  const url = Either.getOrUndefined(originOf(tagOf(node, "Url") ?? ""))
  const ttl = tagOf(node, "Time-To-Live") ?? ""
  if (url === undefined || !/^[1-9][0-9]{0,14}$/.test(ttl)) return undefined
  return { url, ttlMs: Number(ttl) }
}

/**
 * A location service signing with the ambient `Wallet` and talking HTTP through the ambient `HttpClient`.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { Location } from "effect-scheduler-registry/node"
 *
 * const program = Effect.gen(function* () {
 *   const location = yield* Location.make({ gatewayUrl: "https://arweave.net", uploadUrl: "https://up.arweave.net" })
 *   yield* location.publish("https://su.example.com")
 *   return yield* location.resolve(location.address)
 * }).pipe(Effect.provide(FetchHttpClient.layer), Effect.provide(Wallet.layerGenerate))
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Location["Type"], never, HttpClient.HttpClient | Wallet> =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const wallet = yield* Wallet
    const request: RequestOptions = {
      timeoutMs: options.timeoutMs ?? 5_000,
      retries: options.retries ?? 2,
      retryDelayMs: options.retryDelayMs ?? 500
    }
    const cache = new Map<string, SchedulerLocation>()
    let failing = false

    const publish = (
      url: string,
      ttlMs: number = DEFAULT_TTL_MS,
      signer: Wallet["Type"] = wallet
    ): Effect.Effect<Published, InvalidLocation | PublishFailed> =>
      Effect.gen(function* () {
        const origin = originOf(url)
        if (Either.isLeft(origin)) return yield* new InvalidLocation({ reason: origin.left })
        if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
          return yield* new InvalidLocation({ reason: `the TTL must be a positive integer of ms, got ${ttlMs}` })
        }
        const uploadUrl = options.uploadUrl
        if (uploadUrl === undefined) {
          return yield* new PublishFailed({ reason: "no bundler is configured (--upload-url, SU_UPLOAD_URL)" })
        }
        const record = yield* Http.buildRecord(signer, origin.right, ttlMs)
        yield* Http.upload(client, uploadUrl, record, request).pipe(
          Effect.mapError((reason) => new PublishFailed({ url: uploadUrl, reason }))
        )
        return { id: record.id, url: origin.right, ttlMs, address: signer.address }
      })

    const lookup = (gatewayUrl: string, address: string): Effect.Effect<SchedulerLocation, ResolveError> =>
      Effect.gen(function* () {
        // while the gateway does not answer, one attempt instead of 1 + retries: a client gets its 503 sooner
        const nodes = yield* Http.records(
          client,
          gatewayUrl,
          address,
          failing ? { ...request, retries: 0 } : request
        ).pipe(
          Effect.tapBoth({
            onFailure: () => Effect.sync(() => (failing = true)),
            onSuccess: () => Effect.sync(() => (failing = false))
          }),
          Effect.mapError((reason) => new LookupUnavailable({ url: gatewayUrl, reason }))
        )
        const now = yield* Clock.currentTimeMillis
        for (const node of nodes) {
          const record = validRecord(node, address)
          if (record === undefined) continue
          // a record not mined yet was uploaded moments ago: it counts from now
          const since = node.block == null ? now : node.block.timestamp * 1000
          const found = { ...record, address, id: node.id, expiresAt: since + record.ttlMs }
          if (found.expiresAt <= now) {
            return yield* new LocationExpired({ address, url: found.url, expiredAt: found.expiresAt })
          }
          return found
        }
        return yield* new LocationNotFound({
          address,
          reason:
            nodes.length === 0
              ? "the gateway has no record signed by it"
              : "no record signed by it carries a valid Url and Time-To-Live"
        })
      })

    const resolve = (address: string): Effect.Effect<SchedulerLocation, ResolveError> =>
      Effect.gen(function* () {
        const gatewayUrl = options.gatewayUrl
        if (gatewayUrl === undefined) {
          return yield* new LocationNotFound({ address, reason: "this node has no gateway (--gateway-url none)" })
        }
        const now = yield* Clock.currentTimeMillis
        const cached = cache.get(address)
        if (cached !== undefined && cached.expiresAt > now) return cached
        cache.delete(address)
        const found = yield* lookup(gatewayUrl, address)
        // bounded: the oldest entry goes first (a Map iterates in insertion order)
        if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string)
        cache.set(address, found)
        return found
      })

    return Location.of({ address: wallet.address, publish, resolve })
  })

/**
 * Publishes `url` now and keeps it published: a fiber of the scope publishes again every half TTL, and after a
 * failure (logged as a warning) retries every `retryMs` [60,000 ms, at most the half TTL] until one succeeds.
 * Signed by `wallet`, by default the node's.
 * Fails at once with `InvalidLocation` for a bad URL or TTL; upload failures never fail it.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect, Layer } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { Location } from "effect-scheduler-registry/node"
 *
 * const published = Layer.scopedDiscard(Location.keepPublished({ url: "https://su.example.com" })).pipe(
 *   Layer.provide(Location.layer({ uploadUrl: "https://up.arweave.net" })),
 *   Layer.provide(Layer.merge(FetchHttpClient.layer, Wallet.layerGenerate))
 * )
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const keepPublished = (options: {
  readonly url: string
  readonly ttlMs?: number | undefined
  readonly retryMs?: number | undefined
  readonly wallet?: Wallet["Type"] | undefined
}): Effect.Effect<void, InvalidLocation, Location | Scope.Scope> =>
  Effect.gen(function* () {
    const location = yield* Location
    const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS
    const origin = originOf(options.url)
    if (Either.isLeft(origin)) return yield* new InvalidLocation({ reason: origin.left })
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
      return yield* new InvalidLocation({ reason: `the TTL must be a positive integer of ms, got ${ttlMs}` })
    }
    const half = Math.max(1, Math.floor(ttlMs / 2))
    const retry = Math.min(options.retryMs ?? 60_000, half)
    const once = location.publish(origin.right, ttlMs, options.wallet).pipe(
      Effect.tap((p) => Effect.logInfo(`published Scheduler-Location ${p.id}: ${p.url} for ${p.ttlMs} ms`)),
      Effect.as(half),
      Effect.catchAll((error) => Effect.as(Effect.logWarning(`${error.message}; retrying in ${retry} ms`), retry))
    )
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(once, (wait) => Effect.sleep(Duration.millis(wait)))))
  })

/**
 * `make` as a Layer.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { Location } from "effect-scheduler-registry/node"
 *
 * const location = Location.layer({ gatewayUrl: "https://arweave.net" }).pipe(
 *   Layer.provide(Layer.merge(FetchHttpClient.layer, Wallet.layerGenerate))
 * )
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Location, never, HttpClient.HttpClient | Wallet> =>
  Layer.effect(Location, make(options))

/**
 * `layer` with its options from a `Config`, e.g. `Config.all({ gatewayUrl: Config.string("SU_GATEWAY_URL") })`.
 * Fails with `ConfigError` when the config does not load.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Config, Layer } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { Location } from "effect-scheduler-registry/node"
 *
 * const location = Location.layerConfig({ uploadUrl: Config.string("SU_UPLOAD_URL") }).pipe(
 *   Layer.provide(Layer.merge(FetchHttpClient.layer, Wallet.layerGenerate))
 * )
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<Location, ConfigError.ConfigError, HttpClient.HttpClient | Wallet> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
