/**
 * End to end over real HTTP: a node on a random port with a SQLite store, data items signed exactly as aoconnect
 * signs them, pages walked as the CU walks them, every assignment verified from the wire and the hash chain
 * checked against the CU's algorithm, then a restart on the same data directory.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { type Clock, Context, Effect, Either, Exit, Layer, Scope } from "effect"
import * as Assignment from "../src/Assignment.js"
import * as AssignmentStore from "../src/AssignmentStore.js"
import * as DataItem from "../src/DataItem.js"
import type { ProcessId } from "../src/ProcessId.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import { startArweaveDouble } from "./fixtures/arweave/index.js"
import * as Client from "./fixtures/client.js"
import { hashChain } from "./fixtures/cu-hash-chain.js"
import { messageItem, processItem } from "./fixtures/dataItems.js"
import { post, request, startNode, tempDir } from "./fixtures/node.js"
import { type Edge, send, spawn, tag, walk } from "./fixtures/su.js"

const sqlite = (dir: string) => ({ kind: "sqlite" as const, filename: Path.join(dir, "su.sqlite") })

/** The chain as `Client` checks it, and independently with the CU's `hashChain()`, starting value included. */
const expectChainValid = (processId: string, edges: ReadonlyArray<Edge>) => {
  expect(
    Client.verifyScheduleChain(
      processId,
      edges.map((e) => e.node)
    )
  ).toBeUndefined()
  const links = edges.map((e) => ({ id: e.node.assignment.id, hashChain: tag(e, "Hash-Chain")! }))
  expect(links[0]!.hashChain).toBe(hashChain(processId))
  for (let i = 1; i < links.length; i++) {
    expect(links[i]!.hashChain).toBe(hashChain(links[i - 1]!.hashChain, links[i - 1]!.id))
  }
}

/** Runs `f` on the SQLite store at `filename`, opened in its own scope. */
const withStore = <A>(
  filename: string,
  f: (store: AssignmentStore.AssignmentStore["Type"]) => Effect.Effect<A, unknown>
) =>
  Effect.scoped(
    Effect.flatMap(Layer.build(SqliteStore.layer({ filename })), (ctx) =>
      f(Context.get(ctx, AssignmentStore.AssignmentStore))
    )
  )

