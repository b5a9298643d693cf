/**
 * The edges of the server: a drained shutdown (new requests and kept-alive connections get 503 with
 * `connection: close`, requests in flight finish, then the node stops), a 413 every client sees (`fetch`,
 * `http.request`, declared or streamed bodies), and requests that stall timed out with 408.
 */
import * as NodeHttp from "node:http"
import * as Net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Scope } from "effect"
import { bin, listening, scopedBin } from "./fixtures/bin.js"
import { messageItem } from "./fixtures/dataItems.js"
import { agentGet, expectDrained, keepSending } from "./fixtures/keep-sending.js"
import { fixtureWallet, request, startNode, tempDir } from "./fixtures/node.js"
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

/**
 * Keeps two clients sending (one on a keep-alive connection, one on a new connection each time) and a request in
 * flight (its body half sent), starts the shutdown with `stop`, and checks the drain: each client's last answer
 * before its connection is refused is a 503 with `connection: close`, none sees a reset; the request in flight
 * finishes with 200, then the node stops (`stopped`) and refuses connections.
 */
const drainedShutdown = <A, B>(
  url: string,
  pid: string,
  node: {
    readonly stop: Effect.Effect<A>
    readonly running: (started: A) => Effect.Effect<boolean>
    readonly stopped: (started: A) => Effect.Effect<B>
  }
) =>
  Effect.gen(function* () {
    const keepAlive = new NodeHttp.Agent({ keepAlive: true, maxSockets: 1 })
    yield* Effect.addFinalizer(() => Effect.sync(() => keepAlive.destroy()))

    // in flight: a message whose body has not all arrived when the shutdown starts
    const item = (yield* Effect.promise(() => messageItem(pid, 1))).getRaw()
    const inFlight = NodeHttp.request(`${url}/`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream", "content-length": item.byteLength },
      agent: false
    })
    const inFlightAnswer = answer(inFlight)
    yield* Effect.async<void>((resume) => void inFlight.write(item.subarray(0, 100), () => resume(Effect.void)))
    // the node reads a request's body once it has its headers: a later request answered means it has this one
    expect((yield* get(`${url}/`, new NodeHttp.Agent())).status).toBe(200)

    const clients = [
      keepSending(agentGet(keepAlive), `${url}/`, 2),
      keepSending(agentGet(new NodeHttp.Agent()), `${url}/`, 2)
    ]
    yield* Effect.promise(() => Promise.all(clients.map((client) => client.warm)))
    const started = yield* node.stop
    // both are refused while the request in flight keeps the node running
    for (const outcomes of yield* Effect.promise(() => Promise.all(clients.map((client) => client.done)))) {
      expectDrained(outcomes)
    }

    // the node waits for the request in flight, which finishes with connection: close; then the node stops
    expect(yield* node.running(started)).toBe(true)
    inFlight.end(item.subarray(100))
    const finished = yield* Effect.promise(() => inFlightAnswer)
    expect(finished.status, finished.body).toBe(200)
    expect(JSON.parse(finished.body).id).toBeTypeOf("string")
    expect(finished.headers.connection).toBe("close")
    yield* node.stopped(started)
    const after = yield* get(`${url}/`, new NodeHttp.Agent())
    expect(after).toMatchObject({ status: 0, body: "ECONNREFUSED" })
  })

describe("Http: shutdown, body limits and timeouts", () => {
  it.live(
    "shutdown: kept-alive and new connections get 503 with connection: close, then refused; in-flight finish",
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const node = yield* Scope.extend(startNode({ shutdownGraceMs: 30_000 }), scope)
        const pid = yield* spawn(node.url, NODE_ADDRESS)
        yield* drainedShutdown(node.url, pid, {
          stop: Effect.fork(Scope.close(scope, Exit.void)),
          running: (closing) => Effect.map(Fiber.poll(closing), Option.isNone),
          stopped: Fiber.join
        })
      }).pipe(Effect.scoped)
  )

  it.scopedLive(
    "the binary: --log-format json logs each request as a JSON line; fetch sees 413; SIGTERM drains and exits 0",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        fixtureWallet(dir)
        const script = yield* bin
        const child = yield* scopedBin(script, [
          "serve",
          ...["--port", "0", "--data-dir", dir, "--store", "memory", "--gateway-url", "none"],
          ...["--log-format", "json", "--body-limit", "1048576"]
        ])
        const url = yield* Effect.promise(() => listening(child))
        const res = yield* request(`${url}/timestamp`, { headers: { "x-request-id": "child-1" } })
        expect(res.headers.get("x-request-id")).toBe("child-1")
        const logged = () =>
          child
            .stdout()
            .split("\n")
            .filter((line) => line.startsWith("{"))
            .map(
              (line) => JSON.parse(line) as { message: unknown; logLevel: string; annotations: Record<string, unknown> }
            )
        // the line is written as the response goes out: poll the child's output for it
        while (!logged().some((l) => l.annotations.requestId === "child-1")) yield* Effect.yieldNow()
        expect(logged().find((l) => l.annotations.requestId === "child-1")).toMatchObject({
          message: "GET /timestamp 200",
          logLevel: "INFO",
          annotations: { method: "GET", path: "/timestamp", status: 200, bytes: Buffer.byteLength(res.text) }
        })

        // a body well over the limit, declared: fetch reads the answer only once it has sent the body, so a node
        // that closes first makes it fail with EPIPE (a third of these did before the node read and dropped it)
        const body = new Uint8Array(12 * 1024 * 1024).fill(7)
        const fetched = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          () =>
            Effect.promise(() =>
              fetch(`${url}/`, { method: "POST", body }).then(
                async (res) => ({ status: res.status, body: await res.text() }),
                (error: Error & { cause?: { code?: string } }) => ({
                  status: 0,
                  body: error.cause?.code ?? error.message
                })
              )
            ),
          { concurrency: 10 }
        )
        for (const res of fetched) expect(res, res.body).toMatchObject({ status: 413 })

        const pid = yield* spawn(url, NODE_ADDRESS)
        yield* drainedShutdown(url, pid, {
          stop: Effect.sync(() => child.process.kill("SIGTERM")),
          running: () => Effect.sync(() => child.process.exitCode === null),
          stopped: () => Effect.promise(() => child.exit).pipe(Effect.tap((code) => expect(code).toBe(0)))
        })
        expect(child.stdout()).toContain("SU stopped")
      }),
    120_000
  )

  it.scopedLive("a body over the limit gets 413 in every client: fetch and http.request, declared or streamed", () =>
    Effect.gen(function* () {
      const node = yield* startNode({ bodyLimit: 1024 * 1024 })
      const body = new Uint8Array(3 * 1024 * 1024).fill(7)
      // fetch sends a declared length and reads the answer only once it has sent the body, or fails with EPIPE
      const fetched = yield* Effect.forEach(
        Array.from({ length: 10 }, (_, i) => i),
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
