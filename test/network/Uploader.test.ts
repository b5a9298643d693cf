/**
 * The Uploader against the Arweave double's bundler, on the memory, SQLite and PostgreSQL stores: every message
 * data item and assignment is uploaded once; a bundler that answers 5xx, hangs past the timeout or answers 200
 * with another id is retried until it acknowledges, nothing dropped; `remote_confirmation` replies after the
 * bundler acknowledged both items, or fails with `UploadPending` at its deadline while the items keep uploading;
 * after a restart, items the bundler already has are not posted again; `redrive` resets the backoff.
 *
 * Real HTTP on the live clock, so every wait polls state (the double's counters, the outbox), never a sleep.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, Metric, Option, type Scope } from "effect"
import { Message } from "../../src/Assignment.js"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import { UploadPending } from "../../src/errors.js"
import * as Uploader from "../../src/network/Uploader.js"
import { httpError } from "../../src/node/internal/http/ingest.js"
import * as PgStore from "../../src/pg/PgStore.js"
import type { Mode } from "../../src/Scheduler.js"
import * as SchedulerRegistry from "../../src/SchedulerRegistry.js"
import * as SqlStore from "../../src/sql/SqlStore.js"
import * as SqliteStore from "../../src/sqlite/SqliteStore.js"
import { type ArweaveDouble, startArweaveDouble } from "../fixtures/arweave/index.js"
import { randomProcessId } from "../fixtures/assignments.js"
import { messageItem } from "../fixtures/dataItems.js"
import { startNode } from "../fixtures/node.js"
import { dropSchemaOnClose, pgUnavailable, pgUrl, randomSchema } from "../fixtures/pg.js"
import { registryLayer } from "../fixtures/registry.js"
import { send, spawn, walk } from "../fixtures/su.js"

const pgDown = await pgUnavailable(pgUrl)
if (pgDown !== undefined) console.warn(`SKIPPED PostgreSQL uploader tests: ${pgDown}`)

const double = Effect.acquireRelease(
  Effect.promise(() => startArweaveDouble()),
  (ar) => Effect.promise(() => ar.close())
)

/** Yields to the event loop until `condition` holds (real I/O completes meanwhile; no clock involved). */
const until = (condition: () => boolean | Effect.Effect<boolean, unknown>): Effect.Effect<void> =>
  Effect.gen(function* () {
    while (true) {
      const done = condition()
      if (typeof done === "boolean" ? done : yield* Effect.orDie(done)) return
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    }
  })

const sqliteStore = Layer.unwrapScoped(
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-upload-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    ),
    (dir) => SqliteStore.layer({ filename: Path.join(dir, "su.sqlite") })
  )
)

const pgStore = Layer.unwrapEffect(
  Effect.sync(() => {
    const schema = randomSchema("su_upload")
    const client = Layer.provideMerge(dropSchemaOnClose(schema), PgStore.layerClient({ url: pgUrl, schema }))
    return SqlStore.layer().pipe(Layer.provide(client))
  })
)

const stores: ReadonlyArray<readonly [string, Layer.Layer<AssignmentStore.AssignmentStore, unknown>, boolean]> = [
  ["memory", AssignmentStore.layerMemory, false],
  ["SQLite", sqliteStore, false],
  ["PostgreSQL", pgStore, pgDown !== undefined]
]

/** Fast retries, so that a test waits milliseconds for the next attempt. */
const FAST = { timeoutMs: 10_000, backoffBaseMs: 10, backoffCapMs: 50, pollIntervalMs: 50 } as const

/** A registry in `mode` whose schedulers upload through an Uploader to `ar`, over `store` (built once here). */
const setup = (
  ar: ArweaveDouble,
  store: AssignmentStore.AssignmentStore["Type"],
  mode: Exclude<Mode, "disabled">,
  options: Partial<Uploader.Options> = {},
  timeoutMs?: number
) =>
  Effect.gen(function* () {
    const storeLayer = Layer.succeed(AssignmentStore.AssignmentStore, store)
    const uploader = yield* Uploader.make({ url: ar.url, ...FAST, ...options }).pipe(
      Effect.provide(Layer.merge(storeLayer, FetchHttpClient.layer))
    )
    const context = yield* Layer.build(registryLayer({ mode, upload: uploader.upload, timeoutMs }, storeLayer))
    const registry = Context.get(context, SchedulerRegistry.SchedulerRegistry)
    return { uploader, registry }
  })

