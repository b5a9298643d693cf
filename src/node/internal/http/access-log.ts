/**
 * The access log: one structured log line per request, through Effect's `Logger` (so `--log-format` chooses
 * pretty or JSON lines), and a request id echoed in `X-Request-Id`. Modelled on `@effect/platform`'s
 * `HttpMiddleware.logger`, which logs the whole URL (ids in the query included) and neither the body size nor a
 * request id.
 */
import * as Crypto from "node:crypto"
import { HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Effect } from "effect"

/** The request id header, read from the client and echoed on every response. */
export const REQUEST_ID_HEADER = "x-request-id"

/** A client's request id is kept when it is 1 to 128 of these characters (UUIDs, ULIDs, hex, base64url). */
const VALID_REQUEST_ID = /^[A-Za-z0-9._:+=/-]{1,128}$/

/** The query parameters whose values are ids: the log keeps their names and drops their values. */
const ID_PARAMS: ReadonlySet<string> = new Set(["process-id", "assign", "target", "exclude"])

/** The longest path logged; a longer one is cut and marked. */
const MAX_LOGGED_PATH = 200

/** The client's `X-Request-Id` when it is valid, else a new UUID. */
export const requestId = (header: string | undefined): string =>
  header !== undefined && VALID_REQUEST_ID.test(header) ? header : Crypto.randomUUID()

/**
 * The request's path and query as logged: the values of id parameters (`process-id`, `assign`, `target`,
 * `exclude`) are dropped, leaving their names (`/?process-id&assign`); other values are kept (`from=…`).
 */
export const loggedPath = (url: string): string => {
  const at = url.indexOf("?")
  const path = at === -1 ? url : url.slice(0, at)
  const query =
    at === -1
      ? ""
      : url
          .slice(at + 1)
          .split("&")
          .filter((pair) => pair !== "")
          .map((pair) => {
            const name = pair.split("=", 1)[0]!
            return ID_PARAMS.has(decodeName(name)) ? name : pair
          })
          .join("&")
  const logged = query === "" ? path : `${path}?${query}`
  return logged.length <= MAX_LOGGED_PATH ? logged : `${logged.slice(0, MAX_LOGGED_PATH)}…`
}

const decodeName = (name: string): string => {
  try {
    return decodeURIComponent(name)
  } catch {
    return name
  }
}

/** The bytes of a response body when known (a stream of unknown length: `undefined`). */
const bodyBytes = (response: HttpServerResponse.HttpServerResponse): number | undefined => {
  const body = response.body
  switch (body._tag) {
    case "Empty":
      return 0
    case "Uint8Array":
      return body.body.byteLength
    case "Raw":
    case "Stream":
      return body.contentLength
    case "FormData":
      return undefined
  }
}

/**
 * Server middleware: takes or makes the request's id, annotates the request's logs with it, and when the
 * response is ready (an error response included) logs one line and adds `X-Request-Id` to it. The line's
 * message is `METHOD path status`; its annotations are `method`, `path` (`loggedPath`), `status`, `bytes`,
 * `durationMs` and `requestId`. Level Info, or Warning for a 5xx: a client's bad request is never an Error.
 */
export const accessLog = <E, R>(
  app: HttpApp.Default<E, R>
): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    const request = yield* HttpServerRequest.HttpServerRequest
    const id = requestId(request.headers[REQUEST_ID_HEADER])
    yield* HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.gen(function* () {
        const durationMs = (yield* Clock.currentTimeMillis) - start
        const path = loggedPath(request.url)
        const line = `${request.method} ${path} ${response.status}`
        const log = response.status >= 500 ? Effect.logWarning(line) : Effect.logInfo(line)
        yield* Effect.annotateLogs(log, {
          method: request.method,
          path,
          status: response.status,
          bytes: bodyBytes(response),
          durationMs,
          requestId: id
        })
        return HttpServerResponse.setHeader(response, REQUEST_ID_HEADER, id)
      })
    )
    return yield* Effect.annotateLogs(app, "requestId", id)
  })
