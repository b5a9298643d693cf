/**
 * The benchmark harness's shared pieces: the options every case gets, the row each case returns, interleaved
 * best-of-N timing (so a noisy neighbour on a small machine hurts baseline and candidate alike), and the table.
 */
import * as Os from "node:os"
import { Bench } from "tinybench"

/** What every case gets: `quick` for the short run (`npm run bench -- --quick`). */
export interface Options {
  readonly quick: boolean
}

/** How a figure compares with its baseline: `ratio = figure / baseline` must be `<=` or `>=` the target. */
export interface Target {
  readonly op: "<=" | ">="
  readonly ratio: number
}

/**
 * One line of the table. `figure` and `baseline` are in `unit` (e.g. "µs/op", "ops/s", "KB/scheduler").
 * `target` compares the ratio, or (`absolute`) the figure itself; `pass` is computed from them plus `checks`.
 */
export interface Row {
  readonly id: string
  readonly name: string
  readonly unit: string
  readonly figure: number
  readonly baseline: number | undefined
  readonly baselineName: string
  readonly target: Target | undefined
  readonly absolute?: { readonly op: "<=" | ">="; readonly value: number } | undefined
  /** Extra facts to print (e.g. the plain JS `Map.get` time, the number of starts). */
  readonly notes?: ReadonlyArray<string> | undefined
  /** Extra conditions that must hold for PASS (e.g. "exactly one start"). */
  readonly checks?: ReadonlyArray<{ readonly what: string; readonly ok: boolean }> | undefined
}

/**
 * How a cost grows with a size, for one chart of `docs/benchmarks.md`: every point is one measurement of this
 * run (`x` the size, e.g. processes or assignments; `y` the cost in `y.unit`), and `line` names the curve it
 * belongs to when a chart has several (e.g. "throughput" and "p99").
 */
export interface Series {
  /** The chart's file name without extension, e.g. "scale-processes" (drawn to `docs/charts/<id>.svg`). */
  readonly id: string
  readonly title: string
  readonly x: { readonly name: string; readonly log?: boolean | undefined }
  readonly y: { readonly name: string; readonly unit: string; readonly log?: boolean | undefined }
  readonly points: ReadonlyArray<{ readonly x: number; readonly y: number; readonly line: string }>
}

/** What a case returns: its table rows and, optionally, the series it measured for the charts. */
export type CaseResult =
  | Row
  | ReadonlyArray<Row>
  | { readonly rows: ReadonlyArray<Row>; readonly series: ReadonlyArray<Series> }

export const ratioOf = (row: Row): number | undefined =>
  row.baseline === undefined || row.baseline === 0 ? undefined : row.figure / row.baseline

const holds = (op: "<=" | ">=", a: number, b: number) => (op === "<=" ? a <= b : a >= b)

/** A row with no target and no check: a figure shown for itself (a chart point, a ceiling), neither PASS nor FAIL. */
export const informative = (row: Row): boolean =>
  row.target === undefined && row.absolute === undefined && (row.checks ?? []).length === 0

export const passes = (row: Row): boolean => {
  const r = ratioOf(row)
  const ratioOk = row.target === undefined || (r !== undefined && holds(row.target.op, r, row.target.ratio))
  const absOk = row.absolute === undefined || holds(row.absolute.op, row.figure, row.absolute.value)
  return ratioOk && absOk && (row.checks ?? []).every((c) => c.ok)
}

/** A number with three significant digits (and thousands separators for large ones). */
export const fmt = (n: number): string => {
  if (!Number.isFinite(n)) return String(n)
  const abs = Math.abs(n)
  if (abs >= 1000) return Math.round(n).toLocaleString("en-US")
  if (abs >= 100) return n.toFixed(0)
  if (abs >= 10) return n.toFixed(1)
  if (abs >= 1) return n.toFixed(2)
  return n.toPrecision(3)
}

const targetText = (row: Row): string => {
  const parts: Array<string> = []
  if (row.target !== undefined) parts.push(`${row.target.op === "<=" ? "≤" : "≥"} ${row.target.ratio}×`)
  if (row.absolute !== undefined) {
    parts.push(`${row.absolute.op === "<=" ? "≤" : "≥"} ${fmt(row.absolute.value)} ${row.unit}`)
  }
  for (const c of row.checks ?? []) parts.push(c.what)
  return parts.join(", ")
}