/** Signs `count` messages for `processId` and schedules them; returns each message id with its assignment id. */
const scheduleMessages = (registry: SchedulerRegistry.SchedulerRegistry["Type"], count: number, timeoutMs?: number) =>
  Effect.gen(function* () {
    const processId = randomProcessId()
    const scheduler = yield* registry.find(processId, true)
    const out: Array<Either.Either<readonly [string, string], { readonly _tag: string }>> = []
    for (let n = 1; n <= count; n++) {
      const item = yield* Effect.promise(() => messageItem(processId, n))
      const message = new Message({ id: item.id as never, raw: new Uint8Array(item.getRaw()) })
      const result = yield* Effect.either(scheduler.schedule(message, { timeoutMs }))
      out.push(Either.map(result, (a) => [message.id, a.id] as const))
    }
    return { processId, results: out }
  })

const idsOf = (results: ReadonlyArray<Either.Either<readonly [string, string], unknown>>) =>
  results.flatMap((r) => (Either.isRight(r) ? [...r.right] : []))

const drained = (uploader: Uploader.Uploader["Type"]) =>
  Effect.map(uploader.status(), (s) => s.pending === 0 && s.retrying === 0)

const failuresOf = (kind: string) =>
  Effect.map(Metric.value(Metric.tagged(Uploader.uploadFailures, "kind", kind)), (s) => s.count)

