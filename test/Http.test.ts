import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ownerToAddress } from "../src/Wallet.js"
import {
  clientSigner,
  MODULE_ID,
  messageItem,
  messageTags,
  processItem,
  processTags,
  signedItem,
  tampered,
  truncated,
  unsignedItem
} from "./fixtures/dataItems.js"
import { idOf } from "./fixtures/ids.js"
import { post, request, startNode, TEST_BLOCK_HEIGHT } from "./fixtures/node.js"
import { type Edge, send, spawn, tag } from "./fixtures/su.js"
import { walletJwk2 } from "./fixtures/wallet.js"

const NODE_ADDRESS = "b1ayEFhXXqrS30fIn5k8ARPglHDKWXkVp_0wbTwo5UI"
const OTHER_ADDRESS = ownerToAddress(Buffer.from(walletJwk2.n, "base64url"))
const CLIENT_ADDRESS = ownerToAddress(Buffer.from(clientSigner.publicKey))

const ASSIGNMENT_TAGS = [
  "Process",
  "Epoch",
  "Nonce",
  "Hash-Chain",
  "Block-Height",
  "Timestamp",
  "Data-Protocol",
  "Type",
  "Variant",
  "Message"
]

/** A POST whose body is streamed in 1 KiB chunks, without a content-length. */
const chunked = (bytes: Uint8Array): RequestInit =>
  ({
    method: "POST",
    duplex: "half",
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < bytes.length; at += 1024) controller.enqueue(bytes.slice(at, at + 1024))
        controller.close()
      }
    })
  }) as RequestInit

/** Expects a 4xx `{"error": string}` matching `pattern`. */
const expectError = (res: { status: number; json: unknown; text: string }, status: number, pattern: RegExp) => {
  expect(res.status, res.text).toBe(status)
  expect(Object.keys(res.json as object)).toEqual(["error"])
  expect((res.json as { error: string }).error).toMatch(pattern)
}

