/**
 * Redirects to the scheduler unit that hosts a process, as the legacy SU router (`servers/su/src/main.rs`,
 * `…/core/router.rs`: `307`, `Location: <scheduler url><original path + query>`, empty body) and HyperBEAM's
 * `find_server` do. A request for a process this node does not host fails inside the handlers with `NotHosted`;
 * `settle` turns it into the response:
 *
 * 0. an offline node (no gateway) or one without a `Location` service never redirects: the original 400;
 * 1. the SU that schedules the process: the `Scheduler` named by the posted Process item, else the `Scheduler`
 *    tag of the process found through the gateway's GraphQL (unknown, or one of this node's own identities: the
 *    original 400; gateway unreachable: 503);
 * 2. that address's `Scheduler-Location` (`Location.resolve`, cached for its TTL; none or expired: 400;
 *    lookup failure: 503);
 * 3. `307` to `<url><path>?<query>&redirected-by=<this node's address>`.
 *
 * Loops get `508 Loop Detected`: a location pointing at this node itself (its `--public-url`, or the host the
 * client used), and any request that already carries `redirected-by` (another SU sent it here, and this one
 * would send it on: A → B → A, or a longer chain). With one gateway every node agrees where a process lives, so
 * a correct redirect needs one hop; a second means the nodes disagree.
 */
import { type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Data, Effect, Option } from "effect"
import * as DataItem from "../../../DataItem.js"
import type * as Gateway from "../../../network/Gateway.js"
import type * as Location from "../../../network/Location.js"
import { BadRequest, Unavailable } from "../../Api.js"

/** The query parameter a redirecting node adds: its own address. */
export const REDIRECTED_BY = "redirected-by"

/**
 * `processId` is not hosted here: `scheduler` is the SU its Process item names when known, `error` the 400's
 * text when no redirect applies.
 */
export class NotHosted extends Data.TaggedError("NotHosted")<{
  readonly processId: string
  readonly scheduler?: string | undefined
  readonly error: string
}> {}

/** What `settle` needs: the gateway, the location service (none: never redirect), the node's identities. */
export interface Deps {
  readonly gateway: Gateway.Gateway["Type"]
  readonly location: Option.Option<Location.Location["Type"]>
  readonly addresses: ReadonlySet<string>
  /** The node's own address, sent as `redirected-by`. */
  readonly address: string
  /** The node's published URL (`--public-url`), to refuse a redirect to itself. */
  readonly publicUrl?: string | undefined
  /** Processes' `Scheduler` tags already looked up (a tag never changes): at most 10,000, the oldest out first. */
  readonly known: Map<string, string>
}

const loop = (error: string) => HttpServerResponse.unsafeJson({ error }, { status: 508 })

/** The host (`name:port`) of `url`, or undefined. */
const hostOf = (url: string): string | undefined => {
  try {
    return new URL(url).host
  } catch {
    return undefined
  }
}

/** How many processes' `Scheduler` tags `Deps.known` keeps. */
const KNOWN_SIZE = 10_000

/** The address that schedules `processId`, from its `Scheduler` tag on the gateway; undefined when unknown. */
const schedulerOf = ({ gateway, known }: Deps, processId: string): Effect.Effect<string | undefined, Unavailable> =>
  gateway.transaction(processId).pipe(
    Effect.map((tx) => DataItem.tagValue(tx, "Scheduler")),
    Effect.tap((scheduler) => {
      if (scheduler === undefined) return
      if (known.size >= KNOWN_SIZE) known.delete(known.keys().next().value as string)
      known.set(processId, scheduler)
    }),
    Effect.catchTags({
      TransactionNotFound: () => Effect.succeed(undefined),
      GatewayOffline: () => Effect.succeed(undefined),
      GatewayUnavailable: (e) => Effect.fail(new Unavailable({ error: e.message }))
    })
  )

/** The redirect (or 508) for `notHosted`, else its 400; 503 when a lookup cannot answer. */
export const respond = (
  deps: Deps,
  request: HttpServerRequest.HttpServerRequest,
  notHosted: NotHosted
): Effect.Effect<HttpServerResponse.HttpServerResponse, BadRequest | Unavailable> =>
  Effect.gen(function* () {
    const refuse = (detail?: string) =>
      new BadRequest({ error: detail === undefined ? notHosted.error : `${notHosted.error}: ${detail}` })
    // offline (no gateway) or no location service: nothing to look up, answer as before
    if (Option.isNone(deps.location) || deps.gateway.url === undefined) return yield* refuse()
    const scheduler =
      notHosted.scheduler ?? deps.known.get(notHosted.processId) ?? (yield* schedulerOf(deps, notHosted.processId))
    if (scheduler === undefined || deps.addresses.has(scheduler)) return yield* refuse()
    const target = new URL(request.url, "http://placeholder")
    const from = target.searchParams.get(REDIRECTED_BY)
    if (from !== null) {
      return loop(
        `Redirect loop: ${from} sent this request here, but process ${notHosted.processId} is scheduled by ` +
          `${scheduler}, which this scheduler unit does not host`
      )
    }
    const found = yield* deps.location.value.resolve(scheduler).pipe(
      Effect.catchTags({
        LocationNotFound: (e) => Effect.fail(refuse(e.message)),
        LocationExpired: (e) => Effect.fail(refuse(e.message)),
        LookupUnavailable: (e) => Effect.fail(new Unavailable({ error: e.message }))
      })
    )
    const own = [deps.publicUrl === undefined ? undefined : hostOf(deps.publicUrl), request.headers.host]
    if (own.includes(hostOf(found.url))) {
      return loop(
        `Redirect loop: process ${notHosted.processId} is scheduled by ${scheduler}, whose Scheduler-Location ` +
          `${found.url} is this scheduler unit`
      )
    }
    target.searchParams.append(REDIRECTED_BY, deps.address)
    return HttpServerResponse.empty({
      status: 307,
      headers: { location: `${found.url}${target.pathname}${target.search}` }
    })
  })

/** `effect`, with a `NotHosted` failure answered by `respond`. */
export const settle =
  (deps: Deps, request: HttpServerRequest.HttpServerRequest) =>
  <A, E>(
    effect: Effect.Effect<A, E | NotHosted>
  ): Effect.Effect<A | HttpServerResponse.HttpServerResponse, Exclude<E, NotHosted> | BadRequest | Unavailable> =>
    Effect.catchIf(
      effect,
      (e): e is NotHosted => e instanceof NotHosted,
      (e) => respond(deps, request, e)
    ) as Effect.Effect<A | HttpServerResponse.HttpServerResponse, Exclude<E, NotHosted> | BadRequest | Unavailable>