for (const [name, storeLayer, skip] of stores) {
  describe.skipIf(skip)(`Uploader on the ${name} store`, () => {
    const withStore = <A, E>(
      body: (ar: ArweaveDouble, store: AssignmentStore.AssignmentStore["Type"]) => Effect.Effect<A, E, Scope.Scope>
    ) =>
      Effect.gen(function* () {
        const ar = yield* double
        const store = Context.get(yield* Effect.orDie(Layer.build(storeLayer)), AssignmentStore.AssignmentStore)
        return yield* body(ar, store)
      })

    it.scopedLive("local_confirmation uploads each message item and its assignment exactly once, to /tx/arweave", () =>
      withStore((ar, store) =>
        Effect.gen(function* () {
          const { uploader, registry } = yield* setup(ar, store, "local_confirmation")
          const { results } = yield* scheduleMessages(registry, 5)
          const ids = idsOf(results)
          expect(ids).toHaveLength(10)
          yield* until(() => ids.every((id) => ar.uploadCount(id) >= 1))
          yield* until(() => drained(uploader))
          expect(ids.map((id) => ar.uploadCount(id))).toEqual(ids.map(() => 1))
          expect(new Set(ar.uploads.map((u) => u.path))).toEqual(new Set(["/tx/arweave"]))
          expect(yield* uploader.status({ uploaded: true })).toMatchObject({ pending: 0, retrying: 0, uploaded: 10 })
        })
      )
    )

    it.scopedLive("a bundler answering 503 is retried with backoff until it acknowledges; nothing is dropped", () =>
      withStore((ar, store) =>
        Effect.gen(function* () {
          const before = yield* failuresOf("status")
          ar.faults.status5xx("bundler", 503)
          const { uploader, registry } = yield* setup(ar, store, "local_confirmation")
          const ids = idsOf((yield* scheduleMessages(registry, 2)).results)
          yield* until(() => Effect.map(uploader.status(), (s) => s.retrying === 4))
          expect(ar.uploads).toHaveLength(0)
          expect((yield* failuresOf("status")) - before).toBeGreaterThanOrEqual(4)
          yield* Effect.promise(() => ar.faults.clear("bundler"))
          yield* until(() => drained(uploader))
          expect(ids.map((id) => ar.uploadCount(id))).toEqual(ids.map(() => 1))
        })
      )
    )

    it.scopedLive("a hung bundler times out (300 ms) and the item is retried; it is stored once answered", () =>
      withStore((ar, store) =>
        Effect.gen(function* () {
          const before = yield* failuresOf("timeout")
          ar.faults.hang("bundler")
          const { uploader, registry } = yield* setup(ar, store, "local_confirmation", {
            concurrency: 1,
            timeoutMs: 300
          })
          const ids = idsOf((yield* scheduleMessages(registry, 1)).results)
          yield* until(() => Effect.map(uploader.status(), (s) => s.retrying >= 1))
          expect((yield* failuresOf("timeout")) - before).toBeGreaterThanOrEqual(1)
          yield* Effect.promise(() => ar.faults.clear("bundler"))
          yield* until(() => drained(uploader))
          for (const id of ids) expect(ar.items.has(id)).toBe(true)
        })
      )
    )

    it.scopedLive("200 with another item's id is a failure: retried until the bundler answers with the item's id", () =>
      withStore((ar, store) =>
        Effect.gen(function* () {
          const before = yield* failuresOf("wrong_id")
          ar.faults.wrongId(true)
          const { uploader, registry } = yield* setup(ar, store, "local_confirmation")
          const ids = idsOf((yield* scheduleMessages(registry, 1)).results)
          yield* until(() => Effect.map(uploader.status(), (s) => s.retrying === 2))
          expect((yield* failuresOf("wrong_id")) - before).toBeGreaterThanOrEqual(2)
          ar.faults.wrongId(false)
          yield* until(() => drained(uploader))
          expect(yield* uploader.status({ uploaded: true })).toMatchObject({ uploaded: 2 })
          for (const id of ids) expect(ar.items.has(id)).toBe(true)
        })
      )
    )

    it.scopedLive("remote_confirmation replies after the bundler acknowledged both items", () =>
      withStore((ar, store) =>
        Effect.gen(function* () {
          const { registry } = yield* setup(ar, store, "remote_confirmation")
          const { results } = yield* scheduleMessages(registry, 3)
          // each reply came after its items' acknowledgement: they are all in the bundler already
          for (const result of results) {
            expect(Either.isRight(result)).toBe(true)
            for (const id of Either.getOrThrow(result)) expect(ar.uploadCount(id)).toBe(1)
          }
        })
      )
    )

    it.scopedLive(
      "remote_confirmation past the deadline: UploadPending, the slot stays assigned, the upload goes on",
      () =>
        withStore((ar, store) =>
          Effect.gen(function* () {
            yield* Effect.promise(() => ar.faults.down("bundler"))
            const { uploader, registry } = yield* setup(ar, store, "remote_confirmation", {}, 500)
            const processId = randomProcessId()
            const scheduler = yield* registry.find(processId, true)
            const item = yield* Effect.promise(() => messageItem(processId, 1))
            const message = new Message({ id: item.id as never, raw: new Uint8Array(item.getRaw()) })
            const failed = yield* Effect.flip(scheduler.schedule(message))
            expect(failed._tag).toBe("UploadPending")
            const head = yield* store.latest(processId)
            expect(Option.map(head, (h) => h.slot)).toEqual(Option.some(0))
            const entry = Option.getOrThrow(yield* store.getMessage(message.id, processId))
            const ids = [message.id, entry.assignment.id]
            // a client's retry while the bundler is still down: the same slot, still not confirmed
            const retried = yield* Effect.flip(registry.schedule(processId, message))
            expect(retried).toMatchObject({ _tag: "UploadPending", slot: 0, assignmentId: entry.assignment.id })
            yield* Effect.promise(() => ar.faults.up("bundler"))
            // the items are uploaded later, and a waiter then confirms them
            yield* uploader.upload.confirmed(ids)
            expect(ids.map((id) => ar.uploadCount(id))).toEqual([1, 1])
            // a retry now gets the stored assignment: one slot, uploaded once
            expect((yield* registry.schedule(processId, message)).id).toBe(entry.assignment.id)
            expect(Option.map(yield* store.latest(processId), (h) => h.slot)).toEqual(Option.some(0))
          })
        )
    )
  })
}