describe("Http: legacy ao SU routes", () => {
  it.scopedLive("GET / gives the wallet address and the time as a string of ms; /timestamp a padded height", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      expect(node.address).toBe(NODE_ADDRESS)
      const before = Date.now()
      const info = yield* request(`${node.url}/`)
      expect(info.status).toBe(200)
      expect(info.json.address).toBe(NODE_ADDRESS)
      expect(info.json.timestamp).toMatch(/^\d{13}$/)
      expect(Number(info.json.timestamp)).toBeGreaterThanOrEqual(before)
      const ts = yield* request(`${node.url}/timestamp?process-id=${idOf(1)}`)
      expect(ts.status).toBe(200)
      expect(ts.json).toEqual({ timestamp: expect.stringMatching(/^\d{13}$/), block_height: "000001500000" })
      expect(Number.parseInt(ts.json.block_height, 10)).toBe(TEST_BLOCK_HEIGHT)
      const health = yield* request(`${node.url}/health`)
      expect(health.status).toBe(200)
      expect(health.json).toEqual({
        status: "ok",
        gateway: {
          state: "offline",
          url: null,
          height: TEST_BLOCK_HEIGHT,
          hash: Buffer.alloc(32).toString("base64url"),
          blockAgeMs: null
        }
      })
    })
  )

  it.scopedLive("several identities: a Process naming a second identity is hosted and signed by it", () =>
    Effect.gen(function* () {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "identity-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const second = Path.join(dir, "second.json")
      Fs.writeFileSync(second, JSON.stringify(walletJwk2))
      const node = yield* startNode({ identityPaths: [second] })
      const secondAddress = ownerToAddress(Buffer.from(walletJwk2.n, "base64url"))
      const process = yield* Effect.promise(() => processItem(secondAddress))
      const posted = yield* post(node.url, process.getRaw())
      expect(posted.status, posted.text).toBe(200)
      yield* send(node.url, process.id, 1, 2)
      const page = yield* request(`${node.url}/${process.id}`)
      const edges = page.json.edges as Array<Edge>
      expect(edges.map((e) => tag(e, "Nonce"))).toEqual(["0", "1", "2"])
      expect(new Set(edges.map((e) => e.node.assignment.owner.address))).toEqual(new Set([secondAddress]))
      // a third, unknown identity is still refused
      const foreign = yield* Effect.promise(() => processItem(idOf(5)))
      expect((yield* post(node.url, foreign.getRaw())).status).toBe(400)
    })
  )

  it.scopedLive("POST a Process, then Messages: nonces 0, 1, 2, 3 and the page the CU reads", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const process = yield* Effect.promise(() => processItem(node.address))
      const posted = yield* post(node.url, process.getRaw())
      expect(posted.status, posted.text).toBe(200)
      expect(posted.json).toEqual({ id: process.id, timestamp: expect.any(Number) })
      const messages = yield* send(node.url, process.id, 1, 3)

      // aoconnect's getMessagesByRange: no process-id (Additional check 2)
      const page = yield* request(`${node.url}/${process.id}`)
      expect(page.status, page.text).toBe(200)
      expect(Object.keys(page.json)).toEqual(["page_info", "edges"])
      expect(page.json.page_info).toEqual({ has_next_page: false })
      const edges = page.json.edges as Array<Edge>
      expect(edges.map((e) => tag(e, "Nonce"))).toEqual(["0", "1", "2", "3"])
      expect(edges.map((e) => e.node.message?.id)).toEqual([process.id, ...messages])
      expect(edges.map((e) => tag(e, "Message"))).toEqual([process.id, ...messages])
      for (const edge of edges) {
        expect(edge.cursor).toBe(tag(edge, "Timestamp"))
        expect(typeof edge.cursor).toBe("string")
        expect(edge.node.assignment.tags.map((t) => t.name)).toEqual(ASSIGNMENT_TAGS)
        expect(tag(edge, "Process")).toBe(process.id)
        expect(tag(edge, "Block-Height")).toBe("000001500000")
        expect(tag(edge, "Epoch")).toBe("0")
        expect(tag(edge, "Variant")).toBe("ao.TN.1")
        expect(tag(edge, "Type")).toBe("Assignment")
      }
      const timestamps = edges.map((e) => Number(e.cursor))
      expect([...timestamps].sort((a, b) => a - b)).toEqual(timestamps)
      expect(new Set(timestamps).size).toBe(4)

      const first = edges[1]!.node as unknown as {
        message: Record<string, unknown>
        assignment: Record<string, unknown>
      }
      expect(first.message).toEqual({
        id: messages[0],
        owner: { address: CLIENT_ADDRESS, key: Buffer.from(clientSigner.publicKey).toString("base64url") },
        data: "message 1",
        tags: messageTags(),
        signature: expect.stringMatching(/^[A-Za-z0-9_-]{683}$/),
        anchor: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/),
        target: process.id
      })
      expect(first.assignment).toEqual({
        id: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
        owner: { address: NODE_ADDRESS, key: expect.stringMatching(/^[A-Za-z0-9_-]{683}$/) },
        tags: expect.any(Array),
        signature: expect.stringMatching(/^[A-Za-z0-9_-]{683}$/),
        anchor: null,
        target: null
      })

      // the same page with process-id, as the CU's loadMessages asks
      const cu = yield* request(`${node.url}/${process.id}?process-id=${process.id}&limit=1000`)
      expect(cu.json).toEqual(page.json)
    })
  )

  it.scopedLive("GET /processes/{id} has the shape the CU's loadProcess parses", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const process = yield* Effect.promise(() => processItem(node.address))
      expect((yield* post(node.url, process.getRaw())).status).toBe(200)
      const res = yield* request(`${node.url}/processes/${process.id}`)
      expect(res.status, res.text).toBe(200)
      expect(res.json).toEqual({
        process_id: process.id,
        block: "000001500000",
        owner: { address: CLIENT_ADDRESS, key: Buffer.from(clientSigner.publicKey).toString("base64url") },
        tags: processTags(node.address),
        timestamp: expect.any(Number),
        data: "-- process source\nreturn 1",
        anchor: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/),
        signature: process.signature,
        target: null
      })
      expect(res.json.timestamp).toBeGreaterThanOrEqual(1)
      expect(Number.parseInt(res.json.block, 10)).toBe(TEST_BLOCK_HEIGHT)
      const page = yield* request(`${node.url}/${process.id}`)
      expect(String(res.json.timestamp)).toBe(page.json.edges[0].cursor)
    })
  )

  it.scopedLive("GET /{messageId} and /{pid}/latest give one message with Process, Timestamp and Nonce tags", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const pid = yield* spawn(node.url, node.address)
      const [m1, m2] = yield* send(node.url, pid, 1, 2)
      const withPid = yield* request(`${node.url}/${m1}?process-id=${pid}`)
      expect(withPid.status, withPid.text).toBe(200)
      expect(Object.keys(withPid.json)).toEqual(["message", "assignment"])
      expect(withPid.json.message.id).toBe(m1)
      expect(tag(withPid.json, "Process")).toBe(pid)
      expect(tag(withPid.json, "Nonce")).toBe("1")
      expect(tag(withPid.json, "Timestamp")).toMatch(/^\d{13}$/)
      const withoutPid = yield* request(`${node.url}/${m1}`)
      expect(withoutPid.json).toEqual(withPid.json)
      const byAssignment = yield* request(`${node.url}/${withPid.json.assignment.id}`)
      expect(byAssignment.json).toEqual(withPid.json)
      const latest = yield* request(`${node.url}/${pid}/latest`)
      expect(latest.status).toBe(200)
      expect(latest.json.message.id).toBe(m2)
      expect(tag(latest.json, "Nonce")).toBe("2")
      // a message of P asked for under another process
      expectError(yield* request(`${node.url}/${m1}?process-id=${idOf(9)}`), 400, /Message or Process not found/)
    })
  )

  it.scopedLive("pages: from exclusive, to inclusive, limit, nonce mode; has_next_page only with edges", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const pid = yield* spawn(node.url, node.address)
      yield* send(node.url, pid, 1, 5)
      const all = (yield* request(`${node.url}/${pid}`)).json.edges as Array<Edge>
      const ts = all.map((e) => e.cursor)
      const nonces = (page: { edges: Array<Edge> }) => page.edges.map((e) => tag(e, "Nonce"))

      const range = (yield* request(`${node.url}/${pid}?from=${ts[1]}&to=${ts[4]}`)).json
      expect(nonces(range)).toEqual(["2", "3", "4"])
      expect(range.page_info.has_next_page).toBe(false)
      const limited = (yield* request(`${node.url}/${pid}?from=${ts[1]}&limit=2`)).json
      expect(nonces(limited)).toEqual(["2", "3"])
      expect(limited.page_info.has_next_page).toBe(true)
      const exact = (yield* request(`${node.url}/${pid}?from=${ts[3]}&limit=2`)).json
      expect(nonces(exact)).toEqual(["4", "5"])
      expect(exact.page_info.has_next_page).toBe(false)
      const past = (yield* request(`${node.url}/${pid}?from=${ts[5]}`)).json
      expect(past).toEqual({ page_info: { has_next_page: false }, edges: [] })
      // the Process is on the first page only: a `from` before it still leaves it out (upstream)
      expect(nonces((yield* request(`${node.url}/${pid}?from=0&limit=2`)).json)).toEqual(["1", "2"])
      // limit above 1000 is capped, not refused
      expect(nonces((yield* request(`${node.url}/${pid}?limit=5000`)).json)).toHaveLength(6)

      const byNonce = (yield* request(`${node.url}/${pid}?from-nonce=1&to-nonce=3`)).json
      expect(nonces(byNonce)).toEqual(["2", "3"])
      expect(byNonce.edges.map((e: Edge) => e.cursor)).toEqual(["2", "3"])
      const fromStart = (yield* request(`${node.url}/${pid}?from-nonce=-1&limit=2`)).json
      expect(nonces(fromStart)).toEqual(["0", "1"])
      expect(fromStart.page_info.has_next_page).toBe(true)
      expect(nonces((yield* request(`${node.url}/${pid}?to-nonce=1`)).json)).toEqual(["0", "1"])
    })
  )

  it.scopedLive("K13: the Process is on the first page only and never reappears", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const pid = yield* spawn(node.url, node.address)
      const [m1, m2, m3] = yield* send(node.url, pid, 1, 3)
      const page1 = (yield* request(`${node.url}/${pid}?limit=2`)).json
      expect(page1.edges.map((e: Edge) => e.node.message?.id)).toEqual([pid, m1])
      expect(page1.page_info.has_next_page).toBe(true)
      expect(page1.edges[1].cursor).toBe(tag(page1.edges[1], "Timestamp"))
      const page2 = (yield* request(`${node.url}/${pid}?limit=2&from=${page1.edges[1].cursor}`)).json
      expect(page2.edges.map((e: Edge) => e.node.message?.id)).toEqual([m2, m3])
      expect(page2.page_info.has_next_page).toBe(false)
    })
  )

  it.scopedLive("POST /?process-id&assign assigns a message the SU holds: message null, Message tag = the tx", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const pid = yield* spawn(node.url, node.address)
      // offline, only a message this SU holds can be assigned: one scheduled to another process
      const other = yield* spawn(node.url, node.address)
      const [tx] = yield* send(node.url, other, 1, 1)
      const res = yield* request(`${node.url}/?process-id=${pid}&assign=${tx}`, { method: "POST" })
      expect(res.status, res.text).toBe(200)
      expect(res.json).toEqual({ id: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), timestamp: expect.any(Number) })
      const page = (yield* request(`${node.url}/${pid}`)).json
      const edge = page.edges[1] as Edge
      expect(edge.node.message).toBeNull()
      expect(edge.node.assignment.id).toBe(res.json.id)
      expect(tag(edge, "Message")).toBe(tx)
      expect(tag(edge, "Nonce")).toBe("1")
      expect(String(res.json.timestamp)).toBe(tag(edge, "Timestamp"))
      // the assignment is readable by its id
      const byId = yield* request(`${node.url}/${res.json.id}?process-id=${pid}`)
      expect(byId.json.message).toBeNull()
      // assigning it again is idempotent: the original assignment, no new slot
      const again = yield* request(`${node.url}/?process-id=${pid}&assign=${tx}`, { method: "POST" })
      expect(again.status, again.text).toBe(200)
      expect(again.json).toEqual(res.json)
      // a body with an assign is refused, and nothing is assigned
      expectError(
        yield* request(`${node.url}/?process-id=${pid}&assign=${idOf(43)}`, { method: "POST", body: "a message" }),
        400,
        /^POST \/\?process-id&assign takes no body/
      )
      expect((yield* request(`${node.url}/${pid}`)).json.edges).toHaveLength(2)
    })
  )

  it.scopedLive("CORS is fully open, on answers and on errors; preflight allows every method", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const ok = yield* request(`${node.url}/`, { headers: { origin: "https://example.com" } })
      expect(ok.headers.get("access-control-allow-origin")).toBe("*")
      const bad = yield* request(`${node.url}/abc`, { headers: { origin: "https://example.com" } })
      expect(bad.status).toBe(400)
      expect(bad.headers.get("access-control-allow-origin")).toBe("*")
      const preflight = yield* request(`${node.url}/`, {
        method: "OPTIONS",
        headers: {
          origin: "https://example.com",
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type"
        }
      })
      expect(preflight.status).toBe(204)
      expect(preflight.headers.get("access-control-allow-methods")).toContain("POST")
      expect(preflight.headers.get("access-control-allow-headers")).toBe("content-type")
    })
  )
})

