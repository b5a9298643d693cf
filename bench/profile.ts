/**
 * Where a node's CPU goes under the S-case load: per-thread CPU per acknowledged request (from
 * `/proc/<pid>/task/<tid>/stat`, over the timed load only) and the main thread's self time by function and by
 * package (`--cpu-prof`).
 *
 * Usage: `npx tsx bench/profile.ts [--processes 8] [--connections 50] [--messages 3000] [-- <node flags>]`
 *
 * The figures are CPU, not wall time, so other load on the machine moves them little; the rate it prints is not a
 * benchmark figure (profiling slows the main thread).
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { interleave, load, items as signedItems, spawnAll, startNode } from "./serve-lib.js"

const args = process.argv.slice(2)
const dash = args.indexOf("--")
const own = dash >= 0 ? args.slice(0, dash) : args
const flags = dash >= 0 ? args.slice(dash + 1) : []
const option = (name: string, fallback: number) => {
  const at = own.indexOf(`--${name}`)
  return at >= 0 ? Number(own[at + 1]) : fallback
}
const processes = option("processes", 8)
const connections = option("connections", 50)
const messages = option("messages", 3_000)
const profiled = !own.includes("--no-profile")

const TICK_MS = 1000 / 100 // USER_HZ

/** CPU (ms) of each thread of `pid`, by thread name and id. */
const threadCpu = (pid: number): Map<string, number> => {
  const out = new Map<string, number>()
  for (const tid of Fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = Fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      out.set(`${name}#${tid}`, (Number(fields[11]) + Number(fields[12])) * TICK_MS)
    } catch {
      // the thread ended
    }
  }
  return out
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}

/** Self time (ms) by function and by package of a `.cpuprofile`. */
const summarise = (file: string) => {
  const profile = JSON.parse(Fs.readFileSync(file, "utf8")) as {
    nodes: Array<ProfileNode>
    samples: Array<number>
    timeDeltas: Array<number>
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const fn = new Map<string, number>()
  const pkg = new Map<string, number>()
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame
    const ms = (profile.timeDeltas[i] ?? 0) / 1000
    const url = frame.url.replace(/^file:\/\//, "")
    const module = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1]
    const where = module ?? (url.includes("/src/") ? `src/${url.split("/src/")[1]}` : url || "(native)")
    const group = module ?? (url.includes("/src/") ? "this library" : url.startsWith("node:") ? "node" : "(native)")
    const key = `${frame.functionName || "(anonymous)"} ${Path.basename(where)}:${frame.lineNumber + 1}`
    fn.set(key, (fn.get(key) ?? 0) + ms)
    pkg.set(group, (pkg.get(group) ?? 0) + ms)
  })
  return { fn, pkg }
}

const top = (map: Map<string, number>, n: number, total: number) =>
  [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`)
    .join("\n")

const main = async () => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-profile-"))
  if (profiled) process.env.BENCH_PROFILE_DIR = dir
  const per = Math.ceil(messages / processes) + 2
  const { spawns, messages: items } = await signedItems(Array.from({ length: processes }, () => per))
  const node = await startNode(flags)
  await spawnAll(node.url, spawns)
  await load(node.url, interleave(items.map((m) => m.slice(0, 2))), Math.min(connections, processes * 2))
  const pid = node.child.pid!
  const before = threadCpu(pid)
  const result = await load(node.url, interleave(items.map((m) => m.slice(2))), connections)
  const after = threadCpu(pid)
  await node.stop()
  console.log(
    `${result.ok} acknowledged at ${result.rate.toFixed(0)}/s (p50 ${result.p50} ms, p99 ${result.p99} ms; first answers p50 ${result.firstP50} ms, max ${result.firstMax} ms)`
  )
  console.log(`flags: ${flags.join(" ") || "(defaults)"}; ${processes} processes, ${connections} connections`)
  console.log("CPU per acknowledged request, by thread:")
  // every thread is named "node" or after its libuv/V8 role; the main thread's id is the process's
  const groups = new Map<string, number>()
  for (const [thread, ms] of after) {
    const [name, tid] = thread.split("#")
    const label =
      tid === String(pid)
        ? "main thread"
        : ms - (before.get(thread) ?? 0) > 0.05 * (after.get(`${name}#${pid}`) ?? 1)
          ? `${name} ${tid}`
          : `${name} (others)`
    groups.set(label, (groups.get(label) ?? 0) + ms - (before.get(thread) ?? 0))
  }
  for (const [name, ms] of [...groups].sort((a, b) => b[1] - a[1])) {
    if (ms > 0) console.log(`  ${(ms / result.ok).toFixed(3).padStart(7)} ms  ${name}`)
  }
  const total = [...groups.values()].reduce((a, b) => a + b, 0)
  console.log(`  ${(total / result.ok).toFixed(3).padStart(7)} ms  all threads`)
  if (!profiled) return
  const file = Fs.readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))
  if (file === undefined) return console.log("no profile was written")
  const { fn, pkg } = summarise(Path.join(dir, file))
  const sum = [...pkg.values()].reduce((a, b) => a + b, 0)
  console.log(`\nmain thread self time, whole run (${(sum / 1000).toFixed(1)} s sampled), by package:`)
  console.log(top(pkg, 12, sum))
  console.log("by function:")
  console.log(top(fn, 40, sum))
  console.log(`\nprofile: ${Path.join(dir, file)}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
