/**
 * Reads a request body up to a limit. Over the limit the request is answered 413 with `connection: close`, after
 * the body has been read and dropped, up to `DISCARD_LIMIT` bytes past the limit: a client that is still
 * sending when the server closes gets EPIPE or ECONNRESET instead of the 413 (undici's `fetch` does, often), so
 * the server lets it finish. A body declared (`content-length`) or found larger than that is refused at once.
 */
import * as NodeHttp from "node:http"
import { HttpApp, type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Effect, Stream } from "effect"
import { BadRequest, PayloadTooLarge } from "../../Api.js"

/** Marks the response `connection: close`: the unread rest of the body must not be parsed as a next request. */
const closeConnection = HttpApp.appendPreResponseHandler((_request, response) =>
  Effect.succeed(HttpServerResponse.setHeader(response, "connection", "close"))
)

/** How many bytes past the limit are read and dropped so that the client sees the 413 (16 MiB). */
export const DISCARD_LIMIT = 16 * 1024 * 1024

const unreadable = (reason: string) => new BadRequest({ error: `Cannot read the body: ${reason}` })

/** The Node request behind `request`, when it is served by `NodeHttpServer`. */
const nodeRequest = (request: HttpServerRequest.HttpServerRequest): NodeHttp.IncomingMessage | undefined => {
  const source = NodeHttpServerRequest.toIncomingMessage(request)
  return source instanceof NodeHttp.IncomingMessage ? source : undefined
}

/**
 * Reads a Node request's body. Past `limit` it drops what it read and keeps reading, to the end of the body or
 * to `DISCARD_LIMIT` bytes more, where it pauses the request (not destroying it) and fails.
 */
const readNode = (source: NodeHttp.IncomingMessage, limit: number) =>
  Effect.async<Uint8Array, "too large" | BadRequest>((resume) => {
    let chunks: Array<Buffer> = []
    let size = 0
    const stop = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    }
    function onData(chunk: Buffer) {
      size += chunk.byteLength
      if (size <= limit) return void chunks.push(chunk)
      chunks = []
      if (size > limit + DISCARD_LIMIT) {
        stop()
        source.pause()
        resume(Effect.fail("too large"))
      }
    }
    function onEnd() {
      stop()
      resume(size > limit ? Effect.fail("too large") : Effect.succeed(new Uint8Array(Buffer.concat(chunks, size))))
    }
    function onError(error: Error) {
      stop()
      resume(Effect.fail(unreadable(error.message)))
    }
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("error", onError)
    return Effect.sync(stop)
  })

/** Reads any other platform's request body as a stream, failing once it passes `limit`. */
const readStream = (request: HttpServerRequest.HttpServerRequest, limit: number) => {
  const chunks: Array<Uint8Array> = []
  return request.stream.pipe(
    Stream.runFoldEffect(0, (size, chunk): Effect.Effect<number, "too large"> => {
      if (size + chunk.byteLength > limit) return Effect.fail("too large")
      chunks.push(chunk)
      return Effect.succeed(size + chunk.byteLength)
    }),
    Effect.map((size) => new Uint8Array(Buffer.concat(chunks, size))),
    Effect.catchTag("RequestError", (e) => Effect.fail(unreadable(e.message)))
  )
}

/** The whole body of `request`, at most `limit` bytes; over it, `PayloadTooLarge` and `connection: close`. */
export const read = (
  request: HttpServerRequest.HttpServerRequest,
  limit: number
): Effect.Effect<Uint8Array, PayloadTooLarge | BadRequest> => {
  const tooLarge = (size: string) =>
    Effect.zipRight(
      closeConnection,
      Effect.fail(
        new PayloadTooLarge({ error: `The body is ${size}; this scheduler unit accepts at most ${limit} bytes` })
      )
    )
  const declared = Number(request.headers["content-length"])
  const source = nodeRequest(request)
  const over = Number.isFinite(declared) && declared > limit
  if (over && (source === undefined || declared > limit + DISCARD_LIMIT)) return tooLarge(`${declared} bytes`)
  const body = source === undefined ? readStream(request, limit) : readNode(source, limit)
  return Effect.catchIf(
    body,
    (e): e is "too large" => e === "too large",
    () => tooLarge(over ? `${declared} bytes` : `over ${limit} bytes`)
  )
}
