/**
 * `su outbox status` and `su outbox redrive` in-process, on a SQLite store written beforehand (no server): the
 * depth, per-state counts and oldest age they report, and the failed items a redrive makes due again. Also the
 * SQLite outbox's idempotence: an item queued twice is one row.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { type Console, Context, Effect, Layer } from "effect"
import * as AssignmentStore from "../src/AssignmentStore.js"
import * as Cli from "../src/node/Cli.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import { BASE_TIMESTAMP, fake, randomProcessId } from "./fixtures/assignments.js"
import { bin, finished } from "./fixtures/bin.js"
import { tempDir } from "./fixtures/node.js"

/** Runs the CLI on `args` and returns what it printed. */
const runCli = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    const console: Console.Console = {
      ...(yield* Effect.console),
      log: (...parts: ReadonlyArray<unknown>) => Effect.sync(() => void lines.push(parts.join(" ")))
    }
    yield* Cli.run(["node", "su", ...args]).pipe(Effect.withConsole(console), Effect.provide(NodeContext.layer))
    return lines.join("\n")
  })

describe("su outbox", () => {
  it.scopedLive("status reports depth, per-state counts and the oldest age; redrive makes failed items due", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("su-outbox-")
      const processId = randomProcessId()
      // the store as a crashed node left it: three entries queued, one item uploaded, one failed
      yield* Effect.gen(function* () {
        const store = Context.get(
          yield* Layer.build(SqliteStore.layer({ filename: Path.join(dir, "su.sqlite") })),
          AssignmentStore.AssignmentStore
        )
        const entries = [fake(processId, 0), fake(processId, 1), fake(processId, 2)]
        for (const { assignment, message } of entries) yield* store.append(assignment, message, { outbox: true })
        // queued again (e.g. the same message in another process): still one row per data item
        const again = fake(randomProcessId(), 0, { messageId: entries[0]!.message.id })
        yield* store.append(again.assignment, entries[0]!.message, { outbox: true })
        const outbox = store.outbox!
        expect((yield* outbox.status()).pending).toBe(7)
        yield* outbox.markUploaded([entries[0]!.message.id], BASE_TIMESTAMP + 10)
        yield* outbox.markFailed(entries[0]!.assignment.id, 3, Number.MAX_SAFE_INTEGER, "the bundler answered 503")
      }).pipe(Effect.scoped)

      const status = yield* runCli(["outbox", "status", "--data-dir", dir])
      expect(status).toContain("depth          6 items not yet uploaded")
      expect(status).toContain("  pending      5 (never tried)")
      expect(status).toContain("  retrying     1 (failed")
      expect(status).toContain("uploaded       1")
      expect(status).toMatch(/oldest {9}\d+ ms old/)

      const redriven = yield* runCli(["outbox", "redrive", "--data-dir", dir])
      expect(redriven).toMatch(/^redriven 1 failed items/)
      const after = yield* runCli(["outbox", "status", "--data-dir", dir])
      expect(after).toContain("  pending      6 (never tried)")
      expect(after).toContain("  retrying     0 (failed")
      expect(after).toContain("next attempt   in 0 ms")
    })
  )

  it.scopedLive("a memory store or a pg store without a URL is refused with a typed error, not a crash", () =>
    Effect.gen(function* () {
      const memory = yield* Effect.flip(runCli(["outbox", "status", "--store", "memory"]))
      expect(memory).toMatchObject({ _tag: "StoreError", operation: "outbox" })
      const pg = yield* Effect.flip(runCli(["outbox", "redrive", "--store", "pg"]))
      expect(pg).toMatchObject({ _tag: "MissingValue" })
    })
  )

  it.scopedLive("a data directory with no store is an error, and no store is created there", () =>
    Effect.gen(function* () {
      const dir = Path.join(yield* tempDir(), "mistyped")
      for (const command of ["status", "redrive"]) {
        const error = yield* Effect.flip(runCli(["outbox", command, "--data-dir", dir]))
        expect(error).toMatchObject({ _tag: "StoreError", operation: "outbox" })
        expect(String((error as { reason?: string }).reason)).toContain("there is no SQLite store")
      }
      expect(Fs.existsSync(dir)).toBe(false)
    })
  )

  it.scopedLive("su import: a missing input file or a memory store is one line, exit 1, and no store is created", () =>
    Effect.gen(function* () {
      const script = yield* bin
      const dir = Path.join(yield* tempDir(), "target")
      const missing = yield* Effect.promise(() =>
        finished(script, ["import", "--data-dir", dir, "--in", Path.join(dir, "none.ndjson")])
      )
      expect(missing.code).toBe(1)
      expect(missing.out).toContain("there is no file")
      expect(Fs.existsSync(dir)).toBe(false)
      const memory = yield* Effect.promise(() => finished(script, ["import", "--store", "memory", "--in", "x.ndjson"]))
      expect(memory.code).toBe(1)
      expect(memory.out).toContain("--store memory keeps nothing between runs")
    })
  )
})
