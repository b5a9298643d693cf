/**
 * The measurement of S7 (`cases/registry.ts` `heap`), in a child process started with `--expose-gc`: the heap
 * retained per idle scheduler (or per idle `Effect.never` fiber in a `FiberSet`, the baseline), with `count` live,
 * for each of the ascending `counts` in turn (one process grows to each). Prints one JSON line per count:
 * `{ "kind", "count", "bytesPerItem" }`.
 *
 * Usage: `node --expose-gc --import tsx bench/heap-child.ts scheduler|never <count>[,<count>…]`
 */
import { Effect, FiberSet, Scope } from "effect"
import { randomProcessId } from "../test/fixtures/assignments.js"
import { openRegistry } from "./cases/registry.js"

const kind = process.argv[2] ?? "scheduler"
const counts = (process.argv[3] ?? "10000").split(",").map(Number)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with --expose-gc")

const settle = async () => {
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setImmediate(r))
    gc()
  }
  return process.memoryUsage().heapUsed
}

// the ids are made before the first reading, as the caller's data: only what the registry adds counts
const ids = Array.from({ length: counts.at(-1) ?? 0 }, randomProcessId)

/** Starts the items up to `count`; returns how many are live. */
let grow: (from: number, count: number) => Promise<number>
if (kind === "scheduler") {
  const opened = await openRegistry()
  // one scheduler first, so that lazily created shared structures are not counted per scheduler
  await Effect.runPromise(opened.registry.find(randomProcessId(), true))
  grow = async (from, count) => {
    const batch = ids.slice(from, count)
    await Effect.runPromise(
      Effect.forEach(batch, (p) => opened.registry.find(p, true), { concurrency: 64, discard: true })
    )
    return (await Effect.runPromise(opened.registry.getProcesses())).length - 1
  }
} else {
  const scope = Effect.runSync(Scope.make())
  const set = Effect.runSync(Scope.extend(FiberSet.make(), scope))
  Effect.runFork(FiberSet.run(set, Effect.never))
  grow = async (from, count) => {
    for (let i = from; i < count; i++) Effect.runFork(FiberSet.run(set, Effect.never))
    return Effect.runSync(FiberSet.size(set)) - 1
  }
}
const before = await settle()
let live = 0
for (const count of counts) {
  live = await grow(live, count)
  if (live !== count) throw new Error(`expected ${count} live, got ${live}`)
  const after = await settle()
  console.log(JSON.stringify({ kind, count, bytesPerItem: (after - before) / count }))
}
process.exit(0)
