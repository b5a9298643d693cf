/**
 * The Location service against the Arweave double and the real `@permaweb/ao-scheduler-utils`: a published
 * record is found by `locate`, `validate` and `raw`; `resolve` reads it back, caches it for its TTL, skips a
 * record of another wallet and refuses an expired one; every fault is a typed error. Time is the `TestClock`.
 */
import * as NodeHttp from "node:http"
import type { AddressInfo } from "node:net"
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, TestClock } from "effect"
import * as Location from "../../src/network/Location.js"
import * as Wallet from "../../src/Wallet.js"
import { type ArweaveDouble, startArweaveDouble } from "../fixtures/arweave/index.js"
import { processItem } from "../fixtures/dataItems.js"
import { connectTo, withRouterStub } from "../fixtures/scheduler-utils.js"
import { Wallet2Test, WalletTest } from "../fixtures/wallet.js"

/** A fixed chain start (seconds), so record times are deterministic. */
const START = 1_700_000_000

const double = () =>
  Effect.acquireRelease(
    Effect.promise(() => startArweaveDouble({ startHeight: 1_600_000, startTimestamp: START })),
    (ar) => Effect.promise(() => ar.close())
  )

/** A Location on the double (no retries: their spacing would wait on the TestClock), as `wallet`. */
const locationOn = (ar: ArweaveDouble, wallet: Layer.Layer<Wallet.Wallet, unknown> = WalletTest) =>
  Location.make({ gatewayUrl: ar.url, uploadUrl: ar.url, retries: 0, timeoutMs: 2_000 }).pipe(
    Effect.provide(Layer.merge(FetchHttpClient.layer, Layer.orDie(wallet)))
  )

/** Yields to the event loop until `condition` holds (real I/O completes meanwhile; no clock involved). */
const until = (condition: () => boolean): Effect.Effect<void> =>
  Effect.gen(function* () {
    while (!condition()) yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
  })

