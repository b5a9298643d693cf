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
 * Exits with 0 whatever the results: the table says PASS or FAIL per case. Not part of `npm test`.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { cases as read } from "./cases/read.js"
import { cases as registry } from "./cases/registry.js"
import { cases as serve } from "./cases/serve.js"
import { draw } from "./chart.js"
import { type CaseResult, fmt, line, machine, markdown, type Options, type Row, type Series } from "./lib.js"

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const markdownAt = args.indexOf("--markdown")
const markdownFile = markdownAt >= 0 ? args[markdownAt + 1] : undefined
const onlyAt = args.indexOf("--only")
const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? "").split(",")) : undefined
const options: Options = { quick }

const main = async () => {
  const started = performance.now()
  console.log(`machine: ${machine()}`)
  console.log(`mode: ${quick ? "quick" : "full"}\n`)
  const rows: Array<Row> = []
  const series: Array<Series> = []
  const run = async (id: string, f: () => Promise<CaseResult>) => {
    if (only !== undefined && !only.has(id)) return
    const t = performance.now()
    try {
      const result = await f()
      const caseRows = Array.isArray(result) ? result : "rows" in result ? result.rows : [result as Row]
      if (!Array.isArray(result) && "series" in result) series.push(...result.series)
      for (const row of caseRows) {
        rows.push(row)
        console.log(`${line(row)}  (${((performance.now() - t) / 1000).toFixed(1)} s)`)
      }
    } catch (e) {
      console.log(`ERROR ${id}: ${(e as Error).stack ?? e}`)
    }
  }
  await run("R1", () => registry.findHit(options))
  await run("S8", () => registry.findCreate(options))
  await run("R3", () => registry.hotId(options))
  await run("S7", () => registry.heap(options))
  await run("S1", () => serve.serve(options))
  await run("S9", () => read.readPage(options))
  const seconds = (performance.now() - started) / 1000
  console.log(
    `\n${rows.filter((r) => line(r).startsWith("PASS")).length}/${rows.length} PASS in ${seconds.toFixed(1)} s`
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
