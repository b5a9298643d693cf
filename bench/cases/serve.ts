/**
 * S1–S6 and the "scale-processes" chart: the real node (`src/node/bin.ts serve`, default flags unless a case
 * states one) over loopback HTTP, against the physical limit measured in this run: raw RSA-PSS signing with the
 * node's key on one thread (S1) and on one thread per core at once (S2, S3, S5).
 *
 * Each load posts distinct, client-signed `Type: Message` items (pre-signed, cached between runs) once each over
 * keep-alive connections with autocannon, after the processes were spawned and a short warm-up.
 */
import * as Os from "node:os"
import type { CaseResult, Options, Row, Series } from "../lib.js"
import {
  floor,
  interleave,
  type Load,
  load,
  rawSignRate,
  items as signedItems,
  spawnAll,
  startNode
} from "../serve-lib.js"

interface Run {
  readonly processes: number
  readonly connections: number
  readonly flags?: ReadonlyArray<string> | undefined
}

const WARMUP = 4

/** Spawns `run.processes` processes on a fresh node and posts `perProcess` messages to each. */
/** The node's resident memory and threads right after its start, idle (for S6). */
let idleAtStart: { readonly rss: number; readonly threads: number } | undefined

const measure = async (run: Run, seconds: number, expectedRate: number): Promise<Load> => {
  // many processes: one warm-up message each (the scheduler's start), and at least two timed ones
  const warmup = run.processes > 64 ? 1 : WARMUP
  const total = Math.max(run.processes * 2, Math.ceil(expectedRate * seconds))
  const per = Math.ceil(total / run.processes) + warmup
  const { spawns, messages } = await signedItems(Array.from({ length: run.processes }, () => per))
  const node = await startNode(run.flags)
  if (run.flags === undefined) idleAtStart ??= { rss: node.rss(), threads: node.threads() }
  try {
    await spawnAll(node.url, spawns)
    // warm-up outside the timed run: every process's first messages (its scheduler starts)
    await load(
      node.url,
      interleave(messages.map((m) => m.slice(0, warmup))),
      Math.min(run.connections, run.processes * warmup)
    )
    const timed = interleave(messages.map((m) => m.slice(warmup)))
    if (timed.length === 0) throw new Error(`no message to time: ${run.processes} processes, ${per} items each`)
    return await load(node.url, timed, run.connections)
  } finally {
    await node.stop()
  }
}

const describe = (l: Load) =>
  `${l.ok.toLocaleString("en-US")} in ${l.seconds.toFixed(1)} s; on open connections p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms; each connection's first answer p50 ${l.firstP50} ms, max ${l.firstMax} ms; non-2xx ${l.non2xx}, errors ${l.errors}, timeouts ${l.timeouts}`

/** A throughput row: `load`'s rate against `baseline`, target `ratio` when given. */
const rateRow = (
  id: string,
  name: string,
  load: Load,
  baseline: { readonly rate: number; readonly name: string },
  ratio: number | undefined
): Row => ({
  id,
  name,
  unit: "assignments/s",
  figure: load.rate,
  baseline: baseline.rate,
  baselineName: baseline.name,
  target: ratio === undefined ? undefined : { op: ">=", ratio },
  notes: [describe(load)]
})

