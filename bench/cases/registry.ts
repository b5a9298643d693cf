/**
 * The registry's cases: `find` against the bare Effect structures it is built on, and the memory of idle schedulers.
 *
 * - R1: `find(p)` hits among 10,000 live schedulers, random ids, against `Ref.get` + `HashMap.get` with the same
 *   kind of key (a `Name`); a plain JS `Map.get` is shown alongside.
 * - S8: `find(p, true)` on 10,000 new ids (memory store) against `FiberMap.run` of an idle fiber on new keys.
 * - R3: 1,000 concurrent `find(p, true)` of one new id against 1,000 `FiberMap.run(…, { onlyIfMissing: true })`
 *   of one key; exactly one start each.
 * - S7a, S7b: the heap retained per idle scheduler with 10,000 and 100,000 live, against an idle `Effect.never`
 *   fiber in a `FiberSet`, and the series "memory-vs-schedulers" (1,000, 10,000, 100,000 live).
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { Context, Effect, Exit, FiberMap, HashMap, Layer, Ref, Scope } from "effect"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import * as NameService from "../../src/NameService.js"
import { Name } from "../../src/NameService.js"
import * as SchedulerRegistry from "../../src/SchedulerRegistry.js"
import { randomProcessId } from "../../test/fixtures/assignments.js"
import { WalletTest } from "../../test/fixtures/wallet.js"
import { bestOf, type CaseResult, type Options, type Row, type Series, shuffled, tiny } from "../lib.js"

/** A memory store that counts scheduler starts (one `latest` read each). */
const countingStore = (counter: { starts: number }) =>
  Layer.effect(
    AssignmentStore.AssignmentStore,
    Effect.map(AssignmentStore.makeMemory, (inner) => ({
      ...inner,
      latest: (p: Parameters<typeof inner.latest>[0]) =>
        Effect.suspend(() => {
          counter.starts++
          return inner.latest(p)
        })
    }))
  )

