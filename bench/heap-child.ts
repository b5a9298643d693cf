/**
 * Case 4's measurement, in a child process started with `--expose-gc`: the heap retained per idle scheduler
 * (or per idle `Effect.never` fiber, the baseline). Prints one JSON line: `{ "kind", "count", "bytesPerItem" }`.
 *
 * Usage: `node --expose-gc --import tsx bench/heap-child.ts scheduler|never <count>`
 */
import { Effect, Exit, FiberSet, Scope } from "effect"
import { randomProcessId } from "../test/fixtures/assignments.js"
import { openRegistry } from "./cases/registry.js"

const kind = process.argv[2] ?? "scheduler"
const count = Number(process.argv[3] ?? 10_000)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with --expose-gc")

const settle = async () => {
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setImmediate(r))
    gc()
  }
  return process.memoryUsage().heapUsed
}

const ids = Array.from({ length: count }, randomProcessId)
let keep: unknown
let before: number
let after: number
if (kind === "scheduler") {
  const opened = await openRegistry()
  // one scheduler first, so that lazily created shared structures are not counted per scheduler
  await Effect.runPromise(opened.registry.find(randomProcessId(), true))
  before = await settle()
  await Effect.runPromise(Effect.forEach(ids, (p) => opened.registry.find(p, true), { concurrency: 64, discard: true }))
  after = await settle()
  const live = (await Effect.runPromise(opened.registry.getProcesses())).length
  if (live !== count + 1) throw new Error(`expected ${count + 1} live schedulers, got ${live}`)
  keep = opened
} else {
  const scope = Effect.runSync(Scope.make())
  const set = Effect.runSync(Scope.extend(FiberSet.make(), scope))
  Effect.runFork(FiberSet.run(set, Effect.never))
  before = await settle()
  for (const _ of ids) Effect.runFork(FiberSet.run(set, Effect.never))
  after = await settle()
  const size = Effect.runSync(FiberSet.size(set))
  if (size !== count + 1) throw new Error(`expected ${count + 1} fibers, got ${size}`)
  keep = { set, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}
console.log(JSON.stringify({ kind, count, bytesPerItem: (after - before) / count }))
void keep
process.exit(0)
