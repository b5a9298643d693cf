/**
 * `su export` and `su import` as an operator runs them: the bundled binary moves a SQLite store's schedules
 * into PostgreSQL through a file and back out through standard output; a mistyped data directory and a
 * garbled file are refused with one line and exit code 1.
 */
import { spawn as spawnChild } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as PgStore from "../src/pg/PgStore.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import { bundleEntry } from "./fixtures/child.js"
import { makeFastKey } from "./fixtures/fast-key.js"
import { tempDir } from "./fixtures/node.js"
import { dropSchemaOnClose, pgUnavailable, pgUrl, randomSchema } from "./fixtures/pg.js"
import { appendAll, exportText, openSql, signedSchedule } from "./fixtures/transfer.js"

const ROOT = Path.resolve(import.meta.dirname, "..")
const unavailable = await pgUnavailable(pgUrl)

/** Runs the bundled CLI with `args`, `stdin` on its standard input; resolves with its exit code and outputs. */
const run = (script: string, args: ReadonlyArray<string>, stdin = "") =>
  Effect.async<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = spawnChild(process.execPath, [script, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" } })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => {
      stdout += chunk
    })
    child.stderr.on("data", (chunk) => {
      stderr += chunk
    })
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    child.stdin.end(stdin)
  })

describe.skipIf(unavailable !== undefined)("su export / su import", () => {
  it.scopedLive(
    "SQLite → file → PostgreSQL → standard output, one process; a mistyped data directory and a garbled file refused",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const key = makeFastKey()
        const rows = [...(yield* signedSchedule(key, 5)), ...(yield* signedSchedule(key, 3))]
        const expected = yield* Effect.scoped(
          Effect.gen(function* () {
            const lite = yield* openSql(SqliteStore.layerClient({ filename: Path.join(dir, "su.sqlite") }))
            yield* appendAll(lite.store, rows)
            return yield* exportText(lite.store)
          })
        )
        const schema = randomSchema("su_cli_transfer")
        yield* Layer.build(Layer.provideMerge(dropSchemaOnClose(schema), PgStore.layerClient({ url: pgUrl, schema })))
        const pgFlags = ["--store", "pg", "--pg-url", pgUrl, "--pg-schema", schema]
        const script = yield* bundleEntry(new URL("../src/node/bin.ts", import.meta.url))
        const file = Path.join(dir, "backup.ndjson")

        const exported = yield* run(script, ["export", "--data-dir", dir, "--out", file])
        expect(exported.code, exported.stderr).toBe(0)
        expect(Fs.readFileSync(file, "utf8")).toBe(expected)
        expect(exported.stderr).toContain(`to ${file}`)

        const imported = yield* run(script, ["import", ...pgFlags, "--in", file])
        expect(imported.code, imported.stderr).toBe(0)
        expect(imported.stderr).toContain("2 processes, 8 assignments (8 appended, 0 already present)")

        const again = yield* run(script, ["import", ...pgFlags, "--in", "-"], expected)
        expect(again.stderr).toContain("(0 appended, 8 already present)")

        const back = yield* run(script, ["export", ...pgFlags])
        expect(back.code, back.stderr).toBe(0)
        expect(back.stdout).toBe(expected)

        const processId = rows[5]!.assignment.processId
        const one = yield* run(script, ["export", ...pgFlags, "--process", processId, "--out", "-"])
        expect(one.stdout.split("\n").filter((l) => l !== "")).toHaveLength(5)

        const typo = yield* run(script, ["export", "--data-dir", Path.join(dir, "typo")])
        expect(typo.code).toBe(1)
        expect(typo.stderr).toContain(`there is no SQLite store at ${Path.join(dir, "typo", "su.sqlite")}`)
        expect(Fs.existsSync(Path.join(dir, "typo", "su.sqlite"))).toBe(false)

        const garbled = yield* run(script, ["import", "--data-dir", dir, "--in", "-"], `${expected.slice(0, 300)}\n`)
        expect(garbled.code).toBe(1)
        expect(garbled.stderr.trim()).toBe(
          "su import: Import refused at line 2: not JSON (a garbled or truncated line)"
        )
      }),
    120_000
  )
})
