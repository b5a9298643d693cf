/**
 * Verified assign (`POST /?process-id=P&assign=TX[&exclude][&base-layer]`) and the node's gateway, over real
 * HTTP against a node pointed at the Arweave double: an id that does not exist never takes a slot, a gateway
 * failure is a 503 that takes none, `exclude` becomes `Exclude` tags, `base-layer` needs confirmations.
 */
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { type ArweaveDouble, startArweaveDouble } from "./fixtures/arweave/index.js"
import * as Client from "./fixtures/client.js"
import { messageItem, processItem } from "./fixtures/dataItems.js"
import { idOf } from "./fixtures/ids.js"
import { post, request, startNode, tempDir } from "./fixtures/node.js"
import { type Edge, send, spawn, tag } from "./fixtures/su.js"

const double = (startHeight = 1_600_000) =>
  Effect.acquireRelease(
    Effect.promise(() => startArweaveDouble({ startHeight })),
    (ar) => Effect.promise(() => ar.close())
  )

const online = (ar: ArweaveDouble) => ({ gateway: { kind: "online" as const, url: ar.url }, blockHeight: 0 })

const assign = (url: string, query: string) => request(`${url}/?${query}`, { method: "POST" })

const edgesOf = (url: string, pid: string) =>
  Effect.map(request(`${url}/${pid}`), (res) => res.json.edges as Array<Edge>)

/** Expects a `{"error"}` body with `status` matching `pattern`. */
const expectError = (res: { status: number; json: unknown; text: string }, status: number, pattern: RegExp) => {
  expect(res.status, res.text).toBe(status)
  expect((res.json as { error: string }).error).toMatch(pattern)
}

describe("verified assign", () => {
  it.scopedLive("unknown and malformed ids get 400 and no slot; a known tx is assigned once (idempotent)", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const node = yield* startNode(online(ar))
      const pid = yield* spawn(node.url, node.address)

      expectError(yield* assign(node.url, `process-id=${pid}&assign=${idOf(77)}`), 400, /Transaction .* not found/)
      expectError(yield* assign(node.url, `process-id=${pid}&assign=short`), 400, /not a valid id/)
      // no slot was taken: the next message gets nonce 1
      const [m1] = yield* send(node.url, pid, 1, 1)
      expect((yield* edgesOf(node.url, pid)).map((e) => [tag(e, "Nonce"), e.node.message?.id])).toEqual([
        ["0", pid],
        ["1", m1]
      ])

      // a transaction the gateway knows
      const tx = yield* Effect.promise(() => messageItem(idOf(5), 9))
      yield* Effect.promise(() => ar.seed(tx))
      const first = yield* assign(node.url, `process-id=${pid}&assign=${tx.id}`)
      expect(first.status, first.text).toBe(200)
      const again = yield* assign(node.url, `process-id=${pid}&assign=${tx.id}`)
      expect(again.json).toEqual(first.json)
      const edges = yield* edgesOf(node.url, pid)
      expect(edges).toHaveLength(3)
      expect(tag(edges[2]!, "Message")).toBe(tx.id)
      expect(edges[2]!.node.message).toBeNull()
      expect(tag(edges[2]!, "Block-Height")).toBe("000001600000")
    })
  )

  it.scopedLive("a gateway that is down or answers 5xx: 503, no slot; it recovers", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const node = yield* startNode(online(ar))
      const pid = yield* spawn(node.url, node.address)
      const tx = yield* Effect.promise(() => messageItem(idOf(5), 1))
      yield* Effect.promise(() => ar.seed(tx))

      ar.faults.status5xx("graphql", 502)
      expectError(yield* assign(node.url, `process-id=${pid}&assign=${tx.id}`), 503, /unavailable/)
      yield* Effect.promise(() => ar.faults.clear("all"))
      yield* Effect.promise(() => ar.faults.down("all"))
      expectError(yield* assign(node.url, `process-id=${pid}&assign=${tx.id}`), 503, /unavailable/)
      expect(yield* edgesOf(node.url, pid)).toHaveLength(1)
      // /health stays 200 while the node is up
      expect((yield* request(`${node.url}/health`)).status).toBe(200)

      yield* Effect.promise(() => ar.faults.up("all"))
      const res = yield* assign(node.url, `process-id=${pid}&assign=${tx.id}`)
      expect(res.status, res.text).toBe(200)
      expect((yield* edgesOf(node.url, pid)).map((e) => tag(e, "Nonce"))).toEqual(["0", "1"])
    })
  )

  it.scopedLive("offline: only messages the SU holds can be assigned", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const pid = yield* spawn(node.url, node.address)
      expectError(yield* assign(node.url, `process-id=${pid}&assign=${idOf(8)}`), 400, /offline .* cannot verify/)
      const [held] = yield* send(node.url, pid, 1, 1)
      const other = yield* spawn(node.url, node.address)
      expect((yield* assign(node.url, `process-id=${other}&assign=${held}`)).status).toBe(200)
    })
  )

  it.scopedLive("exclude: one Exclude tag per value, in order, untrimmed; the signature verifies; malformed: 400", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const node = yield* startNode(online(ar))
      const pid = yield* spawn(node.url, node.address)
      const tx = yield* Effect.promise(() => messageItem(idOf(5), 2))
      yield* Effect.promise(() => ar.seed(tx))

      expectError(yield* assign(node.url, `process-id=${pid}&assign=${tx.id}&exclude=`), 400, /exclude must list/)
      expectError(yield* assign(node.url, `process-id=${pid}&assign=${tx.id}&exclude=Data,`), 400, /empty value/)
      expect(yield* edgesOf(node.url, pid)).toHaveLength(1)

      const res = yield* assign(node.url, `process-id=${pid}&assign=${tx.id}&exclude=Data,%20Anchor,Tags`)
      expect(res.status, res.text).toBe(200)
      const [, edge] = yield* edgesOf(node.url, pid)
      expect(edge!.node.assignment.tags.slice(9)).toEqual([
        { name: "Message", value: tx.id },
        { name: "Exclude", value: "Data" },
        { name: "Exclude", value: " Anchor" },
        { name: "Exclude", value: "Tags" }
      ])
      expect(yield* Client.verifyAssignmentJson(edge!.node.assignment)).toBeUndefined()
      const byId = (yield* request(`${node.url}/${res.json.id}?process-id=${pid}`)).json
      expect(byId.assignment.tags.filter((t: { name: string }) => t.name === "Exclude")).toHaveLength(3)
      // the next message continues the chain
      yield* send(node.url, pid, 1, 1)
      const edges = yield* edgesOf(node.url, pid)
      expect(
        Client.verifyScheduleChain(
          pid,
          edges.map((e) => e.node)
        )
      ).toBeUndefined()
    })
  )

  it.scopedLive("base-layer: assigned at Settlement-Depth confirmations; pending, too few or unknown: 400", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const node = yield* startNode(online(ar))
      const pid = yield* spawn(node.url, node.address) // default depth 20
      const process3 = yield* Effect.promise(() =>
        processItem(node.address, [{ name: "Settlement-Depth", value: "3" }])
      )
      expect((yield* post(node.url, process3.getRaw())).status).toBe(200)
      const tx = yield* Effect.promise(() => messageItem(idOf(5), 3))
      yield* Effect.promise(() => ar.seed(tx))
      const baseLayer = (p: string, id: string) => assign(node.url, `process-id=${p}&assign=${id}&base-layer`)

      expectError(yield* baseLayer(pid, tx.id), 400, /Not enough confirmations to assign/) // pending
      ar.mine(2)
      expectError(yield* baseLayer(process3.id, tx.id), 400, /Not enough confirmations to assign: .* has 2/)
      ar.mine(1)
      expect((yield* baseLayer(process3.id, tx.id)).status).toBe(200)
      expectError(yield* baseLayer(pid, tx.id), 400, /Not enough confirmations/)
      ar.mine(17)
      expect((yield* baseLayer(pid, tx.id)).status).toBe(200)
      expectError(yield* baseLayer(pid, idOf(99)), 400, /not found/)
      expect(yield* edgesOf(node.url, pid)).toHaveLength(2)
      expect(yield* edgesOf(node.url, process3.id)).toHaveLength(2)
    })
  )
})

