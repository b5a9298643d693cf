/**
 * The node's `http.Server`: Node's own header and request timeouts, JSON bodies for the errors Node's parser
 * answers itself, and a drain on close (`drain.ts`): every new request, on a new or a kept-alive connection, gets
 * 503 with `connection: close` and the client's next connection is refused; requests in flight finish (at most
 * `graceMs`, then every connection is closed). The drain stops listening itself, so `NodeHttpServer`'s own close
 * finds nothing left to do.
 */
import * as NodeHttp from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Runtime } from "effect"
import { loggedPath, REQUEST_ID_HEADER, requestId } from "./access-log.js"
import * as Drain from "./drain.js"

/** The server's settings; times in ms (see `NodeConfig`). */
export interface ServerOptions {
  readonly port: number
  readonly host: string
  readonly graceMs: number
  readonly headersTimeoutMs: number
  readonly requestTimeoutMs: number
}

/** The body of requests that arrive while the node shuts down. */
const SHUTTING_DOWN = JSON.stringify({ error: "The scheduler unit is shutting down" })

/** Logs a line of the access log (`access-log.ts`) for an answer Node gives outside the API. */
type LogAnswer = (line: {
  readonly method?: string | undefined
  readonly path?: string | undefined
  readonly status: number
  readonly bytes: number
  readonly requestId: string
}) => void

/** The access-log line of an answer given outside the API, through the node's logger (`runtime`'s). */
const logAnswer =
  (runtime: Runtime.Runtime<never>): LogAnswer =>
  (line) => {
    const message = `${line.method ?? "-"} ${line.path ?? "-"} ${line.status}`
    Runtime.runFork(runtime)(Effect.annotateLogs(Effect.logInfo(message), { ...line, durationMs: 0 }))
  }

/** A status line, JSON body and open CORS written straight to a socket (no `ServerResponse` exists). */
const rawResponse = (status: number, reason: string, error: string, log: LogAnswer): string => {
  const body = JSON.stringify({ error })
  const id = requestId(undefined)
  log({ status, bytes: Buffer.byteLength(body), requestId: id })
  return (
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\naccess-control-allow-origin: *\r\n` +
    `${REQUEST_ID_HEADER}: ${id}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  )
}

/**
 * Errors Node's HTTP parser answers itself get the API's JSON error body, open CORS, an `X-Request-Id` and an
 * access-log line too, instead of a bare status line: headers or URL over Node's limit (431), a request that did
 * not arrive within the header or request timeout (408), anything malformed (400). A socket whose response has
 * started is closed instead.
 */
const onClientError = (log: LogAnswer) => (error: NodeJS.ErrnoException, socket: import("node:stream").Duplex) => {
  const started = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true
  if (!socket.writable || started) return socket.destroy()
  socket.end(
    error.code === "HPE_HEADER_OVERFLOW"
      ? rawResponse(431, "Request Header Fields Too Large", "The request's URL or headers are too large", log)
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? rawResponse(408, "Request Timeout", "The request did not arrive in time (see --request-timeout)", log)
        : rawResponse(400, "Bad Request", "Malformed HTTP request", log)
  )
}

/**
 * Creates the server and its drain (`drain.ts`). Once the API's handler is gone (the serving layer has closed) the
 * server's own listener is the only one left: it hands each request to the drain, which holds it, then answers
 * 503 with `connection: close` (and logs it, as the access log does).
 */
const make = (options: ServerOptions, log: LogAnswer) => {
  const shortest = Math.min(options.headersTimeoutMs, options.requestTimeoutMs)
  const server = NodeHttp.createServer({
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    // Node checks the two timeouts every interval (30 s by default): often enough to honour the shorter one
    connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(shortest / 4)))
  })
  server.on("clientError", onClientError(log))
  const drain = Drain.make(server, options, (request, response) => {
    const id = requestId(request.headers[REQUEST_ID_HEADER] as string | undefined)
    response
      .writeHead(503, { "content-type": "application/json", connection: "close", [REQUEST_ID_HEADER]: id })
      .end(SHUTTING_DOWN)
    const path = loggedPath(request.url ?? "/")
    log({ method: request.method, path, status: 503, bytes: Buffer.byteLength(SHUTTING_DOWN), requestId: id })
  })
  server.on("request", (request: NodeHttp.IncomingMessage, response: NodeHttp.ServerResponse) => {
    drain.track(request, response)
    // this listener is the only one once the API's handler is removed, before the drain runs
    if (server.listenerCount("request") === 1) drain.take(request, response)
  })
  return { server, drain: drain.drain }
}

/**
 * The `HttpServer` on Node, listening on `options.port` and `options.host`, drained when its scope closes (see
 * the module's docstring). Fails with `ServeError` if it cannot listen.
 */
export const layer = (options: ServerOptions) =>
  Layer.unwrapEffect(
    Effect.map(Effect.runtime<never>(), (runtime) => {
      const { drain, server } = make(options, logAnswer(runtime))
      // built after the listening server, so released before it: the drain runs before `server.close()`
      return Layer.provideMerge(
        Layer.scopedDiscard(Effect.addFinalizer(() => drain)),
        NodeHttpServer.layer(() => server, { port: options.port, host: options.host })
      )
    })
  )