describe("the node with --upload-url", () => {
  it.scopedLive("uploads a spawned process and its messages with their assignments, in local_confirmation", () =>
    Effect.gen(function* () {
      const ar = yield* double
      const node = yield* startNode({
        gateway: { kind: "online", url: ar.url },
        upload: { url: ar.url, concurrency: 2, timeoutMs: 10_000 }
      })
      const processId = yield* spawn(node.url, node.address)
      const messages = yield* send(node.url, processId, 1, 3)
      const { edges } = yield* walk(node.url, processId, 100)
      const ids = [processId, ...messages, ...edges.map((e) => e.node.assignment.id)]
      expect(ids).toHaveLength(8)
      yield* until(() => ids.every((id) => ar.uploadCount(id) === 1))
    })
  )

  it.scoped("remote_confirmation without an upload URL does not start: a ConfigError naming the mode", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(startNode({ mode: "remote_confirmation" }))
      expect(String(error)).toContain("remote_confirmation needs an upload URL")
    })
  )
})

describe("UploadPending over HTTP", () => {
  it.effect("is a 503 with a clear error: the slot is assigned and the upload goes on", () =>
    Effect.gen(function* () {
      const error = new UploadPending({ processId: "P", slot: 7, assignmentId: "A", timeoutMs: 10_000 })
      const http = yield* httpError(error)
      expect(http._tag).toBe("Unavailable")
      expect(http.error).toBe(
        "Slot 7 of P is assigned (A) but the bundler did not confirm its upload within 10000 ms; it keeps uploading, retry later"
      )
    })
  )
})

describe("Uploader after a restart", () => {
  it.scopedLive("items the bundler already has (a crash after its answer) are looked up, not posted again", () =>
    Effect.gen(function* () {
      const ar = yield* double
      const store = yield* AssignmentStore.makeMemory
      // an uploader that never reaches a bundler queues the items, as a crashed run left them
      const first = yield* setup(ar, store, "local_confirmation", { url: "http://127.0.0.1:9/" })
      const ids = idsOf((yield* scheduleMessages(first.registry, 2)).results)
      const due = yield* store.outbox!.due(Number.MAX_SAFE_INTEGER, 100)
      expect(due.map((item) => item.id).sort()).toEqual([...ids].sort())
      // the first item reached the bundler before the crash, unrecorded
      yield* Effect.promise(() =>
        fetch(`${ar.url}/tx/arweave`, {
          method: "POST",
          body: due[0]!.bytes,
          headers: { "content-type": "application/octet-stream" }
        })
      )
      yield* store.outbox!.redrive()
      const second = yield* Uploader.make({ url: ar.url, checkUrl: ar.url, ...FAST }).pipe(
        Effect.provide(Layer.merge(Layer.succeed(AssignmentStore.AssignmentStore, store), FetchHttpClient.layer))
      )
      yield* until(() => drained(second))
      expect(ids.map((id) => ar.uploadCount(id))).toEqual(ids.map(() => 1))
    })
  )

  it.scopedLive("redrive makes backed-off items due now", () =>
    Effect.gen(function* () {
      const ar = yield* double
      const store = yield* AssignmentStore.makeMemory
      ar.faults.status5xx("bundler", 502)
      // a backoff of an hour: without redrive nothing would be retried within the test
      const { uploader, registry } = yield* setup(ar, store, "local_confirmation", {
        backoffBaseMs: 3_600_000,
        backoffCapMs: 3_600_000
      })
      const ids = idsOf((yield* scheduleMessages(registry, 1)).results)
      yield* until(() => Effect.map(uploader.status(), (s) => s.retrying === 2))
      yield* Effect.promise(() => ar.faults.clear("bundler"))
      expect(yield* uploader.redrive).toBe(2)
      yield* until(() => drained(uploader))
      expect(ids.map((id) => ar.uploadCount(id))).toEqual([1, 1])
    })
  )
})
