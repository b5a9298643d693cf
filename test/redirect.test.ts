/**
 * Redirects between two real nodes on the Arweave double: node A publishes its Scheduler-Location on start
 * (`--public-url`) and hosts process P; node B answers every request for P (GET and POST, the MU's manual
 * re-POST, a spawn naming A) with a 307 to A, which fetch follows. Loops (a location pointing back at B, a
 * request another SU already redirected) get 508; a gateway that cannot answer gets 503; `su location publish`
 * uploads a record and refuses a missing wallet. Live clock: the nodes' own retries and refreshers run on it, and
 * the tests only wait on state (uploads, responses).
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { FetchHttpClient } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Location from "../src/network/Location.js"
import * as Cli from "../src/node/Cli.js"
import * as Wallet from "../src/Wallet.js"
import { type ArweaveDouble, startArweaveDouble } from "./fixtures/arweave/index.js"
import { messageItem, processItem } from "./fixtures/dataItems.js"
import { fixtureWallet, post, request, startNode, tempDir } from "./fixtures/node.js"
import { connectTo, withRouterStub } from "./fixtures/scheduler-utils.js"
import { clientJwk, walletJwk2 } from "./fixtures/wallet.js"

const double = () =>
  Effect.acquireRelease(
    Effect.promise(() => startArweaveDouble({ startHeight: 1_600_000 })),
    (ar) => Effect.promise(() => ar.close())
  )

/** A port free now (the node binds it right after). */
const freePort = Effect.promise(
  () =>
    new Promise<number>((resolve, reject) => {
      const server = Net.createServer()
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as Net.AddressInfo
        server.close(() => resolve(port))
      })
    })
)

/** Yields to the event loop until `condition` holds (no clock involved). */
const until = (condition: () => boolean): Effect.Effect<void> =>
  Effect.gen(function* () {
    while (!condition()) yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
  })

/**
 * Node A (the fixture wallet, plus the identities in `identityPaths`, publishing its URL for each) and node B
 * (wallet 2), both online on the double.
 */
const twoNodes = (ar: ArweaveDouble, identityPaths: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const port = yield* freePort
    const online = { gateway: { kind: "online" as const, url: ar.url }, uploadUrl: ar.url }
    const a = yield* startNode({ ...online, port, publicUrl: `http://127.0.0.1:${port}`, identityPaths })
    const dirB = yield* tempDir()
    const walletB = Path.join(dirB, "wallet.json")
    Fs.writeFileSync(walletB, JSON.stringify(walletJwk2))
    const b = yield* startNode({ ...online, dataDir: dirB, walletPath: walletB })
    yield* until(() => ar.uploads.length === 1 + identityPaths.length) // A's records, published on start
    return { a, b }
  })

/** `POST url/` following redirects; a Blob body, since Node 20's fetch cannot replay a typed array on a 307. */
const postFollowing = (url: string, bytes: Uint8Array) =>
  request(`${url}/`, {
    method: "POST",
    body: new Blob([bytes]),
    headers: { "content-type": "application/octet-stream" }
  })

/** Spawns a process scheduled by `scheduler` on the node at `url`, and indexes it on the double (as the MU's upload would). */
const spawnOn = (ar: ArweaveDouble, url: string, scheduler: string) =>
  Effect.gen(function* () {
    const item = yield* Effect.promise(() => processItem(scheduler))
    const res = yield* post(url, item.getRaw())
    expect([res.status, res.json.id]).toEqual([200, item.id])
    yield* Effect.promise(() => ar.seed(item))
    return item.id
  })

/** Publishes a Scheduler-Location for `jwk`'s address pointing at `url`; returns the address. */
const publishFor = (ar: ArweaveDouble, jwk: Wallet.ArweaveJwk, url: string) =>
  Effect.gen(function* () {
    const location = yield* Location.make({ uploadUrl: ar.url })
    yield* location.publish(url)
    return location.address
  }).pipe(Effect.provide(Layer.merge(FetchHttpClient.layer, Layer.orDie(Wallet.layerJwk(jwk)))))

