import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { SqlClient } from "@effect/sql"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Message } from "../../src/Assignment.js"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import { legacyPage, type PageBody, pageBytes } from "../../src/node/internal/http/pages.js"
import type { ProcessId } from "../../src/ProcessId.js"
import { CommitFlush } from "../../src/sql/internal/commit-flush.js"
import * as SqlStore from "../../src/sql/SqlStore.js"
import * as SqliteClientInternal from "../../src/sqlite/internal/client.js"
import * as SqliteStore from "../../src/sqlite/SqliteStore.js"
import * as Wallet from "../../src/Wallet.js"
import { fake, randomProcessId, schedule } from "../fixtures/assignments.js"
import { messageTags, signedItem } from "../fixtures/dataItems.js"
import { WalletTest } from "../fixtures/wallet.js"
import { contract } from "./contract.js"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-store-sqlite-"))
afterAll(() => Fs.rmSync(dir, { recursive: true, force: true }))

/**
 * Runs test/AssignmentStore/crash-writer.ts on `filename`, SIGKILLs it once it has acknowledged `acks` appends,
 * and returns the acknowledged "<process> <slot> <assignment id>" lines and the signal that ended it.
 */
const appendThenKill = (filename: string, synchronous: "FULL" | "NORMAL", acks: number) =>
  Effect.async<{ readonly lines: ReadonlyArray<string>; readonly signal: NodeJS.Signals | null }, Error>((resume) => {
    const script = new URL("./crash-writer.ts", import.meta.url).pathname
    const child = ChildProcess.spawn(process.execPath, ["--import", "tsx", script, filename, synchronous], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      out += chunk
      if (out.split("\n").length > acks) child.kill("SIGKILL")
    })
    child.on("error", (error) => resume(Effect.fail(error)))
    child.on("close", (_code, signal) => resume(Effect.succeed({ lines: out.split("\n").slice(0, -1), signal })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

contract("AssignmentStore SQLite", SqliteStore.layer({ filename: Path.join(dir, "contract.db") }), {
  sql: true
})

describe("AssignmentStore SQLite file", () => {
  it.effect("opens in WAL mode with the chosen synchronous level (FULL by default)", () =>
    Effect.gen(function* () {
      for (const [synchronous, expected] of [
        [undefined, 2],
        ["FULL", 2],
        ["NORMAL", 1]
      ] as const) {
        const filename = Path.join(dir, `pragma-${synchronous}.db`)
        const [mode, sync] = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          Effect.all([sql`PRAGMA journal_mode`, sql`PRAGMA synchronous`])
        ).pipe(Effect.provide(SqliteStore.layerClient({ filename, synchronous })))
        expect(mode).toEqual([{ journal_mode: "wal" }])
        expect(sync).toEqual([{ synchronous: expected }])
      }
    })
  )

  it.effect("the store's FULL is kept by an fsync of the WAL after each commit, off the event loop", () =>
    Effect.gen(function* () {
      const probe = Effect.all([
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ synchronous: number }>`PRAGMA synchronous`),
        Effect.serviceOption(CommitFlush)
      ])
      // FULL (the default) on a file: the connection commits with NORMAL and the writer flushes the WAL
      const filename = Path.join(dir, "flush.db")
      const [sync, flush] = yield* probe.pipe(Effect.provide(SqliteClientInternal.layerStoreClient({ filename })))
      expect(sync).toEqual([{ synchronous: 1 }])
      expect(Option.isSome(flush)).toBe(true)
      // NORMAL chosen, or a database in memory: no flush
      for (const options of [
        { filename: Path.join(dir, "normal.db"), synchronous: "NORMAL" as const },
        { filename: ":memory:" }
      ]) {
        const [, none] = yield* probe.pipe(Effect.provide(SqliteClientInternal.layerStoreClient(options)))
        expect(Option.isNone(none)).toBe(true)
      }
      // the flush syncs the WAL the store writes: appends are acknowledged through it, and read back
      const p = randomProcessId()
      const entries = [0, 1, 2].map((slot) => fake(p, slot))
      const latest = yield* Effect.gen(function* () {
        const store = yield* AssignmentStore.AssignmentStore
        yield* Effect.all(
          entries.map((e) => store.append(e.assignment, e.message)),
          { concurrency: "unbounded" }
        )
        expect(Fs.existsSync(`${filename}-wal`)).toBe(true)
        return yield* store.latest(p)
      }).pipe(Effect.provide(SqliteStore.layer({ filename })))
      expect(Option.getOrThrow(latest).slot).toBe(2)
    })
  )

  it.effect("what was appended is there after the store is closed and opened again", () =>
    Effect.gen(function* () {
      const filename = Path.join(dir, "reopen.db", "nested", "store.db")
      const p = randomProcessId()
      const entries = [0, 1, 2].map((slot) => fake(p, slot))
      yield* Effect.flatMap(AssignmentStore.AssignmentStore, (store) =>
        Effect.forEach(entries, (e) => store.append(e.assignment, e.message))
      ).pipe(Effect.provide(SqliteStore.layer({ filename })))
      const [latest, processes] = yield* Effect.flatMap(AssignmentStore.AssignmentStore, (store) =>
        Effect.all([store.latest(p), store.listProcesses()])
      ).pipe(Effect.provide(SqliteStore.layer({ filename })))
      expect(Option.map(latest, (l) => l.assignmentId)).toEqual(Option.some(entries[2]!.assignment.id))
      expect(processes).toEqual([p])
    })
  )

  it.effect("a row damaged on disk is a StoreError naming the row and the field, never a defect", () =>
    Effect.gen(function* () {
      const filename = Path.join(dir, "corrupt.db")
      const p = randomProcessId()
      const entries = [0, 1, 2].map((slot) => fake(p, slot))
      yield* Effect.flatMap(AssignmentStore.AssignmentStore, (store) =>
        Effect.forEach(entries, (e) => store.append(e.assignment, e.message))
      ).pipe(Effect.provide(SqliteStore.layer({ filename })))
      const damage = (statement: string) =>
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(
          Effect.provide(SqliteStore.layerClient({ filename }))
        )
      const read = Effect.flatMap(AssignmentStore.AssignmentStore, (store) =>
        Effect.flip(store.range(p, { by: "slot", limit: 10 }))
      ).pipe(Effect.provide(SqliteStore.layer({ filename })))
      for (const [statement, reason] of [
        ["UPDATE assignments SET message_id = 'not-an-id' WHERE slot = 1", "message_id expected 43"],
        ["UPDATE assignments SET message_id = assignment_id, timestamp = 1.5 WHERE slot = 1", "timestamp is not"],
        ["UPDATE assignments SET timestamp = 7, hash_chain = x'0102' WHERE slot = 1", "hash_chain is not text"]
      ] as const) {
        yield* damage(statement)
        const error = yield* read
        expect(error._tag).toBe("StoreError")
        expect(error.reason).toContain(`corrupt row ${p}/1: ${reason}`)
      }
    })
  )

  it.effect("a store from before the read model upgrades; pages of old and new rows equal fully rendered pages", () =>
    Effect.gen(function* () {
      const filename = Path.join(dir, "upgrade.db")
      const wallet = yield* Wallet.Wallet
      const p = randomProcessId()
      const scheduled = yield* schedule(wallet, p, 4)
      const items = yield* Effect.forEach(scheduled, (_, i) =>
        Effect.promise(() => signedItem({ data: `message ${i}`, tags: messageTags(), target: p }))
      )
      const entries = scheduled.map((e, i) => ({
        assignment: e.assignment,
        message: new Message({ id: e.message.id, raw: items[i]!.getRaw() })
      }))
      const append = (some: typeof entries) =>
        Effect.flatMap(AssignmentStore.AssignmentStore, (store) =>
          Effect.forEach(some, (e) => store.append(e.assignment, e.message))
        ).pipe(Effect.provide(SqliteStore.layer({ filename })))
      yield* append(entries.slice(0, 2))
      // back to the layout before migration 2, as a file written by the previous release
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.all([
          sql`ALTER TABLE assignments DROP COLUMN node_json`,
          // and before migrations 3 (the block_height index), 4 (the exclude column) and 5 (the outbox)
          sql`DROP INDEX assignments_block_height`,
          sql`ALTER TABLE assignments DROP COLUMN exclude`,
          sql`DROP TABLE outbox`,
          sql`DROP TABLE process_epochs`,
          sql`DELETE FROM assignment_store_migrations WHERE migration_id >= 2`
        ])
      ).pipe(Effect.provide(SqliteStore.layerClient({ filename })))
      yield* append(entries.slice(2))
      const pages = yield* Effect.flatMap(AssignmentStore.AssignmentStore, (store) => {
        const rendered = {
          ...store,
          // every row whole and without its node JSON, so the page is rendered from the bytes
          range: (processId: ProcessId, query: AssignmentStore.RangeQuery) =>
            Effect.map(store.range(processId, { ...query, nodeJsonOnly: false }), (es) =>
              es.map((e) => ({ assignment: e.assignment, message: e.message }))
            ),
          page: (processId: ProcessId, query: AssignmentStore.PageQuery) =>
            Effect.map(store.page(processId, { ...query, nodeJsonOnly: false }), ({ entries, more }) => ({
              entries: entries.map((e) => ({ assignment: e.assignment, message: e.message })),
              more
            })),
          nodeJsonPage: undefined
        }
        return Effect.all([
          Effect.map(store.range(p, { by: "slot", limit: 10 }), (es) => es.map((e) => e.nodeJson !== undefined)),
          legacyPage(store, p, { limit: 3 }),
          legacyPage(rendered, p, { limit: 3 }),
          legacyPage(store, p, { fromNonce: 1, limit: 10, showAnchor: true }),
          legacyPage(rendered, p, { fromNonce: 1, limit: 10 })
        ])
      }).pipe(Effect.provide(SqliteStore.layer({ filename })))
      const [stored, page, renderedPage, withAnchor, renderedTail] = pages
      expect(stored).toEqual([false, false, true, true])
      const json = (body: PageBody) => JSON.parse(Buffer.from(pageBytes(body)).toString("utf8"))
      expect(json(page)).toEqual(json(renderedPage))
      expect(json(page).edges).toHaveLength(3)
      expect(json(page).page_info.has_next_page).toBe(true)
      expect(json(withAnchor)).toEqual(json(renderedTail))
      expect(json(withAnchor).edges.map((e: { cursor: string }) => e.cursor)).toEqual(["2", "3"])
    }).pipe(Effect.provide(WalletTest))
  )

  it.effect("an append after the store's scope has closed fails with StoreError", () =>
    Effect.gen(function* () {
      const filename = Path.join(dir, "closed.db")
      const store = yield* Effect.scoped(SqlStore.make()).pipe(Effect.provide(SqliteStore.layerClient({ filename })))
      const { assignment, message } = fake(randomProcessId(), 0)
      expect(yield* Effect.flip(store.append(assignment, message))).toMatchObject({
        _tag: "StoreError",
        operation: "append",
        reason: "the store is closed"
      })
    })
  )

  it.effect("a file that cannot be opened fails with StoreError, not a defect", () =>
    Effect.gen(function* () {
      const blocker = Path.join(dir, "not-a-directory")
      Fs.writeFileSync(blocker, "")
      const error = yield* Effect.flip(
        Effect.provide(AssignmentStore.AssignmentStore, SqliteStore.layer({ filename: Path.join(blocker, "x.db") }))
      )
      expect(error).toMatchObject({ _tag: "StoreError", operation: "open" })
    })
  )

  it.effect(
    "every acknowledged append survives SIGKILL of the writing process, even with synchronous NORMAL",
    () =>
      Effect.gen(function* () {
        const filename = Path.join(dir, "crash.db")
        const { lines, signal } = yield* appendThenKill(filename, "NORMAL", 2000)
        expect(signal).toBe("SIGKILL")
        expect(lines.length).toBeGreaterThanOrEqual(2000)
        const acked = new Set(lines.map((line) => line.split(" ")[0] as ProcessId))
        expect(acked.size).toBe(8)
        const stored = yield* Effect.flatMap(AssignmentStore.AssignmentStore, (store) =>
          Effect.forEach(acked, (p) => store.range(p, { by: "slot", limit: 1_000_000 }))
        ).pipe(Effect.provide(SqliteStore.layer({ filename })))
        const ids = new Set(stored.flat().map((e) => e.assignment.id as string))
        expect(lines.filter((line) => !ids.has(line.split(" ")[2]!))).toEqual([])
      }),
    30_000
  )
})