describe("Location", () => {
  it.scoped("publish: the real ao-scheduler-utils locates, validates and reads this SU's URL", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const location = yield* locationOn(ar)
      const published = yield* location.publish("http://127.0.0.1:9123/", 7_200_000)
      expect(published).toMatchObject({ url: "http://127.0.0.1:9123", ttlMs: 7_200_000, address: location.address })
      // the double verified the signature before accepting it, on the path the legacy SU uses
      expect(ar.uploads).toEqual([{ id: published.id, path: "/tx/arweave" }])
      const stored = ar.items.get(published.id)
      expect(stored?.address).toBe(location.address)
      expect(stored?.tags).toEqual([
        { name: "Content-Type", value: "text/plain" },
        { name: "Type", value: "Scheduler-Location" },
        { name: "Time-To-Live", value: "7200000" },
        { name: "Url", value: "http://127.0.0.1:9123" },
        { name: "Data-Protocol", value: "ao" },
        { name: "Variant", value: "ao.TN.1" }
      ])
      const process = yield* Effect.promise(() => processItem(location.address))
      yield* Effect.promise(() => ar.seed(process))

      const found = yield* withRouterStub(async () => {
        const su = await connectTo(ar.url)
        return {
          located: await su.locate(process.id),
          hinted: await su.locate(process.id, location.address),
          valid: await su.validate(location.address),
          raw: await su.raw(location.address)
        }
      })
      expect(found).toEqual({
        located: { url: "http://127.0.0.1:9123", address: location.address },
        hinted: { url: "http://127.0.0.1:9123", address: location.address },
        valid: true,
        raw: { url: "http://127.0.0.1:9123" }
      })
    })
  )

  it.scoped("resolve: the latest record, cached until it expires, then looked up again", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const location = yield* locationOn(ar)
      yield* location.publish("http://127.0.0.1:9001", 60_000)
      ar.mine()
      yield* location.publish("http://127.0.0.1:9002", 60_000)
      yield* TestClock.setTime(START * 1000)
      const first = yield* location.resolve(location.address)
      // the newest record (still pending: it counts from the lookup) wins
      expect(first).toMatchObject({ url: "http://127.0.0.1:9002", address: location.address, ttlMs: 60_000 })
      expect(first.expiresAt).toBe(START * 1000 + 60_000)
      const queries = ar.requests.graphql
      expect(yield* location.resolve(location.address)).toEqual(first)
      expect(ar.requests.graphql).toBe(queries) // served from the cache

      ar.mine() // the 9002 record is now in a block 120 s after START
      yield* TestClock.setTime(START * 1000 + 60_000)
      const again = yield* location.resolve(location.address)
      expect(ar.requests.graphql).toBe(queries + 1)
      expect(again).toMatchObject({ url: "http://127.0.0.1:9002", expiresAt: (START + 240) * 1000 + 60_000 })
    })
  )

  it.scoped("resolve refuses an expired record and ignores another wallet's", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const location = yield* locationOn(ar)
      const other = yield* locationOn(ar, Wallet2Test)
      // only the other wallet has a record: it never stands for this address
      yield* other.publish("http://127.0.0.1:9666", 3_600_000)
      const none = yield* Effect.flip(location.resolve(location.address))
      expect(none).toMatchObject({ _tag: "LocationNotFound", address: location.address })

      yield* location.publish("http://127.0.0.1:9001", 3_600_000)
      const [block] = ar.mine()
      yield* TestClock.setTime((block?.timestamp ?? 0) * 1000)
      // the other wallet's own record resolves for it, and only for it
      expect(yield* other.resolve(other.address)).toMatchObject({ url: "http://127.0.0.1:9666" })
      expect(yield* location.resolve(location.address)).toMatchObject({ url: "http://127.0.0.1:9001" })
      yield* TestClock.setTime((block?.timestamp ?? 0) * 1000 + 3_600_000)
      const expired = yield* Effect.flip(location.resolve(location.address))
      expect(expired).toEqual(
        new Location.LocationExpired({
          address: location.address,
          url: "http://127.0.0.1:9001",
          expiredAt: (block?.timestamp ?? 0) * 1000 + 3_600_000
        })
      )
    })
  )

  it.scoped("resolve skips a record the gateway says is another wallet's, or whose owner key is not the address", () =>
    Effect.gen(function* () {
      const wallet = yield* Effect.provide(Wallet.Wallet, WalletTest)
      const other = yield* Effect.orDie(Effect.provide(Wallet.Wallet, Wallet2Test))
      const record = (address: string, key: string, url: string) => ({
        node: {
          id: "x".repeat(43),
          owner: { address, key },
          tags: [
            { name: "Url", value: url },
            { name: "Time-To-Live", value: "3600000" }
          ],
          block: null
        }
      })
      const key = (w: Wallet.Wallet["Type"]) => Buffer.from(w.owner).toString("base64url")
      // a lying gateway: the first edge is another wallet's, the second claims this address with another key
      const edges = [
        record(other.address, key(other), "http://127.0.0.1:9666"),
        record(wallet.address, key(other), "http://127.0.0.1:9667"),
        record(wallet.address, key(wallet), "http://127.0.0.1:9001")
      ]
      const server = yield* Effect.acquireRelease(
        Effect.promise(
          () =>
            new Promise<NodeHttp.Server>((resolve) => {
              const s = NodeHttp.createServer((_req, res) => {
                res.writeHead(200, { "content-type": "application/json" })
                res.end(JSON.stringify({ data: { transactions: { edges } } }))
              })
              s.listen(0, "127.0.0.1", () => resolve(s))
            })
        ),
        (s) => Effect.promise(() => new Promise<void>((resolve) => s.close(() => resolve())))
      )
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const location = yield* Location.make({ gatewayUrl: url, retries: 0 }).pipe(
        Effect.provide(Layer.merge(FetchHttpClient.layer, WalletTest))
      )
      expect(yield* location.resolve(wallet.address)).toMatchObject({ url: "http://127.0.0.1:9001" })
      edges.pop() // only the two false records are left
      const fresh = yield* Location.make({ gatewayUrl: url, retries: 0 }).pipe(
        Effect.provide(Layer.merge(FetchHttpClient.layer, WalletTest))
      )
      const none = yield* Effect.flip(fresh.resolve(wallet.address))
      expect(none).toMatchObject({ _tag: "LocationNotFound", address: wallet.address })
    })
  )

  it.scoped("bad input and faults are typed errors", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const location = yield* locationOn(ar)
      for (const url of ["ftp://x.example", "not a url", "http://127.0.0.1:9000/su", "http://h.example?x=1"]) {
        expect(yield* Effect.flip(location.publish(url))).toMatchObject({ _tag: "InvalidLocation" })
      }
      expect(yield* Effect.flip(location.publish("http://h.example", 0))).toMatchObject({ _tag: "InvalidLocation" })
      expect(ar.uploads).toHaveLength(0)

      ar.faults.wrongId(true)
      const wrong = yield* Effect.flip(location.publish("http://h.example"))
      expect(wrong).toMatchObject({ _tag: "PublishFailed", url: ar.url })
      expect(wrong.reason).toMatch(/acknowledged id/)
      yield* Effect.promise(() => ar.faults.clear())
      ar.faults.status5xx("bundler", 502)
      expect(yield* Effect.flip(location.publish("http://h.example"))).toMatchObject({ _tag: "PublishFailed" })
      ar.faults.status5xx("graphql", 503)
      const down = yield* Effect.flip(location.resolve(location.address))
      expect(down).toMatchObject({ _tag: "LookupUnavailable", url: ar.url })
      expect(down.message).toMatch(/retry later/)
      yield* Effect.promise(() => ar.faults.clear())

      const bare = yield* Location.make({}).pipe(Effect.provide(Layer.merge(FetchHttpClient.layer, WalletTest)))
      expect(yield* Effect.flip(bare.publish("http://h.example"))).toMatchObject({ _tag: "PublishFailed" })
      expect(yield* Effect.flip(bare.resolve(bare.address))).toMatchObject({ _tag: "LocationNotFound" })
      expect(Either.isLeft(Location.originOf("http://h.example/path"))).toBe(true)
    })
  )

  it.scoped("keepPublished publishes at once, again every half TTL, and retries after a failure", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const location = yield* locationOn(ar)
      yield* Location.keepPublished({ url: "http://127.0.0.1:9005", ttlMs: 10_000, retryMs: 1_000 }).pipe(
        Effect.provideService(Location.Location, location)
      )
      yield* until(() => ar.uploads.length === 1)
      ar.faults.status5xx("bundler", 503)
      yield* TestClock.adjust(5_000)
      yield* until(() => ar.requests.bundler === 2)
      yield* Effect.promise(() => ar.faults.clear())
      yield* TestClock.adjust(1_000) // the retry after the failure
      yield* until(() => ar.uploads.length === 2)
      yield* TestClock.adjust(5_000)
      yield* until(() => ar.uploads.length === 3)
      expect(new Set(ar.uploads.map((u) => u.id)).size).toBe(3)
      const bad = yield* Effect.flip(
        Location.keepPublished({ url: "http://h.example/x" }).pipe(Effect.provideService(Location.Location, location))
      )
      expect(bad._tag).toBe("InvalidLocation")
    })
  )
})