/** One row as printed on the console. */
export const line = (row: Row): string => {
  const r = ratioOf(row)
  const base = row.baseline === undefined ? "" : ` | baseline ${fmt(row.baseline)} ${row.unit} (${row.baselineName})`
  const notes = (row.notes ?? []).length > 0 ? `\n      ${(row.notes ?? []).join("; ")}` : ""
  return `${informative(row) ? "INFO" : passes(row) ? "PASS" : "FAIL"} ${row.id}. ${row.name}: ${fmt(row.figure)} ${row.unit}${base}${
    r === undefined ? "" : ` | ratio ${r.toFixed(2)}×`
  }${informative(row) ? "" : ` | target ${targetText(row)}`}${notes}`
}

/** The machine, as printed above the table. */
export const machine = (): string => {
  const cpus = Os.cpus()
  return `${cpus[0]?.model ?? "unknown CPU"} × ${cpus.length} (availableParallelism ${Os.availableParallelism()}), ${Math.round(
    Os.totalmem() / 2 ** 30
  )} GiB, ${Os.type()} ${Os.release()}, Node ${process.version}`
}

const cell = (s: string) => s.replaceAll("|", "\\|")

/** The results as a markdown table. */
export const markdown = (rows: ReadonlyArray<Row>): string => {
  const out = ["| # | case | figure | baseline (same run) | ratio | target | result |", "|---|---|---|---|---|---|---|"]
  for (const row of rows) {
    const r = ratioOf(row)
    const notes = (row.notes ?? []).length > 0 ? `<br>${(row.notes ?? []).join("<br>")}` : ""
    out.push(
      `| ${row.id} | ${cell(row.name)}${cell(notes)} | ${fmt(row.figure)} ${row.unit} | ${
        row.baseline === undefined ? "—" : `${fmt(row.baseline)} ${row.unit} (${cell(row.baselineName)})`
      } | ${r === undefined ? "—" : `${r.toFixed(2)}×`} | ${cell(targetText(row)) || "—"} | ${informative(row) ? "—" : passes(row) ? "PASS" : "**FAIL**"} |`
    )
  }
  return out.join("\n")
}

/**
 * Runs `candidate` and `baseline` alternately `rounds` times and keeps each one's best (lowest) figure, so
 * that load from elsewhere on the machine, which comes and goes, penalises neither side more than the other.
 */
export const bestOf = async (
  rounds: number,
  candidate: () => Promise<number>,
  baseline: () => Promise<number>
): Promise<{ candidate: number; baseline: number }> => {
  let c = Number.POSITIVE_INFINITY
  let b = Number.POSITIVE_INFINITY
  for (let i = 0; i < rounds; i++) {
    b = Math.min(b, await baseline())
    c = Math.min(c, await candidate())
  }
  return { candidate: c, baseline: b }
}

/**
 * The mean time of one call of `fn` in ms, measured with tinybench (`time` ms of samples after a short
 * warmup, at least `iterations` calls). `fn` may batch `batch` inner operations; the result is per inner
 * operation. `beforeEach` / `afterEach` run outside the timed window (fresh state per call).
 */
export const tiny = async (
  name: string,
  fn: () => unknown,
  options: {
    readonly time: number
    readonly batch?: number | undefined
    readonly iterations?: number | undefined
    readonly warmup?: boolean | undefined
    readonly async?: boolean | undefined
    readonly beforeEach?: (() => unknown) | undefined
    readonly afterEach?: (() => unknown) | undefined
  }
): Promise<number> => {
  const bench = new Bench({
    time: options.time,
    iterations: options.iterations ?? 10,
    warmup: options.warmup ?? true,
    warmupTime: Math.min(200, options.time / 2),
    warmupIterations: 2,
    throws: true
  })
  bench.add(name, fn, {
    async: options.async ?? false,
    ...(options.beforeEach === undefined ? {} : { beforeEach: async () => void (await options.beforeEach?.()) }),
    ...(options.afterEach === undefined ? {} : { afterEach: async () => void (await options.afterEach?.()) })
  })
  await bench.run()
  const result = bench.tasks[0]?.result
  if (result === undefined || !("latency" in result)) throw new Error(`${name}: no result`)
  return result.latency.mean / (options.batch ?? 1)
}

/** Shuffled copy of `xs` (Fisher–Yates, `Math.random`). */
export const shuffled = <A>(xs: ReadonlyArray<A>): Array<A> => {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
