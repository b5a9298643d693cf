/**
 * The benchmark suite: each case against its baseline, measured in the same run, with its target.
 *
 * Usage: `npm run bench [-- --quick] [--markdown <file>] [--only 1,2,…]`
 * - `--quick`: shorter runs (the whole suite in under a minute), for a smoke check; figures are noisier.
 * - `--markdown <file>`: also writes the table (with the machine and command) between the
 *   `<!-- bench:begin -->` and `<!-- bench:end -->` markers of `<file>` (or prints it if the file has none), and
 *   draws each series of the run (how a cost grows) to `charts/<id>.svg` beside it, with its data in
 *   `charts/<id>.json` (vega-lite, `bench/chart.ts`).
 * - `--only`: the cases to run, by the id of their first row: R1, S8, R3, S7, S1 (S1–S6 and the process
 *   series), S9 (S9 and the page series).
 *
 * The cases run in child processes (`--case`, internal): the registry's in-process cases in one, each case over
 * HTTP in its own, so that none inherits another's heap, threads or JIT state, and a crash of one is reported as
 * its error while the others go on.
 *
 * Exits with 0 whatever the results: the table says PASS or FAIL per case. Not part of `npm test`.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { cases as read } from "./cases/read.js"
import { cases as registry } from "./cases/registry.js"
import { cases as serve } from "./cases/serve.js"
import { draw } from "./chart.js"
import {
  type CaseResult,
  fmt,
  informative,
  line,
  machine,
  markdown,
  type Options,
  type Row,
  type Series
} from "./lib.js"

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const markdownAt = args.indexOf("--markdown")
const markdownFile = markdownAt >= 0 ? args[markdownAt + 1] : undefined
const onlyAt = args.indexOf("--only")
const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? "").split(",")) : undefined
const caseAt = args.indexOf("--case")
const caseId = caseAt >= 0 ? args[caseAt + 1] : undefined
const resultAt = args.indexOf("--result")
const resultFile = resultAt >= 0 ? args[resultAt + 1] : undefined
const options: Options = { quick }

const CASES: ReadonlyArray<readonly [string, () => Promise<CaseResult>]> = [
  ["R1", () => registry.findHit(options)],
  ["S8", () => registry.findCreate(options)],
  ["R3", () => registry.hotId(options)],
  ["S7", () => registry.heap(options)],
  ["S1", () => serve.serve(options)],
  ["S9", () => read.readPage(options)]
]

interface Outcome {
  readonly rows: ReadonlyArray<Row>
  readonly series: ReadonlyArray<Series>
  readonly error?: string | undefined
}

/**
 * In a child (`--case ID[,ID…] --result FILE`): runs the cases in turn, prints their rows, writes their outcome to
 * FILE (a failed case is its error; the others go on).
 */
const runCases = async (ids: ReadonlyArray<string>, file: string) => {
  const outcome: { rows: Array<Row>; series: Array<Series>; error?: string } = { rows: [], series: [] }
  for (const id of ids) {
    const t = performance.now()
    try {
      const result = await CASES.find(([c]) => c === id)![1]()
      const rows = Array.isArray(result) ? result : "rows" in result ? result.rows : [result as Row]
      const series = !Array.isArray(result) && "series" in result ? result.series : []
      for (const row of rows) console.log(`${line(row)}  (${((performance.now() - t) / 1000).toFixed(1)} s)`)
      outcome.rows.push(...rows)
      outcome.series.push(...series)
    } catch (e) {
      outcome.error = `${outcome.error ?? ""}${id}: ${String((e as Error).stack ?? e)}\n`
    }
  }
  Fs.writeFileSync(file, JSON.stringify(outcome))
  process.exit(0)
}

/** The children: the registry's in-process cases share one; each case over HTTP has its own. */
const GROUPS: ReadonlyArray<ReadonlyArray<string>> = [["R1", "S8", "R3", "S7"], ["S1"], ["S9"]]

/**
 * The cases run in child processes (this script with `--case`): no case inherits another's heap,
 * threads or JIT state, and a crash of one (its exit code and signal are reported) does not end the run.
 */
const spawnCases = (ids: ReadonlyArray<string>): Promise<Outcome> =>
  new Promise((resolve) => {
    const file = Path.join(Os.tmpdir(), `su-bench-case-${process.pid}-${ids[0]}.json`)
    const childArgs = ["--import", "tsx", import.meta.filename, "--case", ids.join(","), "--result", file]
    if (quick) childArgs.push("--quick")
    const child = spawn(process.execPath, childArgs, { stdio: "inherit" })
    child.on("exit", (code, signal) => {
      try {
        resolve(JSON.parse(Fs.readFileSync(file, "utf8")) as Outcome)
      } catch {
        resolve({ rows: [], series: [], error: `the case's process ended (code ${code}, signal ${signal})` })
      } finally {
        Fs.rmSync(file, { force: true })
      }
    })
  })

const main = async () => {
  if (caseId !== undefined && resultFile !== undefined) return runCases(caseId.split(","), resultFile)
  const started = performance.now()
  console.log(`machine: ${machine()}`)
  console.log(`mode: ${quick ? "quick" : "full"}\n`)
  const rows: Array<Row> = []
  const series: Array<Series> = []
  for (const group of GROUPS) {
    const ids = group.filter((id) => only === undefined || only.has(id))
    if (ids.length === 0) continue
    const outcome = await spawnCases(ids)
    if (outcome.error !== undefined) console.log(`ERROR ${outcome.error}`)
    rows.push(...outcome.rows)
    series.push(...outcome.series)
  }
  const seconds = (performance.now() - started) / 1000
  console.log(
    `\n${rows.filter((r) => line(r).startsWith("PASS")).length}/${rows.filter((r) => !informative(r)).length} PASS in ${seconds.toFixed(1)} s`
  )
  for (const s of series) {
    console.log(`\n${s.title} (${s.x.name} → ${s.y.name}${s.y.unit === "" ? "" : `, ${s.y.unit}`})`)
    for (const p of s.points) console.log(`  ${p.line}: ${p.x.toLocaleString("en-US")} → ${fmt(p.y)}`)
  }
  const charts: Array<string> = []
  if (markdownFile !== undefined) {
    const dir = Path.join(Path.dirname(markdownFile), "charts")
    for (const s of series) {
      await draw(s, dir)
      Fs.writeFileSync(Path.join(dir, `${s.id}.json`), `${JSON.stringify(s, null, 2)}\n`)
      charts.push(`![${s.title}](charts/${s.id}.svg)`)
    }
  }
  const table = [
    `Machine: ${machine()}.`,
    "",
    `Command: \`npm run bench${quick ? " -- --quick" : ""}\` (${seconds.toFixed(0)} s, ${new Date().toISOString().slice(0, 10)}).`,
    "",
    markdown(rows),
    ...charts.flatMap((c) => ["", c])
  ].join("\n")
  if (markdownFile !== undefined) {
    const text = Fs.existsSync(markdownFile) ? Fs.readFileSync(markdownFile, "utf8") : ""
    const begin = text.indexOf("<!-- bench:begin -->")
    const end = text.indexOf("<!-- bench:end -->")
    if (begin >= 0 && end > begin) {
      Fs.writeFileSync(markdownFile, `${text.slice(0, begin)}<!-- bench:begin -->\n${table}\n${text.slice(end)}`)
      console.log(`table written to ${markdownFile}`)
    } else {
      console.log(`\n${table}`)
    }
  }
  process.exit(0)
}

void main()
