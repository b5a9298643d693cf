#!/usr/bin/env node
/**
 * Entry point: `tsx src/bin.ts [serve|wallet] …` (`npm start`, `npm run cli`). SIGINT and SIGTERM interrupt the
 * main fiber, which closes the node gracefully and exits 0. A bad flag (already explained by `@effect/cli`) or a
 * port that cannot be bound exits 1 with one readable line instead of an error dump.
 *
 * @since 0.1.0
 */
import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { run } from "./Cli.js"

const exitWith = (code: number) =>
  Effect.sync(() => {
    process.exitCode = code
  })

run(process.argv).pipe(
  Effect.catchIf(ValidationError.isValidationError, () => exitWith(1)),
  Effect.catchIf(
    (e): e is Extract<typeof e, { _tag: "ServeError" }> =>
      typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "ServeError",
    (e) =>
      Effect.zipRight(
        Console.error(`Cannot listen: ${(e as { cause?: { message?: string } }).cause?.message ?? String(e)}`),
        exitWith(1)
      )
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