describe("e2e", () => {
  it.scopedLive(
    "a new node creates its wallet; a Process and 10 Messages are scheduled, paged 3 at a time, verified, and a restart continues at nonce 11",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const walletPath = Path.join(dir, "wallet.json")
        expect(Fs.existsSync(walletPath)).toBe(false)

        const first = yield* Scope.make()
        const node = yield* startNode({ dataDir: dir, walletPath, store: sqlite(dir) }).pipe(Scope.extend(first))
        expect(Fs.statSync(walletPath).mode & 0o777).toBe(0o600)
        expect(node.address).toMatch(/^[A-Za-z0-9_-]{43}$/)
        expect(node.storePath).toBe(Path.join(dir, "su.sqlite"))

        const process = yield* Effect.promise(() => processItem(node.address))
        expect((yield* post(node.url, process.getRaw())).json.id).toBe(process.id)
        const messages = yield* send(node.url, process.id, 1, 10)

        const { edges, pages } = yield* walk(node.url, process.id, 3)
        expect(pages).toBe(4)
        expect(edges.map((e) => tag(e, "Nonce"))).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"])
        expect(edges.map((e) => e.node.message?.id)).toEqual([process.id, ...messages])
        expect(edges.map((e) => e.node.message?.data)).toEqual([
          "-- process source\nreturn 1",
          ...messages.map((_, i) => `message ${i + 1}`)
        ])
        for (const edge of edges) {
          expect(yield* Client.verifyAssignmentJson(edge.node.assignment)).toBeUndefined()
          expect(edge.node.assignment.tags.find((t) => t.name === "Process")?.value).toBe(process.id)
        }
        expectChainValid(process.id, edges)

        yield* Scope.close(first, Exit.void)

        // the store on disk holds the same signed assignments
        const stored = yield* withStore(node.storePath!, (store) =>
          store.range(process.id as ProcessId, { by: "slot", limit: 100 })
        )
        expect(stored.map((e) => e.assignment.id)).toEqual(edges.map((e) => e.node.assignment.id))
        for (const entry of stored) expect(yield* Assignment.verify(entry.assignment)).toBeUndefined()
        expect(
          Assignment.verifyChain(
            process.id,
            stored.map((e) => e.assignment)
          )
        ).toBeUndefined()
        expect(stored.map((e) => Either.getOrThrow(DataItem.decode(e.message!)).id)).toEqual([process.id, ...messages])

        // restart on the same directory: same wallet, the schedule continues at nonce 11
        const node2 = yield* startNode({ dataDir: dir, walletPath, store: sqlite(dir) })
        expect(node2.address).toBe(node.address)
        expect((yield* request(`${node2.url}/~scheduler@1.0/status`)).json.processes).toEqual([])
        const eleventh = yield* send(node2.url, process.id, 11, 11)
        const after = yield* walk(node2.url, process.id, 5)
        expect(after.edges).toHaveLength(12)
        expect(tag(after.edges[11]!, "Nonce")).toBe("11")
        expect(after.edges[11]!.node.message?.id).toBe(eleventh[0])
        expectChainValid(process.id, after.edges)
        expect(Number(after.edges[11]!.cursor)).toBeGreaterThan(Number(after.edges[10]!.cursor))
        const processJson = (yield* request(`${node2.url}/processes/${process.id}`)).json
        expect(processJson.process_id).toBe(process.id)
      })
  )

  it.scopedLive("after a restart, the HyperBEAM slot read starts the scheduler of a stored process", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const first = yield* Scope.make()
      const node = yield* startNode({ dataDir: dir, store: sqlite(dir) }).pipe(Scope.extend(first))
      const pid = yield* spawn(node.url, node.address)
      yield* send(node.url, pid, 1, 2)
      yield* Scope.close(first, Exit.void)

      const node2 = yield* startNode({ dataDir: dir, store: sqlite(dir) })
      expect((yield* request(`${node2.url}/~scheduler@1.0/status`)).json.processes).toEqual([])
      const slot = (yield* request(`${node2.url}/~scheduler@1.0/slot?target=${pid}`)).json
      expect(slot.current).toBe(2)
      expect((yield* request(`${node2.url}/~scheduler@1.0/status`)).json.processes).toEqual([pid])
    })
  )

  it.scopedLive("aoconnect's getMessagesByRange: GET /{pid}?from&to&limit without process-id returns a page", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const pid = yield* spawn(node.url, node.address)
      yield* send(node.url, pid, 1, 4)
      const all = (yield* request(`${node.url}/${pid}`)).json.edges as Array<Edge>
      const res = yield* request(`${node.url}/${pid}?from=${all[0]!.cursor}&to=${all[3]!.cursor}&limit=2`)
      expect(res.status, res.text).toBe(200)
      expect(res.json.edges.map((e: Edge) => tag(e, "Nonce"))).toEqual(["1", "2"])
      expect(res.json.page_info.has_next_page).toBe(true)
      // aoconnect's getLastSlot: process-id, limit=100, from = ten minutes ago; takes the last edge's Nonce
      const recent = yield* request(`${node.url}/${pid}?process-id=${pid}&limit=100&from=${Date.now() - 600_000}`)
      expect(tag(recent.json.edges.at(-1), "Nonce")).toBe("4")
    })
  )

  it.scopedLive(
    "K11: 200 concurrent POST / for one process get nonces 1..200, strictly increasing timestamps; paging walks 201 edges; the chain verifies",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const node = yield* startNode({ dataDir: dir, store: sqlite(dir) })
        const pid = yield* spawn(node.url, node.address)
        const items = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 200 }, (_, i) => messageItem(pid, i + 1)))
        )
        const replies = yield* Effect.forEach(items, (item) => post(node.url, item.getRaw()), {
          concurrency: "unbounded"
        })
        expect(replies.map((r) => r.status)).toEqual(Array(200).fill(200))
        const { edges, pages } = yield* walk(node.url, pid, 50, { "process-id": pid })
        expect(pages).toBe(5)
        expect(edges).toHaveLength(201)
        expect(edges.map((e) => Number(tag(e, "Nonce")))).toEqual(Array.from({ length: 201 }, (_, i) => i))
        expect(new Set(edges.slice(1).map((e) => e.node.message?.id))).toEqual(new Set(items.map((i) => i.id)))
        const timestamps = edges.map((e) => Number(tag(e, "Timestamp")))
        for (let i = 1; i < timestamps.length; i++) expect(timestamps[i]).toBeGreaterThan(timestamps[i - 1]!)
        expectChainValid(pid, edges)
        // each reply's timestamp is its own assignment's
        const byId = new Map(edges.map((e) => [e.node.message?.id, Number(tag(e, "Timestamp"))]))
        for (const [i, reply] of replies.entries()) expect(reply.json.timestamp).toBe(byId.get(items[i]!.id))
      }),
    60_000
  )

  it.scopedLive("K14: with the clock pinned, timestamps still strictly increase and cursor paging skips nothing", () =>
    Effect.gen(function* () {
      const real = yield* Effect.clock
      const pinned: Clock.Clock = Object.assign(Object.create(real) as Clock.Clock, {
        unsafeCurrentTimeMillis: () => 1000,
        currentTimeMillis: Effect.succeed(1000)
      })
      const node = yield* startNode().pipe(Effect.withClock(pinned))
      const pid = yield* spawn(node.url, node.address)
      const [m1, m2] = yield* send(node.url, pid, 1, 2)
      const all = (yield* request(`${node.url}/${pid}`)).json.edges as Array<Edge>
      expect(all.map((e) => e.cursor)).toEqual(["1000", "1001", "1002"])
      const page1 = (yield* request(`${node.url}/${pid}?limit=1&from=1000`)).json
      expect(page1.edges.map((e: Edge) => e.node.message?.id)).toEqual([m1])
      expect(page1.page_info.has_next_page).toBe(true)
      const page2 = (yield* request(`${node.url}/${pid}?limit=1&from=${page1.edges[0].cursor}`)).json
      expect(page2.edges.map((e: Edge) => e.node.message?.id)).toEqual([m2])
      expect(page2.page_info.has_next_page).toBe(false)
    })
  )

  it.scopedLive(
    "with the gateway at 1,600,000 a spawned process carries that height, and the CU's hash-chain validation runs and passes",
    () =>
      Effect.gen(function* () {
        const ar = yield* Effect.acquireRelease(
          Effect.promise(() => startArweaveDouble({ startHeight: 1_600_000 })),
          (double) => Effect.promise(() => double.close())
        )
        // no fixed height: everything comes from the gateway (GET /block/current)
        const node = yield* startNode({ gateway: { kind: "online", url: ar.url }, blockHeight: 0 })
        const pid = yield* spawn(node.url, node.address)
        ar.mine(2)
        yield* send(node.url, pid, 1, 3)

        // the CU's loadProcess: parseInt(block), then isHashChainValidationEnabled = height >= 1440000
        const processBlock = (yield* request(`${node.url}/processes/${pid}`)).json.block
        expect(typeof processBlock).toBe("string")
        const height = Number.parseInt(processBlock, 10)
        expect(height).toBe(1_600_000)
        const isHashChainValidationEnabled = height >= 1_440_000
        expect(isHashChainValidationEnabled).toBe(true)

        // the CU's loadMessages: every link verified
        const { edges } = yield* walk(node.url, pid, 100)
        expect(edges).toHaveLength(4)
        expect(tag(edges[0]!, "Block-Height")).toBe("000001600000")
        for (const edge of edges.slice(1)) {
          expect(Number.parseInt(tag(edge, "Block-Height")!, 10)).toBeGreaterThanOrEqual(1_600_000)
        }
        let links = 0
        for (let i = 1; i < edges.length; i++) {
          const prev = edges[i - 1]!
          expect(tag(edges[i]!, "Hash-Chain")).toBe(hashChain(tag(prev, "Hash-Chain")!, prev.node.assignment.id))
          links++
        }
        expect(links).toBe(3)
        expectChainValid(pid, edges)
      })
  )
})
