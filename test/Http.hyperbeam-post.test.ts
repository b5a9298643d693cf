/**
 * `POST /{process}/~scheduler@1.0/schedule`, the route the MU's HyperBEAM-mode client posts to: the MU-style
 * client (`fixtures/mu-hyperbeam.ts`) gets its `slot`, `timestamp` and `process` headers; bad input gets the
 * legacy `POST /`'s errors (plus a path naming another process), schedules nothing, and a re-post gets the
 * original answer.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { messageItem, messageTags, processItem, signedItem, tampered, truncated } from "./fixtures/dataItems.js"
import { idOf } from "./fixtures/ids.js"
import { writeDataItem } from "./fixtures/mu-hyperbeam.js"
import { post, type Response, request, startNode } from "./fixtures/node.js"
import { type Edge, spawn, tag } from "./fixtures/su.js"

const route = (pid: string) => `/${pid}/~scheduler@1.0/schedule`

/** POSTs `body` to the HyperBEAM route of `pid` with the MU's headers, reading the whole response. */
const postHb = (url: string, pid: string, body: Uint8Array, headers: Record<string, string> = {}) =>
  request(`${url}${route(pid)}`, {
    method: "POST",
    body,
    headers: { "content-type": "application/ans104", "codec-device": "ans104@1.0", ...headers }
  })

const muPost = (url: string, pid: string, item: { readonly id: string; getRaw(): Uint8Array }) =>
  Effect.promise(() => writeDataItem(url, pid, item.id, Uint8Array.from(item.getRaw())))

const headersOf = (res: Response) => ({
  slot: res.headers.get("slot"),
  timestamp: res.headers.get("timestamp"),
  process: res.headers.get("process")
})

/** The nonces of a process's first page. */
const nonces = (url: string, pid: string) =>
  Effect.map(request(`${url}/${pid}`), (res) => res.json.edges.map((e: Edge) => tag(e, "Nonce")))

