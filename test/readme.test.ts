import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { Assignment, NameService, SchedulerRegistry, Wallet } from "../src/index.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import { walletJwk } from "./fixtures/wallet.js"

describe("README", () => {
  it.scopedLive("the library example composes the Layers and schedules slot 0", () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "readme-"))
    // the fixture key stands in for the file the example would create (RSA-4096 generation is slow)
    Fs.writeFileSync(Path.join(dir, "wallet.json"), JSON.stringify(walletJwk))
    const RegistryLive = SchedulerRegistry.layer({ idleTimeToLiveMs: 300_000 }).pipe(
      Layer.provide(
        Layer.mergeAll(
          NameService.layer,
          Wallet.layerFile(Path.join(dir, "wallet.json")),
          SqliteStore.layer({ filename: Path.join(dir, "su.sqlite") })
        )
      )
    )
    const program = Effect.gen(function* () {
      const processId = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
      const missing = yield* Effect.either(SchedulerRegistry.find(processId))
      const scheduler = yield* SchedulerRegistry.find(processId, true)
      const assignment = yield* scheduler.schedule(new Assignment.Message({ id: processId as never }))
      return { missing, assignment }
    })
    return Effect.gen(function* () {
      const { missing, assignment } = yield* program.pipe(Effect.provide(RegistryLive))
      expect(Either.isLeft(missing) && missing.left._tag).toBe("NotFound")
      expect(assignment.slot).toBe(0)
      expect(assignment.hashChain).toHaveLength(43)
    }).pipe(Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))))
  })
})