describe("Http: bad input gets 4xx {error}, schedules nothing, and the node keeps serving", () => {
  it.scopedLive("malformed ids and query parameters", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const pid = yield* spawn(node.url, node.address)
      const cases: ReadonlyArray<readonly [string, RegExp]> = [
        ["/abc", /id: "abc" is not a valid id \(expected 43 base64url characters, got 3\)/],
        [`/${"A".repeat(42)}B`, /not the canonical encoding/],
        ["/processes/abc", /processId: "abc" is not a valid id/],
        [`/${"!".repeat(43)}/latest`, /processId: .* outside the base64url alphabet/],
        [`/timestamp?process-id=nope`, /process-id: "nope" is not a valid id/],
        [`/${pid}?process-id=short`, /process-id: "short" is not a valid id/],
        [`/${pid}?from=abc`, /^Invalid request: from: expected a non-negative integer, got "abc"$/],
        [`/${pid}?from=-1`, /from: expected a non-negative integer, got "-1"/],
        [`/${pid}?to=1.5`, /to: expected a non-negative integer, got "1.5"/],
        [`/${pid}?from=`, /from: expected a non-negative integer, got ""/],
        [`/${pid}?limit=0`, /limit: expected a positive integer, got "0"/],
        [`/${pid}?limit=-5`, /limit: expected a positive integer, got "-5"/],
        [`/${pid}?limit=ten`, /limit: expected a positive integer/],
        [`/${pid}?from-nonce=-2`, /from-nonce: expected an integer of at least -1, got "-2"/],
        [`/${pid}?to-nonce=x`, /to-nonce: expected a non-negative integer/],
        [`/~scheduler@1.0/slot`, /target: is missing/],
        [`/~scheduler@1.0/schedule?target=${pid}&from=x`, /from: expected an integer/],
        [`/${idOf(77)}`, /^Message or Process not found$/],
        [`/processes/${idOf(77)}`, /^Process .* not found$/],
        [`/${idOf(77)}/latest`, /^Process .* not found$/]
      ]
      for (const [path, pattern] of cases) expectError(yield* request(`${node.url}${path}`), 400, pattern)
      expect((yield* request(`${node.url}/`)).status).toBe(200)
    })
  )

  it.scopedLive("invalid data items: unsigned, tampered, truncated, garbage, empty", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const pid = yield* spawn(node.url, node.address)
      const good = Uint8Array.from((yield* Effect.promise(() => messageItem(pid, 1))).getRaw())
      const cases: ReadonlyArray<readonly [Uint8Array, RegExp]> = [
        [unsignedItem({ tags: messageTags(), target: pid }), /^Invalid data item: the data item is not signed$/],
        [tampered(good), /Invalid data item: the signature does not verify/],
        [truncated(good, 5), /Invalid data item: the signature does not verify/],
        [truncated(good, good.length - 600), /Invalid data item: .*(truncated|not an ANS-104)/],
        [new Uint8Array(40), /Invalid data item: expected an ANS-104 data item of at least 80 bytes, got 40/],
        [new Uint8Array(2000).fill(9), /Invalid data item: not an ANS-104 data item/],
        [new Uint8Array(0), /The body is empty/]
      ]
      for (const [body, pattern] of cases) expectError(yield* post(node.url, body), 400, pattern)
      // any content type is read as bytes
      const asJson = yield* request(`${node.url}/`, {
        method: "POST",
        body: tampered(good),
        headers: { "content-type": "application/json" }
      })
      expectError(asJson, 400, /signature does not verify/)
      // nothing was scheduled: the schedule still holds only the Process
      const page = (yield* request(`${node.url}/${pid}`)).json
      expect(page.edges.map((e: Edge) => tag(e, "Nonce"))).toEqual(["0"])
      // the untampered item still goes through
      expect((yield* post(node.url, good)).status).toBe(200)
    })
  )

  it.scopedLive("protocol errors: missing Type / Data-Protocol / Module, unknown Type, no target, foreign SU", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const pid = yield* spawn(node.url, node.address)
      const sign = (fields: Parameters<typeof signedItem>[0]) =>
        Effect.promise(() => signedItem(fields)).pipe(Effect.map((item) => Uint8Array.from(item.getRaw())))
      const withoutType = messageTags().filter((t) => t.name !== "Type")
      const cases: ReadonlyArray<readonly [Uint8Array, RegExp]> = [
        [yield* sign({ tags: withoutType, target: pid }), /^Type tag not present$/],
        [
          yield* sign({ tags: messageTags().filter((t) => t.name !== "Data-Protocol"), target: pid }),
          /^Data-Protocol tag not present$/
        ],
        [
          yield* sign({ tags: [...withoutType, { name: "Type", value: "Checkpoint" }], target: pid }),
          /^Type tag must be Process or Message, got "Checkpoint"$/
        ],
        [
          yield* sign({
            tags: [...messageTags().filter((t) => t.name !== "Data-Protocol"), { name: "Data-Protocol", value: "xx" }],
            target: pid
          }),
          /^Data-Protocol tag must be "ao", got "xx"$/
        ],
        [
          yield* sign({ tags: [...messageTags(), { name: "Type", value: "Process" }], target: pid }),
          /^Type tag must appear once, found 2$/
        ],
        [yield* sign({ tags: messageTags() }), /^A Message data item needs a target/],
        [
          yield* sign({ tags: processTags(node.address).filter((t) => t.name !== "Module") }),
          /^Required Module and Scheduler tags for Process type not present$/
        ],
        [
          yield* sign({ tags: processTags(OTHER_ADDRESS) }),
          new RegExp(`is scheduled by ${OTHER_ADDRESS}, not by this scheduler unit and does not host it$`)
        ],
        [
          Uint8Array.from((yield* Effect.promise(() => messageItem(idOf(5), 1))).getRaw()),
          new RegExp(`^Process ${idOf(5)} is not hosted by this scheduler unit$`)
        ]
      ]
      for (const [body, pattern] of cases) expectError(yield* post(node.url, body), 400, pattern)

      // a URL over the HTTP parser's limit still gets a JSON error body
      expectError(yield* request(`${node.url}/${pid}?x=${"a".repeat(17_000)}`), 431, /too large/)

      // a path that does not percent-decode is a 400, not a self-contradicting 405
      expectError(yield* request(`${node.url}/%ZZ`), 400, /not valid percent-encoded/)

      // a process another SU hosts is not stored here, so its messages are refused too
      const foreign = yield* Effect.promise(() => processItem(OTHER_ADDRESS))
      expectError(yield* post(node.url, foreign.getRaw()), 400, /does not host it/)
      const toForeign = yield* Effect.promise(() => messageItem(foreign.id, 1))
      expectError(yield* post(node.url, toForeign.getRaw()), 400, /is not hosted by this scheduler unit/)
      expectError(yield* request(`${node.url}/processes/${foreign.id}`), 400, /not found/)
      expect((yield* request(`${node.url}/~scheduler@1.0/status`)).json.processes).toEqual([pid])

      // assignment requests
      const assign = (query: string) => request(`${node.url}/?${query}`, { method: "POST" })
      expectError(yield* assign(`process-id=${pid}`), 400, /^process-id and assign must be given together$/)
      expectError(yield* assign(`assign=${idOf(3)}`), 400, /^process-id and assign must be given together$/)
      expectError(yield* assign(`process-id=${pid}&assign=${idOf(3)}`), 400, /offline .* cannot verify/)
      expectError(yield* assign(`process-id=${pid}&assign=${pid}&exclude=`), 400, /exclude must list/)
      expectError(yield* assign(`process-id=${pid}&assign=${pid}&exclude=Data,,Tags`), 400, /empty value/)
      expectError(yield* assign(`exclude=Data`), 400, /go with process-id and assign/)
      expectError(yield* assign(`process-id=${idOf(6)}&assign=${idOf(3)}`), 400, /is not hosted/)
      expectError(yield* assign(`process-id=${pid}&assign=bad`), 400, /assign: "bad" is not a valid id/)

      expect((yield* request(`${node.url}/${pid}`)).json.edges).toHaveLength(1)
    })
  )

  it.scopedLive("duplicates: the same Process or Message again gets its original answer and takes no nonce", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const process = yield* Effect.promise(() => processItem(node.address))
      const created = yield* post(node.url, process.getRaw())
      expect(created.status).toBe(200)
      const createdAgain = yield* post(node.url, process.getRaw())
      expect(createdAgain.status, createdAgain.text).toBe(200)
      expect(createdAgain.json).toEqual(created.json)
      const message = yield* Effect.promise(() => messageItem(process.id, 1))
      const first = yield* post(node.url, message.getRaw())
      expect(first.status).toBe(200)
      const retried = yield* Effect.all([post(node.url, message.getRaw()), post(node.url, message.getRaw())], {
        concurrency: "unbounded"
      })
      for (const r of retried) {
        expect(r.status, r.text).toBe(200)
        expect(r.json).toEqual(first.json)
      }
      yield* send(node.url, process.id, 2, 2)
      const page = (yield* request(`${node.url}/${process.id}`)).json
      expect(page.edges.map((e: Edge) => tag(e, "Nonce"))).toEqual(["0", "1", "2"])
    })
  )

  it.scopedLive(
    "mode aggressive: replies come before the write, duplicates get their original answer, nothing is lost",
    () =>
      Effect.gen(function* () {
        const node = yield* startNode({ mode: "aggressive" })
        const pid = yield* spawn(node.url, node.address)
        const message = yield* Effect.promise(() => messageItem(pid, 1))
        const first = yield* post(node.url, message.getRaw())
        expect(first.status).toBe(200)
        const again = yield* post(node.url, message.getRaw())
        expect(again.status, again.text).toBe(200)
        expect(again.json).toEqual(first.json)
        yield* send(node.url, pid, 2, 4)
        const page = (yield* request(`${node.url}/${pid}`)).json
        expect(page.edges.map((e: Edge) => tag(e, "Nonce"))).toEqual(["0", "1", "2", "3", "4"])
      })
  )

  it.scopedLive("a body over the limit gets 413 and is not kept; wrong methods get 405; unknown paths 404", () =>
    Effect.gen(function* () {
      const node = yield* startNode({ bodyLimit: 4096 })
      const pid = yield* spawn(node.url, node.address)
      const big = yield* Effect.promise(() =>
        signedItem({ tags: messageTags(), target: pid, data: "x".repeat(5000) }).then((i) => i.getRaw())
      )
      const declared = yield* post(node.url, big)
      expectError(declared, 413, /^The body is \d+ bytes; this scheduler unit accepts at most 4096 bytes$/)
      expect(declared.headers.get("connection")).toBe("close")
      // a streamed (chunked) body has no content-length: past the limit it is read and dropped, then 413
      const streamed = yield* request(`${node.url}/`, chunked(new Uint8Array(200_000)))
      expectError(streamed, 413, /^The body is over 4096 bytes; this scheduler unit accepts at most 4096 bytes$/)
      expect(streamed.headers.get("connection")).toBe("close")
      // a streamed body under the limit is read whole
      const small = yield* Effect.promise(() => messageItem(pid, 1))
      const accepted = yield* request(`${node.url}/`, chunked(small.getRaw()))
      expect(accepted.status, accepted.text).toBe(200)
      expect(accepted.json.id).toBe(small.id)
      expectError(yield* request(`${node.url}/`, { method: "DELETE" }), 405, /^Method DELETE is not allowed on \/;/)
      const del = yield* request(`${node.url}/`, { method: "DELETE" })
      expect(del.headers.get("allow")).toBe("GET, POST")
      const put = yield* request(`${node.url}/timestamp`, { method: "PUT", body: "x" })
      expectError(put, 405, /^Method PUT is not allowed on \/timestamp; allowed: GET$/)
      expect(put.headers.get("allow")).toBe("GET")
      expectError(yield* request(`${node.url}/${pid}`, { method: "POST" }), 405, /allowed: GET/)
      expectError(yield* request(`${node.url}/a/b/c`), 404, /^Not found: GET \/a\/b\/c$/)
      // a long path is quoted, not echoed back whole
      const long = yield* request(`${node.url}/a/${"x".repeat(5_000)}`)
      expectError(long, 404, /^Not found: GET \/a\/x{197}… \(5003 characters\)$/)
      // still serving; only the accepted message was scheduled
      expect((yield* request(`${node.url}/${pid}`)).json.edges).toHaveLength(2)
      yield* send(node.url, pid, 2, 2)
    })
  )
})