const pgUrl = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** S1–S6 and the series. */
const serve = async (options: Options): Promise<CaseResult> => {
  const seconds = options.quick ? 2 : 8
  const cores = Os.availableParallelism()
  const rawMs = options.quick ? 400 : 3_000
  const one = await rawSignRate(1, rawMs)
  const all = await rawSignRate(cores, rawMs)
  const rows: Array<Row> = []
  const raw1 = { rate: one, name: "raw `crypto.sign` RSA-PSS, node key, 1 thread" }
  const rawN = { rate: all, name: `raw \`crypto.sign\` RSA-PSS, node key, ${cores} threads at once` }

  rows.push(await ceiling(seconds, all, cores))
  const s1 = await measure({ processes: 1, connections: 50 }, seconds, one)
  rows.push(rateRow("S1", "1 process, 50 connections, SQLite (defaults)", s1, raw1, 0.85))
  const s2 = await measure({ processes: 8, connections: 50 }, seconds, all)
  rows.push(rateRow("S2", "8 processes, 50 connections, SQLite (defaults)", s2, rawN, 0.8))
  const s3 = await measure({ processes: 64, connections: 200 }, seconds, all)
  rows.push(rateRow("S3", "64 processes, 200 connections, SQLite (defaults)", s3, rawN, 0.75))
  const tails = [s1, s2, s3]
  const worst = Math.max(...tails.map((l) => l.p99 / Math.max(1, l.p50)))
  rows.push({
    id: "S4",
    name: "tails of S1–S3 on open connections: worst p99 / p50",
    unit: "×",
    figure: worst,
    baseline: undefined,
    baselineName: "",
    target: undefined,
    absolute: { op: "<=", value: 3 },
    notes: [`max latency ${tails.map((l) => `${l.max} ms`).join(", ")}`],
    checks: [
      { what: "max ≤ 1 s", ok: tails.every((l) => l.max <= 1_000) },
      { what: "0 non-2xx, 0 errors, 0 timeouts", ok: tails.every((l) => l.non2xx + l.errors + l.timeouts === 0) }
    ]
  })
  const schema = `bench_${process.pid}_${Date.now()}`
  const s5 = await measure(
    { processes: 8, connections: 50, flags: ["--store", "pg", "--pg-url", pgUrl, "--pg-schema", schema] },
    seconds,
    all
  )
  rows.push({
    ...rateRow("S5", "8 processes, 50 connections, PostgreSQL store", s5, rawN, 0.7),
    checks: [{ what: "0 non-2xx", ok: s5.non2xx + s5.errors + s5.timeouts === 0 }]
  })
  rows.push(await signerRss())

  // the last point of the chart (1, 8 and 64 are S1–S3): 1,000 processes; not in quick mode (its 90 s budget)
  const many = 1_000
  const s1000 = options.quick ? undefined : await measure({ processes: many, connections: 200 }, seconds, all)
  const points: Array<readonly [number, Load]> = [
    [1, s1],
    [8, s2],
    [64, s3]
  ]
  if (s1000 !== undefined) points.push([many, s1000])
  const series: Array<Series> = [
    {
      id: "scale-processes",
      title: "Throughput and p99 against the number of processes (SQLite, defaults)",
      x: { name: "processes", log: true },
      y: { name: "assignments/s, ms", unit: "", log: false },
      points: points.flatMap(([x, l]) => [
        { x, y: l.rate, line: "throughput (assignments/s)" },
        { x, y: l.p99, line: "p99 latency (ms)" }
      ])
    }
  ]
  if (s1000 !== undefined) {
    const name = `${many.toLocaleString("en-US")} processes, 200 connections, SQLite (defaults), for the chart`
    rows.push(rateRow("S-many", name, s1000, rawN, undefined))
  }
  return { rows, series }
}

/**
 * The ceiling of S2, S3 and S5 on this machine: the least CPU any server spends per request besides signing
 * (`floor-server.ts`: read, verify, answer; no store), plus the load generator's own, under S2's load, against
 * the signing time per request at the raw all-cores rate. No server can reach a higher ratio here.
 */
const ceiling = async (seconds: number, rawAll: number, cores: number): Promise<Row> => {
  const per = Math.ceil((rawAll * seconds) / 8)
  const { messages } = await signedItems(Array.from({ length: 8 }, () => per))
  const f = await floor(interleave(messages), 50)
  const signMs = (cores * 1000) / rawAll
  const figure = signMs / (signMs + f.serverMs + f.clientMs)
  return {
    id: "C",
    name: "ceiling of S2, S3 and S5 on this machine: raw signing on every core plus the least any server does per request (read, verify, answer: `bench/floor-server.ts`) plus the load generator",
    unit: "×",
    figure,
    baseline: undefined,
    baselineName: "",
    target: undefined,
    notes: [
      `per request: ${signMs.toFixed(2)} ms signing (raw, ${cores} cores), ${f.serverMs.toFixed(2)} ms minimal server, ${f.clientMs.toFixed(2)} ms load generator (CPU)`
    ]
  }
}

/** S6: the node's resident set with its default signer threads against `--signers 0`, per thread. */
const signerRss = async (): Promise<Row> => {
  const idle = async (flags: ReadonlyArray<string>) => {
    const node = await startNode(flags)
    try {
      return { rss: node.rss(), threads: node.threads() }
    } finally {
      await node.stop()
    }
  }
  const without = await idle(["--signers", "0"])
  // the default node's figures were read when S1's node started, before any load
  const withDefault = idleAtStart ?? (await idle([]))
  const threads = Math.max(1, withDefault.threads - without.threads)
  const perThread = (withDefault.rss - without.rss) / threads / 2 ** 20
  return {
    id: "S6",
    name: `resident memory per signer thread (default signers vs \`--signers 0\`, idle node)`,
    unit: "MB",
    figure: perThread,
    baseline: undefined,
    baselineName: "",
    target: undefined,
    absolute: { op: "<=", value: 30 },
    notes: [
      `RSS ${(without.rss / 2 ** 20).toFixed(0)} MB with 0 signers, ${(withDefault.rss / 2 ** 20).toFixed(0)} MB with the default (${threads} more threads)`
    ]
  }
}

export const cases = { serve }
