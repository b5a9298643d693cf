/**
 * Middleware around the HttpApi: uniform `{"error": …}` bodies for what the endpoints do not produce themselves
 * (decode failures, unknown routes, wrong methods, defects), and request metrics.
 */
import {
  HttpApi,
  type HttpApiError,
  type HttpApp,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Cause, Clock, Effect, Metric, MetricLabel, Option } from "effect"
import * as Metrics from "../../../Metrics.js"
import { Api, BadRequest } from "../../Api.js"

interface Route {
  readonly method: string
  readonly pattern: RegExp
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** A router path (`/processes/:processId`) as a regular expression over request paths. */
const pathPattern = (path: string): RegExp =>
  new RegExp(
    `^${path
      .split("/")
      .map((segment) => (segment.startsWith(":") ? "[^/]+" : escapeRegExp(segment)))
      .join("/")}/?$`
  )

/** Every (method, path) of the API, plus the documentation pages served beside it. */
const routes = (extraGets: ReadonlyArray<string>): ReadonlyArray<Route> => {
  const out: Array<Route> = extraGets.map((path) => ({ method: "GET", pattern: pathPattern(path) }))
  HttpApi.reflect(Api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      out.push({ method: endpoint.method, pattern: pathPattern(endpoint.path) })
    }
  })
  return out
}

const pathOf = (url: string): string => {
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}

/** A path as error messages quote it: at most 200 characters, so a long path is not echoed back whole. */
const quoted = (path: string): string =>
  path.length <= 200 ? path : `${path.slice(0, 200)}… (${path.length} characters)`

/** The issues of a decode failure as one line: `from: expected a non-negative integer, got "abc"`. */
const describeDecodeError = (error: HttpApiError.HttpApiDecodeError): string => {
  // an optional parameter fails once per union member ("…", then "Expected undefined"): keep one per path
  const byPath = new Map<string, string>()
  for (const issue of error.issues) {
    const path = issue.path.map(String).join(".")
    if (!byPath.has(path)) byPath.set(path, path === "" ? issue.message : `${path}: ${issue.message}`)
  }
  return `Invalid request: ${byPath.size === 0 ? error.message : [...byPath.values()].join("; ")}`
}

const isDecodeError = (u: unknown): u is HttpApiError.HttpApiDecodeError =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "HttpApiDecodeError"

/**
 * The API-level middleware: a decode failure of a path, query or header becomes `BadRequest` (400); a request no
 * route matches becomes 405 with `Allow` when its path exists under another method, else 404; a defect is logged
 * and becomes `InternalError` (500). Typed endpoint errors and interruptions pass through.
 */
export const errors = (extraGets: ReadonlyArray<string>) => {
  const table = routes(extraGets)
  return (app: HttpApp.Default): HttpApp.Default<BadRequest, HttpServerRequest.HttpServerRequest> =>
    Effect.catchAllCause(app, (cause) => {
      const failure = Cause.failureOption(cause as Cause.Cause<unknown>)
      if (Option.isSome(failure)) {
        const error = failure.value
        if (isDecodeError(error)) return Effect.fail(new BadRequest({ error: describeDecodeError(error) }))
        if (HttpServerError.isServerError(error) && error._tag === "RouteNotFound") {
          return Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
            const path = pathOf(request.url)
            const allowed = [...new Set(table.filter((r) => r.pattern.test(path)).map((r) => r.method))]
            // the path's shape has a route for this very method, yet the router found none: the path itself does
            // not decode (bad percent-encoding), which is the client's error, not a wrong method
            if (allowed.includes(request.method)) {
              return HttpServerResponse.unsafeJson(
                { error: `Invalid request path ${quoted(path)}: it is not valid percent-encoded UTF-8` },
                { status: 400 }
              )
            }
            return allowed.length === 0
              ? HttpServerResponse.unsafeJson(
                  { error: `Not found: ${request.method} ${quoted(path)}` },
                  { status: 404 }
                )
              : HttpServerResponse.unsafeJson(
                  {
                    error: `Method ${request.method} is not allowed on ${quoted(path)}; allowed: ${allowed.join(", ")}`
                  },
                  { status: 405, headers: { allow: allowed.join(", ") } }
                )
          })
        }
        return Effect.failCause(cause)
      }
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      return Effect.as(
        Effect.logError("request failed with a defect", cause),
        HttpServerResponse.unsafeJson({ error: "Internal error (see the node's log)" }, { status: 500 })
      )
    })
}

/** Server middleware: counts every response by method and status, and times it (ms). */
export const metrics = <E, R>(
  app: HttpApp.Default<E, R>
): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.flatMap(Effect.zip(HttpServerRequest.HttpServerRequest, Clock.currentTimeMillis), ([request, start]) =>
    Effect.tap(app, (response) =>
      Effect.flatMap(Clock.currentTimeMillis, (end) => {
        const status = String(response.status)
        const counted = Metric.increment(
          Metric.taggedWithLabels(Metrics.httpRequests, [
            MetricLabel.make("method", request.method),
            MetricLabel.make("status", status)
          ])
        )
        const timed = Metric.update(Metric.tagged(Metrics.httpRequestDuration, "method", request.method), end - start)
        return Effect.zipRight(counted, timed)
      })
    )
  )
