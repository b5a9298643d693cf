/**
 * Pages bounded by bytes as well as by count (`--max-page-bytes`): a cut page says `has_next_page`, a message
 * larger than the bound comes back alone, walking the pages still gives every edge, and concurrent reads of
 * large pages each read from the store no more than the bound (the store's bytes read, counted per page).
 */
import * as Path from "node:path"
import { HttpApiBuilder, HttpServer } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as AssignmentStore from "../src/AssignmentStore.js"
import * as Http from "../src/node/Http.js"
import { messageTags, processItem, processTags, randomAnchor, signedItem } from "./fixtures/dataItems.js"
import { post, request, startNode } from "./fixtures/node.js"
import { registryLayer } from "./fixtures/registry.js"
import { spawn, walk } from "./fixtures/su.js"

const NODE_ADDRESS = "b1ayEFhXXqrS30fIn5k8ARPglHDKWXkVp_0wbTwo5UI"

/** A message to `processId` carrying `bytes` bytes of data (over the 64 KiB the SQL stores keep node JSON for). */
const bigMessage = (processId: string, n: number, bytes: number) =>
  Effect.promise(() =>
    signedItem({ data: Buffer.alloc(bytes, n % 256), tags: messageTags(), target: processId, anchor: undefined })
  )

/** Posts `count` messages of `bytes` bytes each to `processId` through `postItem`; returns their ids. */
const sendBig = (
  postItem: (raw: Uint8Array) => Effect.Effect<{ readonly status: number; readonly text: string }>,
  processId: string,
  count: number,
  bytes: number
) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => i + 1),
    (n) =>
      Effect.gen(function* () {
        const item = yield* bigMessage(processId, n, bytes)
        const res = yield* postItem(item.getRaw())
        expect(res.status, res.text).toBe(200)
        return item.id
      })
  )

