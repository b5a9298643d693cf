/**
 * The Arweave gateway + bundler double (test/fixtures/arweave) against the real client libraries:
 * `@permaweb/ao-scheduler-utils`, the `arweave` package, the exact GraphQL queries of the SU, MU and CU, and
 * `@dha-team/arbundles` items and bundles. Then every fault switch.
 */
import { ArweaveSigner, bundleAndSignData, createData, type DataItem } from "@dha-team/arbundles"
import Arweave from "arweave"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type ArweaveDouble, startArweaveDouble } from "./fixtures/arweave/index.js"
import { ownerAddress } from "./fixtures/arweave/store.js"
import { clientSigner, messageItem, processItem, signedItem, tampered } from "./fixtures/dataItems.js"
import { walletJwk, walletJwk2 } from "./fixtures/wallet.js"

const suSigner = new ArweaveSigner(walletJwk)
const suAddress = ownerAddress(suSigner.publicKey)
/** A canonical 43-character base64url id (32 bytes) to send messages to. */
const TARGET = Buffer.alloc(32, 7).toString("base64url")

/** A Scheduler-Location record as the reference deploy script writes it, with `url`. */
const schedulerLocation = (url: string, signer: ArweaveSigner = suSigner): Promise<DataItem> =>
  signedItem(
    {
      data: "1984",
      tags: [
        { name: "Content-Type", value: "text/plain" },
        { name: "Type", value: "Scheduler-Location" },
        { name: "Time-To-Live", value: "3600000" },
        { name: "Url", value: url },
        { name: "Data-Protocol", value: "ao" },
        { name: "Variant", value: "ao.TN.1" }
      ]
    },
    signer
  )

const upload = (ar: ArweaveDouble, body: Uint8Array, path = "/tx/arweave"): Promise<Response> =>
  fetch(ar.url + path, { method: "POST", headers: { "content-type": "application/octet-stream" }, body })

interface GqlResult {
  // biome-ignore lint/suspicious/noExplicitAny: JSON read from the wire
  readonly data?: any
  readonly errors?: ReadonlyArray<{ readonly message: string }>
}
const gql = async (ar: ArweaveDouble, query: string, variables: Record<string, unknown> = {}): Promise<GqlResult> => {
  const res = await fetch(ar.url + "/graphql", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables })
  })
  expect(res.status).toBe(200)
  return (await res.json()) as GqlResult
}

/** Waits (event-loop turns, no clock) until `condition` holds. */
const until = async (condition: () => boolean): Promise<void> => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve))
}

/** "settled" if `promise` has settled, else "pending" (raced against an already-resolved marker). */
const stateOf = (promise: Promise<unknown>): Promise<"settled" | "pending"> =>
  Promise.race([
    promise.then(
      () => "settled" as const,
      () => "settled" as const
    ),
    Promise.resolve("pending" as const)
  ])

