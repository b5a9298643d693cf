#!/usr/bin/env node
/**
 * Entry point: `tsx src/bin.ts [serve|wallet] …` (`npm start`, `npm run cli`). SIGINT and SIGTERM interrupt the
 * main fiber, which closes the node gracefully and exits 0.
 *
 * @since 0.1.0
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { run } from "./Cli.js"

run(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain)