describe("Http: HyperBEAM ~scheduler@1.0 reads", () => {
  it.scopedLive("status, slot and schedule (aos-2 and application/http shapes, inclusive ranges)", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const pid = yield* spawn(node.url, node.address)
      const ids = yield* send(node.url, pid, 1, 10)
      const status = (yield* request(`${node.url}/~scheduler@1.0/status`)).json
      expect(status).toEqual({ address: NODE_ADDRESS, processes: [pid], "cache-control": "no-store" })

      const slot = (yield* request(`${node.url}/~scheduler@1.0/slot?target=${pid}`)).json
      expect(slot).toEqual({
        process: pid,
        current: 10,
        timestamp: expect.any(Number),
        "block-height": TEST_BLOCK_HEIGHT,
        "block-hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "cache-control": "no-store",
        "wallet-address": NODE_ADDRESS
      })
      expectError(yield* request(`${node.url}/~scheduler@1.0/slot?target=${idOf(8)}`), 400, /is not hosted/)

      const aos2 = yield* request(`${node.url}/~scheduler@1.0/schedule?target=${pid}&from=0&to=10`, {
        headers: { accept: "application/aos-2" }
      })
      expect(aos2.status, aos2.text).toBe(200)
      expect(aos2.headers.get("content-type")).toContain("application/json")
      expect(aos2.json.page_info).toEqual({
        process: pid,
        has_next_page: false,
        timestamp: expect.stringMatching(/^\d{13}$/),
        "block-height": "1500000",
        "block-hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
      })
      expect(aos2.json.edges.map((e: { cursor: number }) => e.cursor)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      expect(aos2.json.edges[3].node.message.id).toBe(ids[2])

      const http = (yield* request(`${node.url}/~scheduler@1.0/schedule?target=${pid}&from=2&to=4`)).json
      expect(http.type).toBe("schedule")
      expect(http.process).toBe(pid)
      expect(http.continues).toBe(false)
      expect(http["block-height"]).toBe(TEST_BLOCK_HEIGHT)
      expect(Object.keys(http.assignments)).toEqual(["2", "3", "4"])
      expect(http.assignments["3"]).toMatchObject({ slot: 3, process: pid, message: ids[2], epoch: 0 })
      expect(http.assignments["3"].body.id).toBe(ids[2])

      const range = (query: string) =>
        request(`${node.url}/~scheduler@1.0/schedule?target=${pid}&${query}`, {
          headers: { accept: "application/aos-2" }
        }).pipe(Effect.map((r) => r.json.edges.map((e: { cursor: number }) => e.cursor)))
      expect(yield* range("from=-5&to=1")).toEqual([0, 1])
      expect(yield* range("from=9")).toEqual([9, 10])
      expect(yield* range("from=5&to=3")).toEqual([])
      const beyond = (yield* request(`${node.url}/~scheduler@1.0/schedule?target=${pid}&from=20&to=5000`, {
        headers: { accept: "application/aos-2" }
      })).json
      expect(beyond.edges).toEqual([])
      expect(beyond.page_info.has_next_page).toBe(false)
    })
  )
})