describe("redirects", () => {
  it.scopedLive("B answers GETs and POSTs for A's process with a 307 to A; fetch follows and gets A's data", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const identityDir = yield* tempDir()
      const identityPath = Path.join(identityDir, "identity.json")
      Fs.writeFileSync(identityPath, JSON.stringify(clientJwk))
      const { a, b } = yield* twoNodes(ar, [identityPath])
      const records = ar.uploads.map((u) => ar.items.get(u.id))
      const identity = Wallet.ownerToAddress(Buffer.from(clientJwk.n, "base64url"))
      expect(new Set(records.map((r) => r?.address))).toEqual(new Set([a.address, identity]))
      for (const record of records) expect(record?.tags).toContainEqual({ name: "Url", value: a.url })

      const processId = yield* spawnOn(ar, a.url, a.address)
      // the real ao-scheduler-utils finds node A from the record A published on start
      const located = yield* withRouterStub(async () => (await connectTo(ar.url)).locate(processId))
      expect(located).toEqual({ url: a.url, address: a.address })

      const manual = yield* request(`${b.url}/${processId}?limit=5`, { redirect: "manual" })
      expect(manual.status).toBe(307)
      expect(manual.text).toBe("")
      expect(manual.headers.get("location")).toBe(`${a.url}/${processId}?limit=5&redirected-by=${b.address}`)
      const followed = yield* request(`${b.url}/${processId}?limit=5`)
      expect(followed.status).toBe(200)
      expect(followed.json.edges).toHaveLength(1)
      for (const path of [
        `/processes/${processId}`,
        `/${processId}/latest`,
        `/timestamp?process-id=${processId}`,
        `/~scheduler@1.0/slot?target=${processId}`,
        `/~scheduler@1.0/schedule?target=${processId}`
      ]) {
        const res = yield* request(`${b.url}${path}`, { redirect: "manual" })
        expect([path, res.status]).toEqual([path, 307])
        expect(res.headers.get("location")?.startsWith(`${a.url}${path.split("?")[0]}`)).toBe(true)
        expect((yield* request(`${b.url}${path}`)).status).toBe(200)
      }

      // the MU's legacy write: redirect "manual", then the same bytes once to Location
      const message = yield* Effect.promise(() => messageItem(processId, 1))
      const first = yield* Effect.promise(() =>
        fetch(`${b.url}/`, { method: "POST", body: Uint8Array.from(message.getRaw()), redirect: "manual" })
      )
      expect(first.status).toBe(307)
      const location = first.headers.get("location") ?? ""
      expect(location).toBe(`${a.url}/?redirected-by=${b.address}`)
      const again = yield* post(location, Uint8Array.from(message.getRaw()), "")
      expect([again.status, again.json.id]).toEqual([200, message.id])
      // fetch's own follow re-POSTs on a 307 too (aoconnect's redirect: "follow")
      const second = yield* Effect.promise(() => messageItem(processId, 2))
      const followedPost = yield* postFollowing(b.url, second.getRaw())
      expect([followedPost.status, followedPost.json.id]).toEqual([200, second.id])
      const page = yield* request(`${a.url}/${processId}`)
      expect(page.json.edges.map((e: { node: { message: { id: string } } }) => e.node.message.id)).toEqual([
        processId,
        message.id,
        second.id
      ])

      // a spawn naming A, posted to B, goes to A with its bytes
      const process = yield* Effect.promise(() => processItem(a.address))
      const spawned = yield* postFollowing(b.url, process.getRaw())
      expect([spawned.status, spawned.json.id]).toEqual([200, process.id])
      expect((yield* request(`${a.url}/processes/${process.id}`)).status).toBe(200)
      // and one naming A's further identity, which A published too
      const forIdentity = yield* spawnOn(ar, a.url, identity)
      const viaB = yield* request(`${b.url}/${forIdentity}`, { redirect: "manual" })
      expect(viaB.headers.get("location")).toBe(`${a.url}/${forIdentity}?redirected-by=${b.address}`)
    })
  )

  it.scopedLive("loops get 508, an unknown or unlocated scheduler 400, and a gateway that cannot answer 503", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const { a, b } = yield* twoNodes(ar)
      const processId = yield* spawnOn(ar, a.url, a.address)

      // A → B → A: a request B already got from another SU is not sent on again
      const twice = yield* request(`${b.url}/${processId}?redirected-by=${a.address}`, { redirect: "manual" })
      expect(twice.status).toBe(508)
      expect(twice.json.error).toMatch(/Redirect loop/)

      // a scheduler whose location points back at B
      const elsewhere = yield* publishFor(ar, clientJwk, b.url)
      const looping = yield* Effect.promise(() => processItem(elsewhere))
      yield* Effect.promise(() => ar.seed(looping))
      const self = yield* request(`${b.url}/${looping.id}`, { redirect: "manual" })
      expect(self.status).toBe(508)
      expect(self.json.error).toMatch(/is this scheduler unit/)

      // a scheduler with no Scheduler-Location, and a process the gateway does not know: 400 as before
      const unlocated = yield* Effect.promise(() => processItem(processId))
      yield* Effect.promise(() => ar.seed(unlocated))
      const none = yield* request(`${b.url}/${unlocated.id}`, { redirect: "manual" })
      expect(none.status).toBe(400)
      expect(none.json.error).toMatch(/No Scheduler-Location/)
      const unknownId = Buffer.alloc(32, 9).toString("base64url")
      const unknown = yield* request(`${b.url}/${unknownId}`, { redirect: "manual" })
      expect([unknown.status, unknown.json.error]).toEqual([400, "Message or Process not found"])
      // /timestamp answers the time whatever the process, unless it redirects
      expect((yield* request(`${b.url}/timestamp?process-id=${unknownId}`)).status).toBe(200)

      // the gateway cannot answer: retry later
      ar.faults.status5xx("graphql", 503)
      const down = yield* request(`${b.url}/${Buffer.alloc(32, 10).toString("base64url")}`, { redirect: "manual" })
      expect(down.status).toBe(503)
      expect(down.json.error).toMatch(/unavailable/)
    })
  )

  it.scopedLive("su location publish uploads the record; a missing wallet is an error and no key is created", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const dir = yield* tempDir()
      fixtureWallet(dir)
      const run = (...args: Array<string>) =>
        Cli.run(["node", "su", "location", "publish", ...args]).pipe(Effect.provide(NodeContext.layer))
      yield* run("--url", "https://su.example.com", "--ttl", "600000", "--upload-url", ar.url, "--data-dir", dir)
      expect(ar.uploads).toHaveLength(1)
      expect(ar.items.get(ar.uploads[0]?.id ?? "")?.tags).toContainEqual({ name: "Time-To-Live", value: "600000" })

      const empty = yield* tempDir()
      const before = process.exitCode
      yield* run("--url", "https://su.example.com", "--upload-url", ar.url, "--data-dir", empty)
      expect(process.exitCode).toBe(1)
      process.exitCode = before
      expect(Fs.existsSync(Path.join(empty, "wallet.json"))).toBe(false)
      expect(ar.uploads).toHaveLength(1)
    })
  )
})
