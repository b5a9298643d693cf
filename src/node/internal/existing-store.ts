/**
 * Checks for the commands that work on a store without starting the node (`su export`, `su outbox …`): the
 * store must already exist, so that a mistyped `--data-dir` is an error instead of a new, empty store (SQLite
 * creates a missing file), and `--store memory`, which keeps nothing between runs, is refused.
 */
import * as Fs from "node:fs"
import { Effect } from "effect"
import { StoreError } from "../../errors.js"
import type { StoreConfig } from "../Node.js"

/** Fails with `StoreError` (`operation`: the command) for a memory store or a SQLite file that does not exist. */
export const requireExisting = (config: StoreConfig, operation: string): Effect.Effect<void, StoreError> => {
  if (config.kind === "memory") {
    return Effect.fail(new StoreError({ operation, reason: "--store memory keeps nothing between runs" }))
  }
  if (config.kind === "sqlite" && !Fs.existsSync(config.filename)) {
    return Effect.fail(
      new StoreError({ operation, reason: `there is no SQLite store at ${config.filename} (check --data-dir)` })
    )
  }
  return Effect.void
}

/** Fails with `StoreError` for `--store memory`, where an import would keep nothing. */
export const requireDurable = (config: StoreConfig, operation: string): Effect.Effect<void, StoreError> =>
  config.kind === "memory"
    ? Effect.fail(new StoreError({ operation, reason: "--store memory keeps nothing between runs" }))
    : Effect.void