describe("@permaweb/ao-scheduler-utils against the double", () => {
  let ar: ArweaveDouble
  const realFetch = globalThis.fetch
  let routerCalls = 0

  beforeAll(async () => {
    ar = await startArweaveDouble()
    // §9: the hint-less locate first asks the hard-coded su-router; offline it must get a 404, not a DNS error
    globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input))
      if (url.host === "su-router.ao-testnet.xyz") {
        routerCalls++
        return Promise.resolve(new Response("Not Found", { status: 404 }))
      }
      return realFetch(input, init)
    }) as typeof fetch
  })
  afterAll(async () => {
    globalThis.fetch = realFetch
    await ar.close()
  })

  it("locate, validate and raw find the Scheduler-Location uploaded through the bundler", async () => {
    const { connect } = await import("@permaweb/ao-scheduler-utils")
    const record = await schedulerLocation("http://127.0.0.1:9999")
    expect((await upload(ar, record.getRaw())).status).toBe(200)
    const process = await processItem(suAddress)
    await ar.seed(process)

    const su = connect({ GRAPHQL_URL: ar.url + "/graphql", cacheSize: 100, followRedirects: false })
    expect(await su.locate(process.id)).toEqual({ url: "http://127.0.0.1:9999", address: suAddress })
    expect(routerCalls).toBe(1)
    expect(await su.validate(suAddress)).toBe(true)
    expect(await su.raw(suAddress)).toEqual({ url: "http://127.0.0.1:9999" })

    const hinted = connect({ GRAPHQL_URL: ar.url + "/graphql", cacheSize: 100, followRedirects: false })
    const graphqlBefore = ar.requests.graphql
    expect(await hinted.locate(process.id, suAddress)).toEqual({ url: "http://127.0.0.1:9999", address: suAddress })
    expect(routerCalls).toBe(1) // the hint path never asks the router
    expect(ar.requests.graphql).toBe(graphqlBefore + 1) // only GetSchedulerLocation
  })

  it("the newest record wins (a pending one first under HEIGHT_DESC); an unknown wallet throws", async () => {
    const { connect } = await import("@permaweb/ao-scheduler-utils")
    ar.mine()
    await ar.seed(await schedulerLocation("http://127.0.0.1:9998"))
    const su = connect({ GRAPHQL_URL: ar.url + "/graphql", cacheSize: 0, followRedirects: false })
    expect(await su.raw(suAddress)).toEqual({ url: "http://127.0.0.1:9998" })
    const other = ownerAddress(new ArweaveSigner(walletJwk2).publicKey)
    await expect(su.validate(other)).rejects.toThrow(/Scheduler-Location/)
  })
})

describe("the arweave package against the double", () => {
  let ar: ArweaveDouble
  beforeAll(async () => {
    ar = await startArweaveDouble({ startHeight: 1_440_000 })
  })
  afterAll(() => ar.close())

  it("getInfo, getStatus (mined and pending) and api.post('graphql')", async () => {
    const arweave = Arweave.init({ host: "127.0.0.1", port: ar.port, protocol: "http" })
    expect((await arweave.network.getInfo()).height).toBe(1_440_000)
    const mined = await ar.seed(await messageItem("x".repeat(43), 1))
    const [block] = ar.mine(3)
    const pending = await ar.seed(await messageItem("x".repeat(43), 2))
    expect((await arweave.network.getInfo()).height).toBe(1_440_003)

    const status = await arweave.transactions.getStatus(mined.id)
    expect(status.status).toBe(200)
    expect(status.confirmed).toEqual({
      block_height: 1_440_001,
      block_indep_hash: block!.id,
      number_of_confirmations: 3
    })
    expect(block!.id).toMatch(/^[A-Za-z0-9_-]{64}$/)
    expect((await arweave.transactions.getStatus(pending.id)).status).toBe(202)
    expect((await arweave.transactions.getStatus("y".repeat(43))).status).toBe(404)

    const res = await arweave.api.post("graphql", {
      query: `query { transactions(ids: ["${mined.id}"]) { edges { node { id block { height } } } } }`
    })
    expect(res.data).toEqual({
      data: { transactions: { edges: [{ node: { id: mined.id, block: { height: 1_440_001 } } }] } }
    })
  })
})