describe("the node's gateway", () => {
  it.scopedLive("/health, /timestamp and the HyperBEAM reads report the gateway's block", () =>
    Effect.gen(function* () {
      const ar = yield* double(1_600_000)
      const node = yield* startNode(online(ar))
      const block = (yield* request(`${ar.url}/block/current`)).json
      const health = (yield* request(`${node.url}/health`)).json
      expect(health).toMatchObject({
        status: "ok",
        gateway: { state: "online", url: ar.url, height: 1_600_000, hash: block.indep_hash }
      })
      expect(health.gateway.blockAgeMs).toEqual(expect.any(Number))
      expect((yield* request(`${node.url}/timestamp`)).json.block_height).toBe("000001600000")
      const pid = yield* spawn(node.url, node.address)
      const slot = (yield* request(`${node.url}/~scheduler@1.0/slot?target=${pid}`)).json
      expect(slot["block-height"]).toBe(1_600_000)
      expect(slot["block-hash"]).toBe(block.indep_hash)
      const schedule = (yield* request(`${node.url}/~scheduler@1.0/schedule?target=${pid}`)).json
      expect(schedule["block-hash"]).toBe(block.indep_hash)
    })
  )

  it.scopedLive("a gateway down at first start: the node starts at the store's highest height, unreachable", () =>
    Effect.gen(function* () {
      const ar = yield* double(1_600_000)
      const dir = yield* tempDir()
      const store = { kind: "sqlite" as const, filename: Path.join(dir, "su.sqlite") }
      const first = yield* Scope.make()
      const node = yield* startNode({ ...online(ar), dataDir: dir, store }).pipe(Scope.extend(first))
      yield* spawn(node.url, node.address)
      yield* Scope.close(first, Exit.void)

      yield* Effect.promise(() => ar.faults.down("all"))
      const again = yield* startNode({ ...online(ar), dataDir: dir, store })
      const health = (yield* request(`${again.url}/health`)).json
      expect(health.gateway).toMatchObject({ state: "unreachable", height: 1_600_000, blockAgeMs: null })
      expect(health.gateway.lastError).toEqual(expect.any(String))
      expect((yield* request(`${again.url}/timestamp`)).json.block_height).toBe("000001600000")
    })
  )
})