/** A registry (memory store, fixture wallet) in its own scope; `close` interrupts its schedulers. */
export const openRegistry = async (counter = { starts: 0 }, options: SchedulerRegistry.Options = {}) => {
  const layer = SchedulerRegistry.layer(options).pipe(
    Layer.provide(Layer.mergeAll(NameService.layer, Layer.orDie(WalletTest), countingStore(counter)))
  )
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  return {
    registry: Context.get(context, SchedulerRegistry.SchedulerRegistry),
    counter,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** A fresh `FiberMap` in its own scope; `close` interrupts its fibers. */
const openFiberMap = () => {
  const scope = Effect.runSync(Scope.make())
  const map = Effect.runSync(Scope.extend(FiberMap.make<string>(), scope))
  return { map, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const ids = (n: number) => Array.from({ length: n }, randomProcessId)

/** R1. */
const findHit = async (options: Options): Promise<Row> => {
  const live = 10_000
  const { registry, close } = await openRegistry()
  const all = ids(live)
  await Effect.runPromise(Effect.forEach(all, (p) => registry.find(p, true), { concurrency: 64, discard: true }))
  const wallet = Effect.runSync(registry.getWallet())
  const batch = 1_000
  const picks = shuffled(all).slice(0, batch)

  const prefix = Name.prefixHash(SchedulerRegistry.SERVICE_TYPE, wallet.address)
  const nameOf = (p: string) => new Name(SchedulerRegistry.SERVICE_TYPE, wallet.address, p, prefix)
  const ref = Ref.unsafeMake(HashMap.fromIterable(all.map((p) => [nameOf(p), { p }] as const)))
  const bare = (p: string) => Effect.map(Ref.get(ref), (m) => HashMap.get(m, nameOf(p)))
  const jsMap = new Map(all.map((p) => [p as string, { p }]))

  const findBatch = Effect.forEach(picks, (p) => registry.find(p), { discard: true })
  const bareBatch = Effect.forEach(picks, bare, { discard: true })
  let sink = 0
  const time = options.quick ? 250 : 1_500
  const rounds = options.quick ? 1 : 3
  let f = Number.POSITIVE_INFINITY
  let b = Number.POSITIVE_INFINITY
  let j = Number.POSITIVE_INFINITY
  for (let r = 0; r < rounds; r++) {
    b = Math.min(b, await tiny("bare", () => Effect.runSync(bareBatch), { time, batch }))
    f = Math.min(f, await tiny("find", () => Effect.runSync(findBatch), { time, batch }))
    j = Math.min(
      j,
      await tiny(
        "Map.get",
        () => {
          for (const p of picks) if (jsMap.get(p) !== undefined) sink++
        },
        { time, batch }
      )
    )
  }
  const found = await Effect.runPromise(Effect.forEach(picks, (p) => registry.find(p)))
  await close()
  return {
    id: "R1",
    name: "`find(p)` hit, 10,000 live schedulers, random ids",
    unit: "µs/op",
    figure: f * 1000,
    baseline: b * 1000,
    baselineName: "`Ref.get` + `HashMap.get`, `Name` key",
    target: { op: "<=", ratio: 1.5 },
    notes: [`plain JS \`Map.get\` (string key): ${(j * 1000).toFixed(4)} µs/op${sink < 0 ? "" : ""}`],
    checks: [{ what: "every find hits its own scheduler", ok: found.every((s, i) => s.processId === picks[i]) }]
  }
}

/**
 * S8. Each round times one batch of `find(p, true)` on `n` new ids in a fresh registry and one batch of
 * `FiberMap.run` of an idle fiber on `n` new keys in a fresh `FiberMap`, one after the other (the setup and the
 * teardown, which interrupts the fibers, are not timed); each side keeps its best round, so that load from
 * elsewhere on the machine, which comes and goes, penalises neither side more than the other. An untimed round
 * of 2,000 on each side warms both up first. Quick mode: 3 rounds; full: 9.
 */
const findCreate = async (options: Options): Promise<Row> => {
  const n = 10_000
  const rounds = options.quick ? 3 : 9
  const counter = { starts: 0 }
  const timed = async (count: number, run: Effect.Effect<void, unknown>) => {
    const start = performance.now()
    await Effect.runPromise(run)
    return (performance.now() - start) / count
  }
  const candidate = async (count: number) => {
    const opened = await openRegistry(counter)
    const fresh = ids(count)
    const ms = await timed(
      count,
      Effect.forEach(fresh, (p) => opened.registry.find(p, true), { discard: true })
    )
    await opened.close()
    return ms
  }
  const baseline = async (count: number) => {
    const { map, close } = openFiberMap()
    const fresh = ids(count)
    const ms = await timed(
      count,
      Effect.forEach(fresh, (p) => FiberMap.run(map, p, Effect.never), { discard: true })
    )
    await close()
    return ms
  }
  const warmup = 2_000
  await baseline(warmup)
  await candidate(warmup)
  const best = await bestOf(
    rounds,
    () => candidate(n),
    () => baseline(n)
  )
  return {
    id: "S8",
    name: `\`find(p, true)\` on ${n.toLocaleString("en-US")} new ids (memory store)`,
    unit: "µs/op",
    figure: best.candidate * 1000,
    baseline: best.baseline * 1000,
    baselineName: "`FiberMap.run` of an idle fiber on new keys",
    target: { op: "<=", ratio: 2 },
    notes: [`best of ${rounds} interleaved rounds of ${n.toLocaleString("en-US")}, after an untimed warm-up round`],
    checks: [{ what: "one start per new id", ok: counter.starts === warmup + rounds * n }]
  }
}

/** R3. */
const hotId = async (options: Options): Promise<Row> => {
  const callers = 1_000
  const time = options.quick ? 1 : 1_000
  const iterations = options.quick ? 10 : 30
  const startsPerRun: Array<number> = []
  const sameHandle: Array<boolean> = []
  let current: { close: () => Promise<void>; run: () => Promise<void> } | undefined
  const figure = await tiny("hot find(p, true)", () => current!.run(), {
    time,
    iterations,
    async: true,
    batch: callers,
    beforeEach: async () => {
      const counter = { starts: 0 }
      const opened = await openRegistry(counter)
      const p = randomProcessId()
      current = {
        close: opened.close,
        run: async () => {
          const handles = await Effect.runPromise(
            Effect.forEach(Array.from({ length: callers }), () => opened.registry.find(p, true), {
              concurrency: "unbounded"
            })
          )
          startsPerRun.push(counter.starts)
          sameHandle.push(handles.every((h) => h.fiber === handles[0]!.fiber))
        }
      }
    },
    afterEach: () => current?.close()
  })
  const baselineStarts: Array<number> = []
  const baseline = await tiny("hot FiberMap.run onlyIfMissing", () => current!.run(), {
    time,
    iterations,
    async: true,
    batch: callers,
    beforeEach: () => {
      const { map, close } = openFiberMap()
      const key = randomProcessId()
      let starts = 0
      const start = Effect.zipRight(
        Effect.sync(() => starts++),
        Effect.never
      )
      current = {
        close,
        run: async () => {
          await Effect.runPromise(
            Effect.forEach(
              Array.from({ length: callers }),
              () => FiberMap.run(map, key, start, { onlyIfMissing: true }),
              {
                concurrency: "unbounded",
                discard: true
              }
            )
          )
          await Effect.runPromise(Effect.yieldNow())
          baselineStarts.push(starts)
        }
      }
    },
    afterEach: () => current?.close()
  })
  const oneStart = startsPerRun.every((s) => s === 1)
  return {
    id: "R3",
    name: "one hot id, 1,000 concurrent `find(p, true)`",
    unit: "µs/op",
    figure: figure * 1000,
    baseline: baseline * 1000,
    baselineName: "`FiberMap.run` with `onlyIfMissing`, one key, 1,000 fibers",
    target: { op: "<=", ratio: 1.5 },
    notes: [
      `starts per run: ${[...new Set(startsPerRun)].join(", ")} over ${startsPerRun.length} runs (baseline: ${[
        ...new Set(baselineStarts)
      ].join(", ")})`
    ],
    checks: [
      { what: "exactly one start", ok: oneStart && startsPerRun.length > 0 },
      { what: "one handle", ok: sameHandle.every(Boolean) }
    ]
  }
}

/** One heap measurement: a child process (`heap-child.ts`, with `--expose-gc`) that prints JSON lines. */
const heapChild = (kind: "scheduler" | "never", counts: ReadonlyArray<number>): Promise<Map<number, number>> =>
  new Promise((resolve, reject) => {
    const script = Path.join(import.meta.dirname, "..", "heap-child.ts")
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", script, kind, counts.join(",")], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8")
    })
    child.once("error", reject)
    child.once("exit", (code) => {
      try {
        const points = new Map<number, number>()
        for (const line of out.trim().split("\n")) {
          const { count, bytesPerItem } = JSON.parse(line) as { count: number; bytesPerItem: number }
          points.set(count, bytesPerItem)
        }
        if (points.size !== counts.length) throw new Error(`heap-child ${kind} exited ${code}: ${out}`)
        resolve(points)
      } catch (e) {
        reject(e)
      }
    })
  })

/**
 * S7a, S7b and the series "memory-vs-schedulers": the heap retained per idle scheduler, measured in a child
 * process that starts schedulers up to each count in turn (so one process measures every count), against idle
 * `Effect.never` fibers in a `FiberSet`, measured at the same time in a second child. Quick mode counts
 * 1,000 and 10,000 only (S7a; 100,000, S7b, takes about 15 s per child).
 */
const heap = async (options: Options): Promise<CaseResult> => {
  const counts = options.quick ? [1_000, 10_000] : [1_000, 10_000, 100_000]
  const [schedulers, fibers] = await Promise.all([heapChild("scheduler", counts), heapChild("never", counts)])
  const rows: Array<Row> = []
  for (const [id, count] of [
    ["S7a", 10_000],
    ["S7b", 100_000]
  ] as const) {
    const scheduler = schedulers.get(count)
    const never = fibers.get(count)
    if (scheduler === undefined || never === undefined) continue
    rows.push({
      id,
      name: `retained heap per idle scheduler, ${count.toLocaleString("en-US")} live schedulers`,
      unit: "KB",
      figure: scheduler / 1024,
      baseline: never / 1024,
      baselineName: "an idle `Effect.never` fiber in a `FiberSet`",
      target: undefined,
      absolute: { op: "<=", value: 4 }
    })
  }
  const series: Series = {
    id: "memory-vs-schedulers",
    title: "Retained heap against live idle schedulers (memory store)",
    x: { name: "live schedulers", log: true },
    y: { name: "retained heap", unit: "MB total · KB each", log: true },
    points: counts.flatMap((count) => [
      { x: count, y: ((schedulers.get(count) ?? 0) * count) / 2 ** 20, line: "schedulers, MB total" },
      { x: count, y: (schedulers.get(count) ?? 0) / 1024, line: "schedulers, KB each" },
      { x: count, y: (fibers.get(count) ?? 0) / 1024, line: "idle `Effect.never` fibers, KB each" }
    ])
  }
  return { rows, series: [series] }
}

export const cases = { findHit, findCreate, hotId, heap }
