import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Assignment, AssignmentStore, NameService, SchedulerRegistry, Wallet } from "../src/index.js"
import { SqliteStore } from "../src/sqlite/index.js"
import { TestWallet } from "../src/testing/index.js"
import { librarySnippets } from "./fixtures/readme.js"

const processId = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/** The README's program: NotFound first, then slot 0 of a fresh schedule. */
const program = Effect.gen(function* () {
  const missing = yield* Effect.flip(SchedulerRegistry.find(processId))
  const scheduler = yield* SchedulerRegistry.find(processId, true)
  const assignment = yield* scheduler.schedule(new Assignment.Message({ id: processId as never }))
  return { missing, assignment }
})

/** Runs the README's program over `store` with the wallet file in a temporary directory, as the example does. */
const runExample = (store: (dir: string) => Layer.Layer<AssignmentStore.AssignmentStore, unknown>) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "readme-"))
  // the test key stands in for the file the example would create (RSA-4096 generation is slow)
  Fs.writeFileSync(Path.join(dir, "wallet.json"), JSON.stringify(TestWallet.jwk))
  const RegistryLive = SchedulerRegistry.layer({ idleTimeToLiveMs: 300_000 }).pipe(
    Layer.provide(Layer.mergeAll(NameService.layer, Wallet.layerFile(Path.join(dir, "wallet.json")), store(dir)))
  )
  return Effect.gen(function* () {
    const { missing, assignment } = yield* program.pipe(Effect.provide(RegistryLive))
    expect(missing._tag).toBe("NotFound")
    expect(assignment.slot).toBe(0)
    expect(assignment.hashChain).toHaveLength(43)
    expect(assignment.hashChain).toBe(Assignment.initialHashChain(processId))
  }).pipe(Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))))
}

describe("README", () => {
  it("shows the memory-store example from the main entry and its SQLite variant from /sqlite", () => {
    const [memory, sqlite] = librarySnippets()
    expect(memory).toContain('from "effect-scheduler-registry"')
    expect(memory).toContain("AssignmentStore.layerMemory")
    expect(memory).toContain("Effect.flip(SchedulerRegistry.find(processId))")
    expect(sqlite).toContain('import { SqliteStore } from "effect-scheduler-registry/sqlite"')
    expect(sqlite).toContain('SqliteStore.layer({ filename: "./data/su.sqlite" })')
  })

  it.scopedLive("the library example composes the Layers over the memory store and schedules slot 0", () =>
    runExample(() => AssignmentStore.layerMemory)
  )

  it.scopedLive("the SQLite variant schedules slot 0 into a file", () =>
    runExample((dir) => SqliteStore.layer({ filename: Path.join(dir, "su.sqlite") }))
  )
})
