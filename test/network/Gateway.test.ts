/**
 * The Gateway service against the Arweave double: the first fetch, the 15 s refresher (driven by `TestClock`),
 * the never-backwards floor, and every fault (down at start, down later, hung past the timeout, garbage, a lower
 * height): each keeps the last block, logs one warning per outage and never fails the caller.
 */
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Metric, TestClock } from "effect"
import { Assignment, Message } from "../../src/Assignment.js"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import * as Gateway from "../../src/network/Gateway.js"
import { type ArweaveDouble, startArweaveDouble } from "../fixtures/arweave/index.js"
import { fake, randomProcessId } from "../fixtures/assignments.js"
import { messageItem } from "../fixtures/dataItems.js"

const double = (startHeight = 1_600_000) =>
  Effect.acquireRelease(
    Effect.promise(() => startArweaveDouble({ startHeight })),
    (ar) => Effect.promise(() => ar.close())
  )

/** Log lines (level and message) captured by a test logger. */
const capture = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/** Yields to the event loop until `condition` holds (real I/O completes meanwhile; no clock involved). */
const until = (condition: () => boolean): Effect.Effect<void> =>
  Effect.gen(function* () {
    while (!condition()) yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
  })

/** A gateway on the double, no retries (their spacing would wait on the TestClock), 1 s timeout. */
const gatewayOn = (ar: ArweaveDouble, options: Partial<Gateway.Options> = {}) =>
  Gateway.make({ url: ar.url, retries: 0, timeoutMs: 1_000, ...options }).pipe(Effect.provide(FetchHttpClient.layer))

const failuresOf = (kind: string) =>
  Effect.map(Metric.value(Metric.tagged(Gateway.failures, "request", kind)), (s) => s.count)

