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
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { cases as http } from "./cases/http.js"
import { cases as registry } from "./cases/registry.js"
import { cases as sign } from "./cases/sign.js"
import { line, machine, markdown, type Options, type Row } from "./lib.js"

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const markdownAt = args.indexOf("--markdown")
const markdownFile = markdownAt >= 0 ? args[markdownAt + 1] : undefined
const onlyAt = args.indexOf("--only")
const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? "").split(",")) : undefined
const options: Options = { quick }

/** Case 4: one child process per measurement, with `--expose-gc`. */
const heap = async (): Promise<ReadonlyArray<Row>> => {
  // quick mode: 2,000 only (100,000 takes about a minute of starting schedulers and fibers)
  const counts = quick ? [2_000] : [10_000, 100_000]
  const measure = (kind: string, count: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const script = Path.join(import.meta.dirname, "heap-child.ts")
      const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", script, kind, String(count)], {
        stdio: ["ignore", "pipe", "inherit"]
      })
      let out = ""
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8")
      })
      child.once("error", reject)
      child.once("exit", () => {
        try {
          resolve((JSON.parse(out.trim().split("\n").at(-1) ?? "") as { bytesPerItem: number }).bytesPerItem)
        } catch (e) {
          reject(e)
        }
      })
    })
  const rows: Array<Row> = []
  for (const count of counts) {
    // separate processes, so the two can run at once
    const [scheduler, never] = (await Promise.all([measure("scheduler", count), measure("never", count)])).map(
      (bytes) => bytes / 1024
    ) as [number, number]
    rows.push({
      id: count === 10_000 ? "4a" : "4b",
      name: `retained heap per idle scheduler, ${count.toLocaleString("en-US")} schedulers`,
      unit: "KB",
      figure: scheduler,
      baseline: never,
      baselineName: "an idle `Effect.never` fiber in a `FiberSet`",
      target: undefined,
      absolute: { op: "<=", value: 4 }
    })
  }
  return rows
}

const main = async () => {
  const started = performance.now()
  console.log(`machine: ${machine()}`)
  console.log(`mode: ${quick ? "quick" : "full"}\n`)
  const rows: Array<Row> = []
  const run = async (id: string, f: () => Promise<Row | ReadonlyArray<Row>>) => {
    if (only !== undefined && !only.has(id)) return
    const t = performance.now()
    try {
      const result = await f()
      for (const row of Array.isArray(result) ? result : [result as Row]) {
        rows.push(row)
        console.log(`${line(row)}  (${((performance.now() - t) / 1000).toFixed(1)} s)`)
      }
    } catch (e) {
      console.log(`ERROR ${id}: ${(e as Error).stack ?? e}`)
    }
  }
  await run("1", () => registry.findHit(options))
  await run("2", () => registry.findCreate(options))
  await run("3", () => registry.hotId(options))
  await run("4", heap)
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
