#!/usr/bin/env node
/**
 * Entry point: `tsx src/bin.ts [serve|wallet] …` (`npm start`, `npm run cli`). SIGINT and SIGTERM interrupt the
 * main fiber, which closes the node gracefully and exits 0. A bad flag (already explained by `@effect/cli`)
 * exits 1; so does a command that cannot start, after one readable line naming the setting and its fix (the
 * commands print it themselves, `Cli.ts`), with no error dump unless `--log-level debug`.
 *
 * @since 0.1.0
 */
import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { run } from "./Cli.js"
import { reportFailure } from "./internal/start-error.js"

run(process.argv).pipe(
  Effect.catchIf(ValidationError.isValidationError, () =>
    Effect.sync(() => {
      process.exitCode = 1
    })
  ),
  // what @effect/cli itself fails with before a command runs, e.g. a --data-dir under a file (ENOTDIR)
  reportFailure(
    (error) =>
      `su: cannot start: ${(error as { message?: unknown }).message ?? String(error)}; ` +
      "check the paths given to --data-dir, --wallet and --identity"
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
