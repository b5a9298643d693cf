/**
 * The `su outbox` commands' work: open the store of the given settings (without starting the server), then
 * report its upload outbox or re-drive it.
 */
import { HelpDoc } from "@effect/cli"
import { Clock, Console, Context, Effect, Either, Layer } from "effect"
import { AssignmentStore, type Outbox, type OutboxStatus } from "../../AssignmentStore.js"
import { StoreError } from "../../errors.js"
import type { Settings } from "../Config.js"
import * as Config from "../Config.js"
import * as Node from "../Node.js"
import { requireExisting } from "./existing-store.js"

type StoreSettings = Pick<Settings, "store" | "dataDir" | "pgUrl" | "pgSchema">

/** The flags of the `outbox` commands: the store's (`--data-dir`, `--store`, `--pg-url`, `--pg-schema`), as `serve`'s. */
export const options = {
  dataDir: Config.serveOptions.dataDir,
  store: Config.serveOptions.store,
  pgUrl: Config.serveOptions.pgUrl,
  pgSchema: Config.serveOptions.pgSchema
}

/** Runs `f` on the outbox of the store `settings` name; the store is closed afterwards. */
const withOutbox = <A, E>(settings: StoreSettings, f: (outbox: Outbox, where: string) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const config = yield* Either.match(Config.resolveStore(settings), {
      // printed here: the binary exits 1 on a ValidationError without printing it
      onLeft: (e) => Effect.zipRight(Console.error(HelpDoc.toAnsiText(e.error).trim()), Effect.fail(e)),
      onRight: Effect.succeed
    })
    yield* requireExisting(config, "outbox")
    const store = Context.get(yield* Layer.build(Node.layerStore(config)), AssignmentStore)
    if (store.outbox === undefined) {
      return yield* Effect.fail(new StoreError({ operation: "outbox", reason: "this store keeps no upload outbox" }))
    }
    return yield* f(
      store.outbox,
      config.kind === "sqlite"
        ? config.filename
        : config.kind === "pg"
          ? `postgresql ${config.schema ?? "public"}`
          : "memory"
    )
  }).pipe(Effect.scoped)

/** The lines `su outbox status` prints. */
export const statusLines = (where: string, status: OutboxStatus, now: number): ReadonlyArray<string> => [
  `outbox of      ${where}`,
  `depth          ${status.pending + status.retrying} items not yet uploaded`,
  `  pending      ${status.pending} (never tried)`,
  `  retrying     ${status.retrying} (failed, waiting for their next attempt)`,
  `uploaded       ${status.uploaded ?? 0}`,
  `oldest         ${
    status.oldestPendingAt === undefined ? "-" : `${Math.max(0, now - status.oldestPendingAt)} ms old`
  }`,
  `next attempt   ${status.nextAttemptAt === undefined ? "-" : `in ${Math.max(0, status.nextAttemptAt - now)} ms`}`
]

/** `su outbox status`. */
export const status = (settings: StoreSettings) =>
  withOutbox(settings, (outbox, where) =>
    Effect.gen(function* () {
      const current = yield* outbox.status({ uploaded: true })
      const now = yield* Clock.currentTimeMillis
      yield* Console.log(statusLines(where, current, now).join("\n"))
    })
  )

/** `su outbox redrive`. */
export const redrive = (settings: StoreSettings) =>
  withOutbox(settings, (outbox, where) =>
    Effect.flatMap(outbox.redrive(), (count) =>
      Console.log(
        `redriven ${count} failed items of ${where}: they are due now (a running node picks them up within 1 s)`
      )
    )
  )