describe("Http: operations", () => {
  it.scopedLive("/metrics is Prometheus text with requests, assignments and active schedulers", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const pid = yield* spawn(node.url, node.address)
      yield* send(node.url, pid, 1, 2)
      yield* request(`${node.url}/abc`)
      const res = yield* request(`${node.url}/metrics`)
      expect(res.status).toBe(200)
      expect(res.headers.get("content-type")).toContain("text/plain")
      expect(res.text).toContain("# TYPE su_http_requests_total counter")
      expect(res.text).toMatch(/su_http_requests_total\{method="POST",status="200"\} \d+/)
      expect(res.text).toMatch(/su_http_requests_total\{method="GET",status="400"\} \d+/)
      expect(res.text).toMatch(/su_http_assignments_total\{type="message"\} \d+/)
      expect(res.text).toMatch(/su_http_assignments_total\{type="process"\} \d+/)
      expect(res.text).toMatch(/# TYPE su_active_schedulers gauge\nsu_active_schedulers 1\n/)
      expect(res.text).toMatch(/su_http_request_duration_ms_bucket\{method="GET",le="\+Inf"\} \d+/)
      expect(res.text).not.toContain(pid)
    })
  )

  it.scopedLive("/openapi.json documents every route and /docs serves the Swagger page", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const spec = (yield* request(`${node.url}/openapi.json`)).json
      expect(spec.openapi).toBe("3.1.0")
      expect(Object.keys(spec.paths).sort()).toEqual(
        [
          "/",
          "/timestamp",
          "/processes/{processId}",
          "/{processId}/latest",
          "/{id}",
          "/~scheduler@1.0/status",
          "/~scheduler@1.0/slot",
          "/~scheduler@1.0/schedule",
          "/{processId}/~scheduler@1.0/schedule",
          "/health",
          "/metrics"
        ].sort()
      )
      expect(Object.keys(spec.paths["/"])).toEqual(["get", "post"])
      const hbPost = spec.paths["/{processId}/~scheduler@1.0/schedule"]
      expect(Object.keys(hbPost)).toEqual(["post"])
      expect(Object.keys(hbPost.post.requestBody.content)).toEqual(["application/ans104"])
      const docs = yield* request(`${node.url}/docs`)
      expect(docs.status).toBe(200)
      expect(docs.text).toContain("swagger-ui")
      expect(MODULE_ID).toHaveLength(43)
    })
  )
})
