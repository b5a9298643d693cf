/**
 * The benchmark suite: each case against its baseline, measured in the same run, with its target.
 *
 * Usage: `npm run bench [-- --quick] [--markdown <file>] [--only 1,2,…]`
 * - `--quick`: shorter runs (the whole suite in under a minute), for a smoke check; figures are noisier.
 * - `--markdown <file>`: also writes the table (with the machine and command) between the
 *   `<!-- bench:begin -->` and `<!-- bench:end -->` markers of `<file>` (or prints it if the file has none).
 * - `--only`: the case numbers to run.
 *
 * Exits with 0 whatever the results: the table says PASS or FAIL per case. Not part of `npm test`.
 */
import * as Fs from "node:fs"
import { cases as http } from "./cases/http.js"
import { cases as registry } from "./cases/registry.js"
import { cases as sign } from "./cases/sign.js"
import { type CaseResult, line, machine, markdown, type Options, type Row } from "./lib.js"

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
  const run = async (id: string, f: () => Promise<CaseResult>) => {
    if (only !== undefined && !only.has(id)) return
    const t = performance.now()
    try {
      const result = await f()
      const caseRows = Array.isArray(result) ? result : "rows" in result ? result.rows : [result as Row]
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
  await run("5", () => sign.oneProcess(options))
  await run("6", () => sign.eightProcesses(options))
  await run("7", () => sign.durable(options))
  const case6 = rows.find((r) => r.id === "6")?.figure
  await run("8", () => http.postMessages(options, case6 ?? 500))
  await run("9", () => http.readPage(options))
  const seconds = (performance.now() - started) / 1000
  console.log(
    `\n${rows.filter((r) => line(r).startsWith("PASS")).length}/${rows.length} PASS in ${seconds.toFixed(1)} s`
  )
  const table = [
    `Machine: ${machine()}.`,
    "",
    `Command: \`npm run bench${quick ? " -- --quick" : ""}\` (${seconds.toFixed(0)} s, ${new Date().toISOString().slice(0, 10)}).`,
    "",
    markdown(rows)
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
