/**
 * The access log: one line per request with method, path (id query values dropped), status, bytes, duration
 * and request id, echoed in `X-Request-Id`; bad requests at Info, never Error.
 */
import * as Net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect, HashMap, Logger, LogLevel } from "effect"
import { loggedPath, requestId } from "../src/node/internal/http/access-log.js"
import { request, startNode } from "./fixtures/node.js"
import { spawn } from "./fixtures/su.js"

const NODE_ADDRESS = "b1ayEFhXXqrS30fIn5k8ARPglHDKWXkVp_0wbTwo5UI"

interface Line {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** A node whose log lines are collected into `lines` (the access log's and any other). */
const loggedNode = (lines: Array<Line>) =>
  startNode().pipe(
    Effect.provide(
      Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ annotations, logLevel, message }) => {
          lines.push({
            level: logLevel.label,
            message: Array.isArray(message) ? message.join(" ") : String(message),
            annotations: Object.fromEntries(HashMap.toEntries(annotations))
          })
        })
      )
    )
  )

/** The access-log lines of `lines` (those with a status). */
const accessLines = (lines: ReadonlyArray<Line>) => lines.filter((l) => l.annotations.status !== undefined)

describe("Http: access log", () => {
  it("loggedPath drops the values of id parameters and keeps the rest; requestId keeps a valid client id", () => {
    expect(loggedPath("/?process-id=abc&assign=def&exclude=a,b&base-layer")).toBe(
      "/?process-id&assign&exclude&base-layer"
    )
    expect(loggedPath("/P?process-id=abc&from=5&limit=10")).toBe("/P?process-id&from=5&limit=10")
    expect(loggedPath("/~scheduler@1.0/schedule?target=P&from=0")).toBe("/~scheduler@1.0/schedule?target&from=0")
    expect(loggedPath("/timestamp")).toBe("/timestamp")
    expect(loggedPath(`/${"x".repeat(300)}`)).toBe(`/${"x".repeat(199)}…`)
    expect(requestId("client-id_1.2:3")).toBe("client-id_1.2:3")
    expect(requestId("has space")).toMatch(/^[0-9a-f-]{36}$/)
    expect(requestId("x".repeat(129))).toMatch(/^[0-9a-f-]{36}$/)
    expect(requestId(undefined)).toMatch(/^[0-9a-f-]{36}$/)
  })

  it.scopedLive("one line per request with method, path, status, bytes, duration and the echoed request id", () =>
    Effect.gen(function* () {
      const lines: Array<Line> = []
      const node = yield* loggedNode(lines)
      const ok = yield* request(`${node.url}/`, { headers: { "x-request-id": "req-42" } })
      expect(ok.status).toBe(200)
      expect(ok.headers.get("x-request-id")).toBe("req-42")
      const [line] = accessLines(lines)
      expect(line).toEqual({
        level: "INFO",
        message: "GET / 200",
        annotations: {
          method: "GET",
          path: "/",
          status: 200,
          bytes: Buffer.byteLength(ok.text),
          durationMs: expect.any(Number),
          requestId: "req-42"
        }
      })
      expect(line!.annotations.durationMs).toBeGreaterThanOrEqual(0)

      // an invalid client id is replaced by a fresh one, echoed and logged alike
      const replaced = yield* request(`${node.url}/timestamp`, { headers: { "x-request-id": "no spaces allowed" } })
      const id = replaced.headers.get("x-request-id")
      expect(id).toMatch(/^[0-9a-f-]{36}$/)
      expect(accessLines(lines).at(-1)?.annotations.requestId).toBe(id)

      // a page read: the process id in the query is dropped, the rest of the query kept
      const pid = yield* spawn(node.url, NODE_ADDRESS)
      const page = yield* request(`${node.url}/${pid}?process-id=${pid}&from=5&limit=10`)
      expect(page.status).toBe(200)
      expect(accessLines(lines).at(-1)).toMatchObject({
        message: `GET /${pid}?process-id&from=5&limit=10 200`,
        annotations: { path: `/${pid}?process-id&from=5&limit=10`, bytes: Buffer.byteLength(page.text) }
      })
      // every request so far has had exactly one line
      expect(accessLines(lines)).toHaveLength(4)
    })
  )

  it.scopedLive("bad requests are logged at Info with their status and X-Request-Id, never at Error", () =>
    Effect.gen(function* () {
      const lines: Array<Line> = []
      const node = yield* loggedNode(lines)
      const bad = [
        yield* request(`${node.url}/not-an-id`),
        yield* request(`${node.url}/?process-id=abc&assign=def`, { method: "POST" }),
        yield* request(`${node.url}/`, { method: "POST", body: "garbage" }),
        yield* request(`${node.url}/`, { method: "POST", body: new Uint8Array(2 * 1024 * 1024) }),
        yield* request(`${node.url}/nowhere/at/all`),
        yield* request(`${node.url}/timestamp`, { method: "DELETE" })
      ]
      expect(bad.map((r) => r.status)).toEqual([400, 400, 400, 413, 404, 405])
      // what Node's parser refuses before there is a request is answered and logged too, method and path unknown
      const malformed = yield* Effect.promise(
        () =>
          new Promise<string>((resolve) => {
            let received = ""
            const socket = Net.connect(node.port, "127.0.0.1", () => socket.write("NOT HTTP AT ALL\r\n\r\n"))
            socket.on("data", (chunk) => {
              received += chunk
            })
            socket.once("close", () => resolve(received))
          })
      )
      expect(malformed).toMatch(/^HTTP\/1\.1 400 /)
      const malformedId = /x-request-id: (\S+)/.exec(malformed)?.[1]
      // the line is forked as the answer is written: poll for it
      while (!lines.some((l) => l.annotations.requestId === malformedId)) yield* Effect.yieldNow()
      expect(lines.find((l) => l.annotations.requestId === malformedId)).toMatchObject({
        level: "INFO",
        message: "- - 400",
        annotations: { status: 400, durationMs: 0 }
      })
      for (const r of bad) expect(r.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/)
      const logged = accessLines(lines).slice(0, 6)
      expect(logged.map((l) => l.annotations.status)).toEqual([400, 400, 400, 413, 404, 405])
      expect(logged.map((l) => l.annotations.path)).toEqual([
        "/not-an-id",
        "/?process-id&assign",
        "/",
        "/",
        "/nowhere/at/all",
        "/timestamp"
      ])
      expect(new Set(logged.map((l) => l.level))).toEqual(new Set([LogLevel.Info.label]))
      expect(lines.filter((l) => l.level === LogLevel.Error.label)).toEqual([])
    })
  )
})