describe("GraphQL: the SU, MU and CU queries", () => {
  let ar: ArweaveDouble
  let message: DataItem
  beforeAll(async () => {
    ar = await startArweaveDouble()
    message = await messageItem(TARGET, 1)
    await ar.seed(message)
  })
  afterAll(() => ar.close())

  it("the legacy SU's gql_tx (inlined id, empty variables): base64url anchor and recipient", async () => {
    const query = `query { transactions(ids: ["${message.id}"]) { edges { node { id signature anchor owner { address key } tags { name value } recipient } } } }`
    const { data } = await gql(ar, query, {})
    const node = data.transactions.edges[0].node
    expect(node).toEqual({
      id: message.id,
      signature: message.signature,
      anchor: message.anchor,
      owner: { address: ownerAddress(clientSigner.publicKey), key: message.owner },
      tags: message.tags,
      recipient: TARGET
    })
    expect(Buffer.from(node.anchor, "base64url").toString("base64url")).toBe(node.anchor)
    const plain = await ar.seed(await signedItem({ tags: [{ name: "A", value: "1" }] }))
    const bare = await gql(ar, `{ transactions(ids: ["${plain.id}"]) { edges { node { anchor recipient } } } }`)
    expect(bare.data.transactions.edges[0].node).toEqual({ anchor: "", recipient: "" })
  })

  it("the MU's Scheduler-Location paging query, and `after` cursors", async () => {
    const a = await ar.seed(await schedulerLocation("http://su-a"))
    ar.mine()
    const b = await ar.seed(await schedulerLocation("http://su-b", new ArweaveSigner(walletJwk2)))
    const query = `query GetSchedulers($cursor: String) {
      transactions(tags: [{name: "Type", values: ["Scheduler-Location"]}, {name: "Data-Protocol", values: ["ao"]}],
        first: 100, after: $cursor) {
        edges { node { id owner { address } tags { name value } block { id height timestamp } } cursor }
        pageInfo { hasNextPage } } }`
    const all = await gql(ar, query, { cursor: null })
    expect(all.data.transactions.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([b.id, a.id])
    expect(all.data.transactions.edges[0].node.block).toBeNull()
    expect(all.data.transactions.edges[1].node.block).toEqual({
      id: a.block!.id,
      height: 1_600_001,
      timestamp: a.block!.timestamp
    })
    const page = `query ($cursor: String) { transactions(tags: [{name: "Type", values: ["Scheduler-Location"]}],
      first: 1, after: $cursor, sort: HEIGHT_ASC) { edges { cursor node { id } } pageInfo { hasNextPage } } }`
    const first = await gql(ar, page, { cursor: null })
    expect(first.data.transactions).toMatchObject({ pageInfo: { hasNextPage: true }, edges: [{ node: { id: a.id } }] })
    const second = await gql(ar, page, { cursor: first.data.transactions.edges[0].cursor })
    expect(second.data.transactions).toMatchObject({
      pageInfo: { hasNextPage: false },
      edges: [{ node: { id: b.id } }]
    })
  })

  it("AND across filters, OR within a tag's values, owners", async () => {
    const q = (filter: string) => `{ transactions(${filter}, first: 100) { edges { node { id } } } }`
    const ids = async (filter: string) =>
      (await gql(ar, q(filter))).data.transactions.edges.map((e: { node: { id: string } }) => e.node.id)
    expect(await ids(`tags: [{name: "Type", values: ["Message", "Process"]}]`)).toEqual([message.id])
    expect(await ids(`tags: [{name: "Type", values: ["Message"]}, {name: "Action", values: ["Other"]}]`)).toEqual([])
    expect(
      await ids(`owners: ["${ownerAddress(clientSigner.publicKey)}"], tags: [{name: "Action", values: ["Eval"]}]`)
    ).toEqual([message.id])
    expect(await ids(`owners: ["${suAddress}"], tags: [{name: "Action", values: ["Eval"]}]`)).toEqual([])
  })

  it("the CU's blocks query pages upwards from a height; `first` is capped at 100", async () => {
    const query = `query GetBlocks($min: Int!, $limit: Int!) {
      blocks(height: {min: $min}, first: $limit, sort: HEIGHT_ASC) {
        pageInfo { hasNextPage } edges { node { timestamp height } } } }`
    const top = ar.height
    const { data } = await gql(ar, query, { min: top - 2, limit: 90 })
    expect(data.blocks.pageInfo.hasNextPage).toBe(false)
    expect(data.blocks.edges.map((e: { node: { height: number } }) => e.node.height)).toEqual([top - 2, top - 1, top])
    const [t0, t1] = data.blocks.edges.map((e: { node: { timestamp: number } }) => e.node.timestamp)
    expect(t1 - t0).toBe(120)
    const many = await gql(ar, query, { min: 1_000_000, limit: 500 })
    expect(many.data.blocks.edges).toHaveLength(100)
    expect(many.data.blocks.pageInfo.hasNextPage).toBe(true)
    const desc = await gql(ar, `{ blocks(height: {min: 5, max: 6}) { edges { node { height previous id } } } }`)
    expect(desc.data.blocks.edges.map((e: { node: { height: number } }) => e.node.height)).toEqual([6, 5])
    expect(desc.data.blocks.edges[0].node.previous).toBe(desc.data.blocks.edges[1].node.id)
  })

  it("the CU's GetProcesses query with @skip(if:) variables", async () => {
    const query = `
    query GetProcesses ($processIds: [ID!]!, $skipTags: Boolean!, $skipSignature: Boolean!, $skipAnchor: Boolean!) {
      transactions(ids: $processIds) {
        edges { node { id signature @skip (if: $skipSignature) anchor @skip (if: $skipAnchor)
          owner { address key } tags @skip (if: $skipTags) { name value } recipient } } } }`
    const vars = { processIds: [message.id], skipTags: true, skipSignature: true, skipAnchor: false }
    const node = (await gql(ar, query, vars)).data.transactions.edges[0].node
    expect(Object.keys(node).sort()).toEqual(["anchor", "id", "owner", "recipient"])
    const full = (await gql(ar, query, { ...vars, skipTags: false, skipSignature: false })).data.transactions.edges[0]
    expect(full.node.tags).toEqual(message.tags)
    expect(full.node.signature).toBe(message.signature)
  })

  it("data, fee, quantity, parent and GraphQL errors", async () => {
    const { data } = await gql(
      ar,
      `{ transactions(ids: ["${message.id}"]) { edges { node {
      data { size type } fee { winston ar } quantity { winston ar } parent { id } } } } }`
    )
    expect(data.transactions.edges[0].node).toEqual({
      data: { size: String(message.rawData.length), type: null }, // no Content-Type tag
      fee: { winston: "0", ar: "0.000000000000" },
      quantity: { winston: "0", ar: "0.000000000000" },
      parent: null
    })
    const bad = await gql(ar, `{ transactions(nope: 1) { edges { cursor } } }`)
    expect(bad.errors?.[0]?.message).toMatch(/nope/)
  })
})

describe("bundler (B1), cache (C1) and gateway reads (G1, G2, G4, G6, G7)", () => {
  let ar: ArweaveDouble
  beforeAll(async () => {
    ar = await startArweaveDouble()
  })
  afterAll(() => ar.close())

  it("rejects a tampered or unparseable item with 400 and stores nothing", async () => {
    const item = await messageItem(TARGET, 1)
    expect((await upload(ar, tampered(item.getRaw()))).status).toBe(400)
    expect((await upload(ar, new Uint8Array([1, 2, 3]))).status).toBe(400)
    expect(ar.items.size).toBe(0)
    expect(ar.uploads).toEqual([])
  })

  it("accepts a valid item on every path, answers the receipt shape, stores each id once", async () => {
    const item = await messageItem(TARGET, 2)
    const res = await upload(ar, item.getRaw())
    expect(res.status).toBe(200)
    const receipt = (await res.json()) as Record<string, unknown>
    expect(receipt).toMatchObject({
      id: item.id,
      owner: ownerAddress(clientSigner.publicKey),
      version: "1.0.0",
      dataCaches: [],
      fastFinalityIndexes: [],
      winc: "0"
    })
    expect(typeof receipt.timestamp).toBe("number")
    expect(typeof receipt.deadlineHeight).toBe("number")
    for (const path of ["/tx", "/tx/arweave", "/v1/tx/arweave", "/tx/ario"]) {
      const again = await upload(ar, item.getRaw(), path)
      expect(again.status).toBe(200)
      expect(((await again.json()) as { id: string }).id).toBe(item.id)
    }
    expect(ar.uploadCount(item.id)).toBe(5)
    expect(ar.uploads.map((u) => u.path)).toEqual(["/tx/arweave", "/tx", "/tx/arweave", "/v1/tx/arweave", "/tx/ario"])
    expect([...ar.items.keys()]).toEqual([item.id])
    const found = await gql(ar, `{ transactions(ids: ["${item.id}"]) { edges { node { id } } } }`)
    expect(found.data.transactions.edges).toHaveLength(1)
  })

  it("indexes the items nested in an uploaded Bundle-Format: binary item (GraphQL and /raw)", async () => {
    const inner = [
      createData("inner one", suSigner, { tags: [{ name: "Type", value: "Assignment" }] }),
      createData("inner two", suSigner, { tags: [{ name: "Type", value: "Process" }] })
    ]
    const bundle = await bundleAndSignData(inner, suSigner)
    const outer = createData(bundle.getRaw(), suSigner, {
      tags: [
        { name: "Bundle-Format", value: "binary" },
        { name: "Bundle-Version", value: "2.0.0" }
      ]
    })
    await outer.sign(suSigner)
    expect((await upload(ar, outer.getRaw())).status).toBe(200)
    const ids = bundle.getIds()
    const { data } = await gql(
      ar,
      `query ($ids: [ID!]) { transactions(ids: $ids, sort: HEIGHT_ASC) { edges { node { id parent { id } } } } }`,
      { ids }
    )
    expect(data.transactions.edges.map((e: { node: unknown }) => e.node)).toEqual(
      ids.map((id) => ({ id, parent: { id: outer.id } }))
    )
    expect(await (await fetch(`${ar.url}/raw/${ids[1]}`)).text()).toBe("inner two")
    expect(ar.uploadCount(outer.id)).toBe(1)
    expect(ar.uploadCount(ids[0]!)).toBe(0) // indexed, but never posted itself
  })

  it("G4 /raw, G5 pending, G6 HEAD and G7 GET /{id} with tags as headers; 404s; C1", async () => {
    const process = await processItem(suAddress)
    await ar.seed(process)
    const before = { ...ar.requests }
    const raw = await fetch(`${ar.url}/raw/${process.id}`)
    expect(Buffer.from(await raw.arrayBuffer())).toEqual(process.rawData)
    expect((await fetch(`${ar.url}/raw/${TARGET}`)).status).toBe(404)
    const status = await fetch(`${ar.url}/tx/${process.id}/status`)
    expect([status.status, await status.text()]).toEqual([202, "Pending"])
    expect((await fetch(`${ar.url}/${process.id}`, { method: "HEAD" })).status).toBe(200)
    expect((await fetch(`${ar.url}/${TARGET}`, { method: "HEAD" })).status).toBe(404)
    const get = await fetch(`${ar.url}/${process.id}`)
    expect(get.headers.get("type")).toBe("Process")
    expect(get.headers.get("scheduler")).toBe(suAddress)
    expect(get.headers.get("variant")).toBe("ao.TN.1")
    expect(get.headers.get("content-type")).toBe("text/plain")
    expect(await get.text()).toBe(process.rawData.toString("utf8"))
    const cache = await fetch(`${ar.url}/id?codec-device=ans104@1.0`, { method: "POST", body: process.getRaw() })
    expect(cache.ok).toBe(true)
    const { raw: r, txStatus, head, get: g, cache: c } = ar.requests
    expect([r, txStatus, head, g, c]).toEqual([
      before.raw + 2,
      before.txStatus + 1,
      before.head + 2,
      before.get + 1,
      before.cache + 1
    ])
  })

  it("G1 /info and G2 /block/current follow mine()", async () => {
    const info = (await (await fetch(`${ar.url}/info`)).json()) as Record<string, unknown>
    expect(info).toMatchObject({ network: "arweave.N.1", height: 1_600_000, blocks: 1_600_001, peers: 1 })
    expect(info.current).toMatch(/^[A-Za-z0-9_-]{64}$/)
    const [block] = ar.mine(2)
    const current = (await (await fetch(`${ar.url}/block/current`)).json()) as Record<string, unknown>
    expect(current).toMatchObject({ height: 1_600_002, previous_block: block!.id })
    expect(current.timestamp).toBe(block!.timestamp + 120)
  })
})

describe("faults", () => {
  let ar: ArweaveDouble
  const info = async (): Promise<number> =>
    ((await (await fetch(`${ar.url}/info`)).json()) as { height: number }).height
  beforeAll(async () => {
    ar = await startArweaveDouble()
  })
  afterEach(() => ar.faults.clear())
  afterAll(() => ar.close())

  it("down: one group's sockets are destroyed; 'all' closes the listener (ECONNREFUSED); up restores", async () => {
    const item = await messageItem(TARGET, 3)
    await ar.faults.down("bundler")
    await expect(upload(ar, item.getRaw())).rejects.toThrow()
    expect(await info()).toBe(1_600_000)
    await ar.faults.down()
    const refused = await fetch(`${ar.url}/info`).then(
      () => null,
      (error: Error & { cause?: { code?: string } }) => error.cause?.code
    )
    expect(refused).toBe("ECONNREFUSED")
    await ar.faults.up()
    expect(await info()).toBe(1_600_000)
    expect((await upload(ar, item.getRaw())).status).toBe(200)
  })

  it("hang: a request is held until release, then answered; an aborted one rejects", async () => {
    ar.faults.hang("graphql")
    const held = fetch(`${ar.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ blocks(first: 1) { edges { node { height } } } }" })
    })
    await until(() => ar.faults.holding("graphql") === 1)
    expect(await stateOf(held)).toBe("pending")
    expect(await info()).toBe(1_600_000) // other groups still answer
    ar.faults.release("graphql")
    expect((await held).status).toBe(200)

    ar.faults.hang("gateway")
    const controller = new AbortController()
    const aborted = fetch(`${ar.url}/info`, { signal: controller.signal })
    await until(() => ar.faults.holding() === 1)
    expect(await stateOf(aborted)).toBe("pending")
    controller.abort()
    await expect(aborted).rejects.toThrow(/abort/i)
    ar.faults.release()
    expect(await info()).toBe(1_600_000)
  })

  it("status5xx, garbage and slow", async () => {
    ar.faults.status5xx("graphql", 502)
    const res = await fetch(`${ar.url}/graphql`, { method: "POST", body: "{}" })
    expect(res.status).toBe(502)
    ar.faults.status5xx()
    expect((await fetch(`${ar.url}/info`)).status).toBe(503)
    ar.faults.clear()
    ar.faults.garbage("gateway")
    const garbage = await fetch(`${ar.url}/info`)
    expect(garbage.status).toBe(200)
    await expect(garbage.json()).rejects.toThrow()
    ar.faults.clear("gateway")
    ar.faults.slow("gateway", 5)
    const before = ar.requests.info
    expect(await info()).toBe(1_600_000)
    expect(ar.requests.info).toBe(before + 1)
  })

  it("lowerHeight: /info and /block/current go backwards", async () => {
    ar.mine(5)
    const height = await info()
    ar.faults.lowerHeight(3)
    expect(await info()).toBe(height - 3)
    const block = (await (await fetch(`${ar.url}/block/current`)).json()) as { height: number }
    expect(block.height).toBe(height - 3)
  })

  it("wrongId: 200 with another id; the item is stored under its real id", async () => {
    ar.faults.wrongId()
    const item = await messageItem(TARGET, 4)
    const res = await upload(ar, item.getRaw())
    expect(res.status).toBe(200)
    const { id } = (await res.json()) as { id: string }
    expect(id).not.toBe(item.id)
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(ar.items.has(item.id)).toBe(true)
  })
})
