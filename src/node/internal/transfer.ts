/**
 * The handlers of `su export` and `su import`: open the store the flags name, then stream `Transfer` to or from
 * a file or standard output / input. Progress and the summary go to standard error, so `--out -` stays clean.
 */
import { FileSystem } from "@effect/platform"
import { NodeSink, NodeStream } from "@effect/platform-node"
import { Clock, Console, Effect, Layer, Option, Stream } from "effect"
import { StoreError } from "../../errors.js"
import * as ProcessId from "../../ProcessId.js"
import * as Transfer from "../../Transfer.js"
import type { StoreConfig } from "../Node.js"
import * as Node from "../Node.js"
import { requireDurable, requireExisting } from "./existing-store.js"

/** `-` means standard input or output. */
export const STDIO = "-"

const transferLayer = (store: StoreConfig) => Transfer.layer.pipe(Layer.provide(Node.layerStore(store)))

/** An import writes: it holds the store's writer lock (`StoreLocked` while a node runs on it), as a node does. */
const importLayer = (store: StoreConfig) =>
  Transfer.layer.pipe(Layer.provide(Node.layerStore(store)), Layer.provide(Node.layerStoreLock(store)))

const storeName = (store: StoreConfig) =>
  store.kind === "sqlite"
    ? store.filename
    : store.kind === "pg"
      ? `PostgreSQL schema ${store.schema ?? "public"}`
      : "memory"

/**
 * Prints a failure as one line on standard error and sets the exit code to 1, instead of a stack trace: every
 * failure here is typed and its message names what is wrong (the line, or the process and slot).
 */
export const reportFailure =
  (command: string) =>
  <E extends { readonly message: string }, R>(effect: Effect.Effect<void, E, R>): Effect.Effect<void, never, R> =>
    Effect.catchAll(effect, (e) =>
      Effect.zipRight(
        Console.error(`su ${command}: ${e.message}`),
        Effect.sync(() => {
          process.exitCode = 1
        })
      )
    )

/** `su export`: the schedules of the store (all, or `--process`) as NDJSON to `--out`. */
export const exportTo = (
  store: StoreConfig,
  options: { readonly process: Option.Option<string>; readonly out: string }
) =>
  Effect.gen(function* () {
    const processId = Option.isSome(options.process) ? yield* ProcessId.parse(options.process.value) : undefined
    const fs = yield* FileSystem.FileSystem
    // checked before the store opens: a mistyped --data-dir must not give an empty backup (SQLite would create
    // the missing file)
    yield* requireExisting(store, "export")
    let bytes = 0
    const stream = Stream.unwrap(Effect.map(Transfer.Transfer, (t) => t.export({ processId }))).pipe(
      Stream.tap((chunk) => Effect.sync(() => (bytes += chunk.length)))
    )
    const started = yield* Clock.currentTimeMillis
    yield* Stream.run(stream, options.out === STDIO ? NodeSink.stdout : fs.sink(options.out)).pipe(
      Effect.provide(transferLayer(store))
    )
    const where = options.out === STDIO ? "standard output" : options.out
    const ms = (yield* Clock.currentTimeMillis) - started
    yield* Console.error(`exported ${storeName(store)} to ${where}: ${bytes} bytes in ${ms} ms`)
  })

/** `su import`: the NDJSON export in `--in` into the store, verified row by row. */
export const importFrom = (store: StoreConfig, options: { readonly in: string }) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    // checked before the store opens (and is created): a missing input file or a memory store is an error
    yield* requireDurable(store, "import")
    if (options.in !== STDIO && !(yield* fs.exists(options.in))) {
      return yield* new StoreError({ operation: "import", reason: `there is no file ${options.in} (check --in)` })
    }
    return yield* importInto(store, options)
  })

const importInto = (store: StoreConfig, options: { readonly in: string }) =>
  Effect.gen(function* () {
    const transfer = yield* Transfer.Transfer
    const fs = yield* FileSystem.FileSystem
    const input = options.in === STDIO ? NodeStream.stdin : fs.stream(options.in, { chunkSize: 64 * 1024 })
    const started = yield* Clock.currentTimeMillis
    const summary = yield* transfer.import(input)
    yield* Console.error(
      `imported into ${storeName(store)}: ${summary.processes} processes, ${summary.assignments} assignments ` +
        `(${summary.appended} appended, ${summary.skipped} already present) in ${(yield* Clock.currentTimeMillis) - started} ms`
    )
  }).pipe(Effect.provide(importLayer(store)))