describe("Http: POST /{process}/~scheduler@1.0/schedule (the MU's HyperBEAM mode)", () => {
  it.scopedLive("an MU-style client spawns and sends through it and gets its slot, timestamp and process", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      // a spawn goes to the path of the process item's own id
      const process = yield* Effect.promise(() => processItem(node.address))
      const spawned = yield* muPost(node.url, process.id, process)
      expect(spawned).toEqual({ id: process.id, timestamp: expect.any(Number), slot: "0", process: process.id })
      const sent = []
      for (let n = 1; n <= 3; n++) {
        const item = yield* Effect.promise(() => messageItem(process.id, n))
        sent.push({ item, reply: yield* muPost(node.url, process.id, item) })
      }
      expect(sent.map((s) => s.reply.slot)).toEqual(["1", "2", "3"])
      expect(sent.map((s) => s.reply.process)).toEqual([process.id, process.id, process.id])
      expect(sent.map((s) => s.reply.id)).toEqual(sent.map((s) => s.item.id))
      // the headers carry the stored assignments' values: the page shows the same nonces and timestamps
      const page = (yield* request(`${node.url}/${process.id}`)).json
      const edges: Array<Edge> = page.edges
      expect(edges.map((e) => tag(e, "Nonce"))).toEqual(["0", "1", "2", "3"])
      expect(edges.map((e) => Number(tag(e, "Timestamp")))).toEqual([
        spawned.timestamp,
        ...sent.map((s) => s.reply.timestamp)
      ])
      expect(edges.slice(1).map((e) => e.node.message?.id)).toEqual(sent.map((s) => s.item.id))

      // the body is the assignment (HbScheduled); the slot headers are exposed to browsers
      const next = yield* Effect.promise(() => messageItem(process.id, 4))
      const res = yield* postHb(node.url, process.id, Uint8Array.from(next.getRaw()))
      expect(res.status, res.text).toBe(200)
      expect(res.headers.get("access-control-expose-headers")).toBe("slot, timestamp, process")
      const stored = (yield* request(`${node.url}/${next.id}?process-id=${process.id}`)).json
      expect(res.json).toEqual({
        id: stored.assignment.id,
        "data-protocol": "ao",
        variant: "ao.TN.1",
        type: "Assignment",
        process: process.id,
        epoch: 0,
        slot: 4,
        timestamp: Number(headersOf(res).timestamp),
        "block-height": 1_500_000,
        "block-hash": Buffer.alloc(32).toString("base64url"),
        "hash-chain": tag(stored, "Hash-Chain"),
        message: next.id
      })
      expect(headersOf(res)).toEqual({ slot: "4", timestamp: tag(stored, "Timestamp"), process: process.id })
    })
  )

  it.scopedLive("a re-post gets 200 with the original answer and headers and takes no slot", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const process = yield* Effect.promise(() => processItem(node.address))
      const raw = Uint8Array.from(process.getRaw())
      const created = yield* postHb(node.url, process.id, raw)
      expect(created.status, created.text).toBe(200)
      const createdAgain = yield* postHb(node.url, process.id, raw)
      expect(createdAgain.status, createdAgain.text).toBe(200)
      expect(headersOf(createdAgain)).toEqual(headersOf(created))
      expect(createdAgain.json).toEqual(created.json)

      const message = yield* Effect.promise(() => messageItem(process.id, 1))
      const bytes = Uint8Array.from(message.getRaw())
      const first = yield* postHb(node.url, process.id, bytes)
      expect(headersOf(first)).toEqual({ slot: "1", timestamp: expect.stringMatching(/^\d+$/), process: process.id })
      const retried = yield* Effect.all([postHb(node.url, process.id, bytes), postHb(node.url, process.id, bytes)], {
        concurrency: "unbounded"
      })
      for (const r of retried) {
        expect(r.status, r.text).toBe(200)
        expect(headersOf(r)).toEqual(headersOf(first))
        expect(r.json).toEqual(first.json)
      }
      // the legacy route and this one answer for the same schedule: a message posted to one is a retry on the other
      const legacy = yield* post(node.url, bytes)
      expect(legacy.json).toEqual({ id: message.id, timestamp: Number(headersOf(first).timestamp) })
      const viaLegacy = yield* Effect.promise(() => messageItem(process.id, 2))
      const legacyFirst = yield* post(node.url, viaLegacy.getRaw())
      expect(legacyFirst.status, legacyFirst.text).toBe(200)
      expect(yield* muPost(node.url, process.id, viaLegacy)).toEqual({
        id: viaLegacy.id,
        timestamp: legacyFirst.json.timestamp,
        slot: "2",
        process: process.id
      })
      expect(yield* nonces(node.url, process.id)).toEqual(["0", "1", "2"])
    })
  )

  it.scopedLive("bad input gets the legacy POST's errors, the MU's client sees the status, nothing is scheduled", () =>
    Effect.gen(function* () {
      const node = yield* startNode({ bodyLimit: 4096 })
      const pid = yield* spawn(node.url, node.address)
      const good = Uint8Array.from((yield* Effect.promise(() => messageItem(pid, 1))).getRaw())
      const unknown = Uint8Array.from((yield* Effect.promise(() => messageItem(idOf(5), 1))).getRaw())
      const big = Uint8Array.from(
        (yield* Effect.promise(() => signedItem({ tags: messageTags(), target: pid, data: "x".repeat(5000) }))).getRaw()
      )
      // the same body on both routes gets the same status and error
      const cases: ReadonlyArray<readonly [string, string, Uint8Array, number, RegExp]> = [
        ["tampered", pid, tampered(good), 400, /^Invalid data item: the signature does not verify/],
        ["truncated", pid, truncated(good, 5), 400, /^Invalid data item: the signature does not verify/],
        ["garbage", pid, new Uint8Array(2000).fill(9), 400, /^Invalid data item: not an ANS-104 data item/],
        ["too short", pid, new Uint8Array(40), 400, /^Invalid data item: expected an ANS-104 data item of at least/],
        ["unknown process", idOf(5), unknown, 400, new RegExp(`^Process ${idOf(5)} is not hosted by this scheduler`)],
        ["oversized", pid, big, 413, /^The body is \d+ bytes; this scheduler unit accepts at most 4096 bytes$/]
      ]
      for (const [name, path, body, status, pattern] of cases) {
        const legacy = yield* post(node.url, body)
        const hb = yield* postHb(node.url, path, body)
        expect({ name, status: hb.status, json: hb.json }).toEqual({ name, status: legacy.status, json: legacy.json })
        expect(hb.status, name).toBe(status)
        expect(hb.json.error, name).toMatch(pattern)
        const thrown = yield* Effect.flip(Effect.tryPromise(() => writeDataItem(node.url, path, name, body)))
        expect(String((thrown.error as Error).message)).toBe(`${status}: Error posting to HyperBeam`)
      }
      expect((yield* postHb(node.url, pid, big)).headers.get("connection")).toBe("close")
      // streamed with no content-length, reading stops at the limit and the client still gets the 413
      const streamed = yield* request(`${node.url}${route(pid)}`, {
        method: "POST",
        duplex: "half",
        headers: { "content-type": "application/ans104", "codec-device": "ans104@1.0" },
        body: new ReadableStream<Uint8Array>({
          start(controller) {
            for (let at = 0; at < 200_000; at += 1024) controller.enqueue(new Uint8Array(1024))
            controller.close()
          }
        })
      } as RequestInit)
      expect(streamed.status, streamed.text).toBe(413)
      expect(streamed.json.error).toMatch(
        /^The body is over 4096 bytes; this scheduler unit accepts at most 4096 bytes$/
      )

      // errors of this route alone: the path names another process than the item, a bad path id, an empty body,
      // a codec other than ANS-104, and a GET
      const other = yield* Effect.promise(() => processItem(node.address))
      const routeCases: ReadonlyArray<readonly [Response, number, RegExp]> = [
        [
          yield* postHb(node.url, idOf(9), good),
          400,
          new RegExp(`^The path names process ${idOf(9)}, but the data item's target is ${pid}$`)
        ],
        [
          yield* postHb(node.url, pid, Uint8Array.from(other.getRaw())),
          400,
          new RegExp(`^The path names process ${pid}, but this Process data item's id is ${other.id}$`)
        ],
        [yield* postHb(node.url, "abc", good), 400, /processId: "abc" is not a valid id/],
        [yield* postHb(node.url, pid, new Uint8Array(0)), 400, /^The body is empty/],
        [
          yield* postHb(node.url, pid, good, { "codec-device": "httpsig@1.0" }),
          400,
          /^codec-device "httpsig@1.0" is not supported/
        ],
        [yield* request(`${node.url}${route(pid)}`), 405, /^Method GET is not allowed .*; allowed: POST$/]
      ]
      for (const [res, status, pattern] of routeCases) {
        expect(res.status, res.text).toBe(status)
        expect(Object.keys(res.json)).toEqual(["error"])
        expect(res.json.error).toMatch(pattern)
      }

      // nothing was scheduled, the other Process was not created, and the good item still goes through
      expect(yield* nonces(node.url, pid)).toEqual(["0"])
      expect((yield* request(`${node.url}/processes/${other.id}`)).status).toBe(400)
      expect(headersOf(yield* postHb(node.url, pid, good))).toMatchObject({ slot: "1", process: pid })
    })
  )
})