describe("Http: pages bounded by bytes", () => {
  it.scopedLive("GET /{process} and the HyperBEAM schedule stop at --max-page-bytes and say there is more", () =>
    Effect.gen(function* () {
      const node = yield* startNode({ maxPageBytes: 700_000 })
      const sqlite = yield* startNode({
        maxPageBytes: 700_000,
        store: { kind: "sqlite", filename: Path.join(node.dataDir, "pages.sqlite") }
      })
      for (const { url } of [node, sqlite]) {
        const pid = yield* spawn(url, NODE_ADDRESS)
        const ids = yield* sendBig((raw) => post(url, raw), pid, 5, 300_000)

        // the Process (about 1 KB) and two 300 KB messages fit in 700,000 bytes; a third would not
        const first = (yield* request(`${url}/${pid}?limit=1000`)).json
        expect(first.edges.map((e: { node: { message: { id: string } } }) => e.node.message.id)).toEqual([
          pid,
          ids[0],
          ids[1]
        ])
        expect(first.page_info.has_next_page).toBe(true)
        // nonce mode is bounded the same way
        const byNonce = (yield* request(`${url}/${pid}?from-nonce=2&limit=1000`)).json
        expect(byNonce.edges.map((e: { cursor: string }) => e.cursor)).toEqual(["3", "4"])
        expect(byNonce.page_info.has_next_page).toBe(true)
        // walking the cut pages still gives every edge once, in order
        const walked = yield* walk(url, pid, 1000)
        expect(walked.edges.map((e) => e.node.message?.id)).toEqual([pid, ...ids])
        expect(walked.pages).toBe(3)

        const schedule = (yield* request(`${url}/~scheduler@1.0/schedule?target=${pid}&from=0&to=5`)).json
        expect(Object.keys(schedule.assignments)).toEqual(["0", "1", "2"])
        expect(schedule.continues).toBe(true)
        const rest = (yield* request(`${url}/~scheduler@1.0/schedule?target=${pid}&from=3&to=5`)).json
        expect(Object.keys(rest.assignments)).toEqual(["3", "4"])
        expect(rest.continues).toBe(true)
      }
    })
  )

  it.scopedLive("a message larger than the bound comes back alone, one a page, with has_next_page", () =>
    Effect.gen(function* () {
      const node = yield* startNode({ maxPageBytes: 100_000 })
      const pid = yield* spawn(node.url, NODE_ADDRESS)
      const ids = yield* sendBig((raw) => post(node.url, raw), pid, 3, 300_000)
      const walked = yield* walk(node.url, pid, 1000)
      expect(walked.edges.map((e) => e.node.message?.id)).toEqual([pid, ...ids])
      // the Process alone (the next message would pass the bound), then one message a page
      expect(walked.pages).toBe(4)
      const last = (yield* request(`${node.url}/${pid}?from-nonce=2`)).json
      expect(last.edges.map((e: { cursor: string }) => e.cursor)).toEqual(["3"])
      expect(last.page_info.has_next_page).toBe(false)

      // a Process over the bound, read with `from` before it: it is skipped (K13), and the page is not left empty
      const big = yield* Effect.promise(() =>
        signedItem({ data: Buffer.alloc(300_000, 97), tags: processTags(NODE_ADDRESS), anchor: randomAnchor() })
      )
      expect((yield* post(node.url, big.getRaw())).status).toBe(200)
      const [message] = yield* sendBig((raw) => post(node.url, raw), big.id, 1, 1_000)
      const page = (yield* request(`${node.url}/${big.id}?from=0`)).json
      expect(page.edges.map((e: { node: { message: { id: string } } }) => e.node.message.id)).toEqual([message])
      expect(page.page_info.has_next_page).toBe(false)
    })
  )

  it.scopedLive("10 concurrent reads of a 1.5 MB schedule each read at most the bound from the store", () =>
    Effect.gen(function* () {
      // the bytes of entries each page read returned, recorded per call
      const reads: Array<number> = []
      const counting = Layer.effect(
        AssignmentStore.AssignmentStore,
        Effect.map(AssignmentStore.makeMemory, (inner) => ({
          ...inner,
          page: (processId: Parameters<typeof inner.page>[0], query: AssignmentStore.PageQuery) =>
            Effect.tap(inner.page(processId, query), ({ entries }) =>
              Effect.sync(() => {
                reads.push(entries.reduce((n, e) => n + e.assignment.raw.byteLength + (e.message?.byteLength ?? 0), 0))
              })
            )
        }))
      )
      const registry = registryLayer({}, counting)
      const serve = (maxPageBytes: number) =>
        Effect.acquireRelease(
          Effect.sync(() =>
            HttpApiBuilder.toWebHandler(
              Layer.mergeAll(
                Http.layerApi({ maxPageBytes, bodyLimit: 1024 * 1024 }).pipe(Layer.provide(registry)),
                HttpServer.layerContext
              )
            )
          ),
          ({ dispose }) => Effect.promise(dispose)
        )
      const bounded = yield* serve(700_000)
      const call = (path: string, init?: RequestInit) =>
        Effect.promise(async () => {
          const res = await bounded.handler(new Request(`http://su${path}`, init))
          return { status: res.status, text: await res.text() }
        })
      const process = yield* Effect.promise(() => processItem(NODE_ADDRESS))
      expect((yield* call("/", { method: "POST", body: process.getRaw() })).status).toBe(200)
      yield* sendBig((raw) => call("/", { method: "POST", body: raw }), process.id, 5, 300_000)

      const pages = yield* Effect.all(
        Array.from({ length: 10 }, () => call(`/${process.id}?limit=1000`)),
        { concurrency: "unbounded" }
      )
      for (const page of pages) {
        const json = JSON.parse(page.text)
        expect(json.edges).toHaveLength(3)
        expect(json.page_info.has_next_page).toBe(true)
      }
      expect(reads).toHaveLength(10)
      // each read holds the Process and two messages, never the whole 1.5 MB schedule
      for (const bytes of reads) {
        expect(bytes).toBeGreaterThan(600_000)
        expect(bytes).toBeLessThanOrEqual(700_000)
      }
      expect(reads.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10 * 700_000)
    })
  )
})