describe("Gateway", () => {
  it.scoped("reads /block/current at start and refreshes every 15 s, serving the cached block synchronously", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const gateway = yield* gatewayOn(ar)
      const first = gateway.current()
      expect(first.height).toBe(1_600_000)
      const block = yield* Effect.promise(() =>
        fetch(`${ar.url}/block/current`).then((r) => r.json() as Promise<{ indep_hash: string; timestamp: number }>)
      )
      expect(first.hash).toBe(block.indep_hash)
      expect(first.timestamp).toBe(block.timestamp)
      const status = yield* gateway.status
      expect(status).toMatchObject({ state: "online", url: ar.url, height: 1_600_000, hash: block.indep_hash })
      expect(status.lastError).toBeUndefined()

      ar.mine(3)
      const requests = ar.requests.blockCurrent
      yield* TestClock.adjust("14 seconds")
      expect(ar.requests.blockCurrent).toBe(requests) // not yet
      yield* TestClock.adjust("1 second")
      yield* until(() => gateway.current().height === 1_600_003)
      expect(ar.requests.blockCurrent).toBe(requests + 1)
    })
  )

  it.scoped(
    "never goes backwards: the store's highest height is the floor; a lower gateway height is ignored, logged once",
    () =>
      Effect.gen(function* () {
        const ar = yield* double(1_600_000)
        const logs = capture()
        const store = yield* AssignmentStore.makeMemory
        const stored = new Assignment({ ...fake(randomProcessId(), 0).assignment, blockHeight: 1_700_000 })
        yield* store.append(stored, new Message({ id: stored.messageId }))
        const gateway = yield* gatewayOn(ar).pipe(
          Effect.provideService(AssignmentStore.AssignmentStore, store),
          Effect.provide(logs.layer)
        )
        expect(gateway.current().height).toBe(1_700_000)
        expect(logs.lines.filter((l) => l.includes("below the served"))).toHaveLength(1)

        // a gateway above the floor, then one that falls back by 10 blocks
        const ar2 = yield* double(1_800_000)
        const second = yield* gatewayOn(ar2, { fallbackHeight: 5 }).pipe(Effect.provide(logs.layer))
        expect(second.current().height).toBe(1_800_000)
        ar2.faults.lowerHeight(10)
        for (let i = 1; i <= 3; i++) {
          const before = ar2.requests.blockCurrent
          yield* TestClock.adjust("15 seconds")
          yield* until(() => ar2.requests.blockCurrent === before + 1)
          yield* second.refresh // serialised behind the refresher's fetch
        }
        expect(second.current().height).toBe(1_800_000)
        expect((yield* second.status).state).toBe("online")
        expect(logs.lines.filter((l) => l.includes("reports height 1799990"))).toHaveLength(1)
      })
  )

  it.scoped("down at first start: it still starts, at the fallback height, unreachable; then recovers", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      yield* Effect.promise(() => ar.faults.down("all"))
      const logs = capture()
      const failures = yield* failuresOf("block")
      const gateway = yield* gatewayOn(ar, { fallbackHeight: 1_234 }).pipe(Effect.provide(logs.layer))
      expect(gateway.current()).toEqual({ height: 1_234, hash: Buffer.alloc(32).toString("base64url"), timestamp: 0 })
      const status = yield* gateway.status
      expect(status).toMatchObject({ state: "unreachable", height: 1_234, blockAgeMs: null })
      expect(status.lastError).toEqual(expect.any(String))
      expect(yield* failuresOf("block")).toBe(failures + 1)
      yield* Effect.promise(() => ar.faults.up("all"))
      yield* gateway.refresh.pipe(Effect.provide(logs.layer))
      expect(gateway.current().height).toBe(1_600_000)
      expect((yield* gateway.status).state).toBe("online")
      expect(logs.lines.filter((l) => l.startsWith("WARN"))).toHaveLength(1)
      expect(logs.lines.filter((l) => l.includes("reachable again"))).toHaveLength(1)
    })
  )

  it.scoped(
    "hung at first start: the start waits one bounded attempt (2 s), then the refresher retries after 1 s, 2 s, … until it answers",
    () =>
      Effect.gen(function* () {
        const ar = yield* double()
        ar.faults.hang("gateway")
        const starting = yield* Effect.fork(gatewayOn(ar, { timeoutMs: 5_000, fallbackHeight: 7 }))
        yield* until(() => ar.faults.holding("gateway") === 1)
        yield* TestClock.adjust("2 seconds")
        yield* until(() => starting.unsafePoll() !== null)
        const gateway = yield* starting.await.pipe(Effect.flatten)
        expect(gateway.current().height).toBe(7)
        expect((yield* gateway.status).lastError).toBe("timed out")
        yield* Effect.promise(() => ar.faults.clear("gateway"))
        const before = ar.requests.blockCurrent
        yield* TestClock.adjust("999 millis")
        expect(ar.requests.blockCurrent).toBe(before) // the first retry is 1 s after the failed start
        yield* TestClock.adjust("1 millis")
        yield* until(() => gateway.current().height === 1_600_000)
        expect((yield* gateway.status).state).toBe("online")
      })
  )

  it.scopedLive("while the gateway is unreachable a lookup makes one attempt, not 1 + retries", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const gateway = yield* Gateway.make({ url: ar.url, retries: 2, retryDelayMs: 1, timeoutMs: 1_000 }).pipe(
        Effect.provide(FetchHttpClient.layer)
      )
      ar.faults.status5xx("graphql", 502)
      const before = ar.requests.graphql
      yield* Effect.flip(gateway.transaction("x".repeat(43)))
      expect(ar.requests.graphql).toBe(before + 3) // reachable: the retries are worth making
      yield* Effect.promise(() => ar.faults.down("gateway"))
      yield* gateway.refresh
      expect((yield* gateway.status).state).toBe("unreachable")
      const during = ar.requests.graphql
      const failed = yield* Effect.flip(gateway.transaction("y".repeat(43)))
      expect(failed._tag).toBe("GatewayUnavailable")
      expect(ar.requests.graphql).toBe(during + 1)
    })
  )

  it.scoped("down later: keeps the last block, ONE warning per outage, every failure counted", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const logs = capture()
      const gateway = yield* gatewayOn(ar).pipe(Effect.provide(logs.layer))
      const served = gateway.current()
      yield* Effect.promise(() => ar.faults.down("gateway"))
      const failures = yield* failuresOf("block")
      for (let i = 0; i < 3; i++) yield* gateway.refresh.pipe(Effect.provide(logs.layer))
      expect(gateway.current()).toEqual(served)
      expect((yield* gateway.status).state).toBe("unreachable")
      expect(yield* failuresOf("block")).toBe(failures + 3)
      expect(logs.lines.filter((l) => l.startsWith("WARN") && l.includes("unreachable"))).toHaveLength(1)
      yield* Effect.promise(() => ar.faults.up("gateway"))
      ar.mine()
      yield* gateway.refresh.pipe(Effect.provide(logs.layer))
      expect(gateway.current().height).toBe(1_600_001)
      // a second outage logs once more
      yield* Effect.promise(() => ar.faults.down("gateway"))
      yield* gateway.refresh.pipe(Effect.provide(logs.layer))
      yield* gateway.refresh.pipe(Effect.provide(logs.layer))
      expect(logs.lines.filter((l) => l.startsWith("WARN") && l.includes("unreachable"))).toHaveLength(2)
      expect(logs.lines.filter((l) => l.includes("reachable again"))).toHaveLength(1)
    })
  )

  it.scoped("slow: a request past the timeout fails (TestClock), the last block is kept", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const gateway = yield* gatewayOn(ar, { timeoutMs: 5_000 })
      const served = gateway.current()
      ar.faults.hang("gateway")
      const fiber = yield* Effect.fork(gateway.refresh)
      yield* until(() => ar.faults.holding("gateway") === 1)
      yield* TestClock.adjust("5 seconds")
      yield* until(() => fiber.unsafePoll() !== null)
      const status = yield* gateway.status
      expect(status.state).toBe("unreachable")
      expect(status.lastError).toBe("timed out")
      expect(gateway.current()).toEqual(served)
      ar.faults.release("gateway")
    })
  )

  it.scoped("garbage: a body that does not decode is a failure, the last block is kept", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const gateway = yield* gatewayOn(ar)
      const served = gateway.current()
      ar.faults.garbage("gateway")
      ar.mine()
      yield* gateway.refresh
      expect(gateway.current()).toEqual(served)
      expect(yield* gateway.status).toMatchObject({ state: "unreachable", lastError: "the response does not decode" })
      ar.faults.status5xx("gateway", 502)
      yield* gateway.refresh
      expect(gateway.current()).toEqual(served)
    })
  )

  it.scoped("transaction: found through GraphQL, TransactionNotFound, GatewayUnavailable on a 5xx", () =>
    Effect.gen(function* () {
      const ar = yield* double()
      const gateway = yield* gatewayOn(ar)
      const item = yield* Effect.promise(() => messageItem(randomProcessId(), 1))
      yield* Effect.promise(() => ar.seed(item))
      const tx = yield* gateway.transaction(item.id)
      expect(tx.id).toBe(item.id)
      expect(tx.tags).toEqual(item.tags)
      const missing = yield* Effect.flip(gateway.transaction(Buffer.alloc(32, 9).toString("base64url")))
      expect(missing._tag).toBe("TransactionNotFound")
      ar.faults.status5xx("graphql", 503)
      const down = yield* Effect.flip(gateway.transaction(item.id))
      expect(down._tag).toBe("GatewayUnavailable")
      expect(yield* gateway.txStatus(item.id)).toEqual({ _tag: "Pending" })
      ar.mine(2)
      expect(yield* gateway.txStatus(item.id)).toEqual({
        _tag: "Confirmed",
        blockHeight: 1_600_001,
        confirmations: 2
      })
    })
  )

  it.effect("layerFixed: offline, the fixed height, lookups fail with GatewayOffline", () =>
    Effect.gen(function* () {
      const gateway = yield* Gateway.Gateway
      expect(gateway.current().height).toBe(1_500_000)
      expect(yield* gateway.status).toEqual({
        state: "offline",
        url: null,
        height: 1_500_000,
        hash: Buffer.alloc(32).toString("base64url"),
        blockAgeMs: null
      })
      expect((yield* Effect.flip(gateway.transaction("x")))._tag).toBe("GatewayOffline")
    }).pipe(Effect.provide(Gateway.layerFixed(1_500_000)))
  )
})
