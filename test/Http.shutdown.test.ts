/**
 * The edges of the server: a drained shutdown (new requests and kept-alive connections get 503 with
 * `connection: close`, requests in flight finish, then the node stops), a 413 every client sees (`fetch`,
 * `http.request`, declared or streamed bodies), and requests that stall timed out with 408.
 */
import * as NodeHttp from "node:http"
import * as Net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Scope } from "effect"
import { messageItem } from "./fixtures/dataItems.js"
import { startNode } from "./fixtures/node.js"
import { spawn } from "./fixtures/su.js"

const NODE_ADDRESS = "b1ayEFhXXqrS30fIn5k8ARPglHDKWXkVp_0wbTwo5UI"

interface Answer {
  readonly status: number
  readonly headers: NodeHttp.IncomingHttpHeaders
  readonly body: string
  readonly reusedSocket: boolean
}

/** Reads a `http.request`'s answer whole; a socket error becomes `status: 0` with the error code as body. */
const answer = (req: NodeHttp.ClientRequest): Promise<Answer> =>
  new Promise((resolve) => {
    req.once("response", (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        body += chunk
      })
      res.once("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reusedSocket: req.reusedSocket })
      )
    })
    req.once("error", (error: NodeJS.ErrnoException) =>
      resolve({ status: 0, headers: {}, body: error.code ?? error.message, reusedSocket: req.reusedSocket })
    )
  })

/** `GET url` through `agent` (keep-alive agents reuse their idle socket). */
const get = (url: string, agent: NodeHttp.Agent) => Effect.promise(() => answer(NodeHttp.get(url, { agent })))

/** What a raw socket receives after writing `text`, until the server ends the connection. */
const raw = (port: number, text: string) =>
  Effect.promise(
    () =>
      new Promise<string>((resolve) => {
        let received = ""
        const socket = Net.connect(port, "127.0.0.1", () => socket.write(text))
        socket.setEncoding("utf8")
        socket.on("data", (chunk: string) => {
          received += chunk
        })
        socket.once("close", () => resolve(received))
        socket.once("error", () => {})
      })
  )

describe("Http: shutdown, body limits and timeouts", () => {
  it.live("shutdown: kept-alive and new connections get 503 with connection: close; in-flight requests finish", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const node = yield* Scope.extend(startNode({ shutdownGraceMs: 30_000 }), scope)
      const pid = yield* spawn(node.url, NODE_ADDRESS)
      const keepAlive = new NodeHttp.Agent({ keepAlive: true, maxSockets: 1 })
      yield* Effect.addFinalizer(() => Effect.sync(() => keepAlive.destroy()))
      expect((yield* get(`${node.url}/`, keepAlive)).status).toBe(200)

      // in flight: a message whose body has not all arrived when the shutdown starts
      const item = (yield* Effect.promise(() => messageItem(pid, 1))).getRaw()
      const inFlight = NodeHttp.request(`${node.url}/`, {
        method: "POST",
        headers: { "content-type": "application/octet-stream", "content-length": item.byteLength },
        agent: false
      })
      const inFlightAnswer = answer(inFlight)
      inFlight.write(item.subarray(0, 100))
      // the request is in the node's hands once its body is being read: a new connection still gets 200 before
      expect((yield* get(`${node.url}/`, new NodeHttp.Agent())).status).toBe(200)

      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      // poll until the node refuses: every answer meanwhile is 200 (still serving) or 503 (draining)
      let refused: Answer | undefined
      while (refused === undefined) {
        const res = yield* get(`${node.url}/`, new NodeHttp.Agent())
        expect([200, 503], res.body).toContain(res.status)
        if (res.status === 503) refused = res
      }
      expect(refused.headers.connection).toBe("close")
      expect(JSON.parse(refused.body)).toEqual({ error: "The scheduler unit is shutting down" })

      // the kept-alive connection is still open and answered, not reset
      const late = yield* get(`${node.url}/`, keepAlive)
      expect(late.reusedSocket).toBe(true)
      expect(late.status, late.body).toBe(503)
      expect(late.headers.connection).toBe("close")

      // the request in flight finishes, with connection: close; then the node stops
      expect(Option.isNone(yield* Fiber.poll(closing))).toBe(true)
      inFlight.end(item.subarray(100))
      const finished = yield* Effect.promise(() => inFlightAnswer)
      expect(finished.status, finished.body).toBe(200)
      expect(JSON.parse(finished.body).id).toBeTypeOf("string")
      expect(finished.headers.connection).toBe("close")
      yield* Fiber.join(closing)
      const after = yield* get(`${node.url}/`, new NodeHttp.Agent())
      expect(after).toMatchObject({ status: 0, body: "ECONNREFUSED" })
    }).pipe(Effect.scoped)
  )

  it.scopedLive("a body over the limit gets 413 in every client: fetch and http.request, declared or streamed", () =>
    Effect.gen(function* () {
      const node = yield* startNode({ bodyLimit: 1024 * 1024 })
      const body = new Uint8Array(3 * 1024 * 1024).fill(7)
      // fetch sends a declared length and reads the answer only once it has sent the body, or fails with EPIPE
      const fetched = yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        () =>
          Effect.promise(() =>
            fetch(`${node.url}/`, { method: "POST", body }).then(
              async (res) => ({
                status: res.status,
                connection: res.headers.get("connection"),
                body: await res.text()
              }),
              (error: Error) => ({ status: 0, connection: null, body: String(error.cause ?? error) })
            )
          ),
        { concurrency: 5 }
      )
      for (const res of fetched) {
        expect(res.status, res.body).toBe(413)
        expect(res.connection).toBe("close")
        expect(JSON.parse(res.body).error).toContain(`${body.byteLength} bytes`)
      }
      // streamed (chunked, no length): read past the limit and dropped, then 413
      const streamed = yield* Effect.promise(() =>
        fetch(`${node.url}/`, {
          method: "POST",
          body: new ReadableStream({
            start(controller) {
              for (let i = 0; i < 12; i++) controller.enqueue(body.subarray(0, 256 * 1024))
              controller.close()
            }
          }),
          duplex: "half"
        } as RequestInit).then(async (res) => ({ status: res.status, body: await res.text() }))
      )
      expect(streamed.status, streamed.body).toBe(413)
      // Node's own client, which writes the whole body before it reads
      const req = NodeHttp.request(`${node.url}/`, { method: "POST", agent: false })
      const answered = answer(req)
      req.end(body)
      expect((yield* Effect.promise(() => answered)).status).toBe(413)
    })
  )

  it.scopedLive("a request whose headers or body stall gets 408 and its connection is closed", () =>
    Effect.gen(function* () {
      const node = yield* startNode({ headersTimeoutMs: 300, requestTimeoutMs: 600 })
      const headers = yield* raw(node.port, "GET / HTTP/1.1\r\nHost: su\r\nX-Slow: ")
      expect(headers).toMatch(/^HTTP\/1\.1 408 /)
      expect(headers).toContain("connection: close")
      expect(headers).toContain('{"error":"The request did not arrive in time (see --request-timeout)"}')
      const body = yield* raw(node.port, "POST / HTTP/1.1\r\nHost: su\r\nContent-Length: 1000\r\n\r\nonly a part")
      expect(body).toMatch(/^HTTP\/1\.1 408 /)
      // the node still serves
      const ok = yield* get(`${node.url}/`, new NodeHttp.Agent())
      expect(ok.status).toBe(200)
    })
  )
})
