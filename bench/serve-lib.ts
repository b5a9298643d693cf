/**
 * What the S-cases over real HTTP share: the physical limit (raw RSA-PSS signing on one thread and on one thread
 * per core, the node's own key, measured in this run), the real node (`src/node/bin.ts serve` in a child process,
 * default flags plus the ones a case states), pre-signed client items (cached on disk between runs), and a load
 * run with autocannon.
 */
import { type ChildProcess, type StdioOptions, spawn } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Worker } from "node:worker_threads"
import autocannon from "autocannon"
import { messageTags, processTags } from "../test/fixtures/dataItems.js"
import { clientJwk, walletJwk } from "../test/fixtures/wallet.js"

const ROOT = Path.join(import.meta.dirname, "..")

/** The node's address (the fixture wallet's), which every cached spawn names as its `Scheduler`. */
export const nodeAddress = (): string =>
  Crypto.createHash("sha256").update(Buffer.from(walletJwk.n, "base64url")).digest("base64url")

// ---------------------------------------------------------------------------------------------------------------
// The physical limit

const RAW_WORKER = `
const { parentPort, workerData } = require("node:worker_threads")
const crypto = require("node:crypto")
const key = crypto.createPrivateKey({ key: workerData.jwk, format: "jwk" })
const data = crypto.randomBytes(48)
const opts = { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
for (let i = 0; i < 3; i++) crypto.sign("sha256", data, opts)
parentPort.once("message", (until) => {
  let n = 0
  const start = performance.now()
  while (performance.now() < until) { crypto.sign("sha256", data, opts); n++ }
  parentPort.postMessage(n / ((performance.now() - start) / 1000))
})`

/**
 * Raw `crypto.sign` RSA-PSS (SHA-256, salt 32) rate of the node's key, parsed once, over 48 bytes (a deep hash):
 * on `threads` worker threads at once for `ms`, in signatures/s summed over the threads.
 */
export const rawSignRate = async (threads: number, ms: number): Promise<number> => {
  const workers = Array.from(
    { length: threads },
    () => new Worker(RAW_WORKER, { eval: true, workerData: { jwk: walletJwk } })
  )
  try {
    await Promise.all(workers.map((w) => new Promise((resolve) => w.once("online", resolve))))
    const until = performance.timeOrigin + performance.now() + ms
    const rates = await Promise.all(
      workers.map(
        (w) =>
          new Promise<number>((resolve, reject) => {
            w.once("message", resolve)
            w.once("error", reject)
            // each worker's own clock: `until` is converted to its time origin
            w.postMessage(until - performance.timeOrigin)
          })
      )
    )
    return rates.reduce((a, b) => a + b, 0)
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Pre-signed client items

export interface Items {
  /** One `Type: Process` item per process, naming the node's address as its Scheduler. */
  readonly spawns: ReadonlyArray<Buffer>
  /** `messages[p]`: `Type: Message` items to process `p`. */
  readonly messages: ReadonlyArray<ReadonlyArray<Buffer>>
}

const CACHE = Path.join(Os.tmpdir(), "su-bench-items-v1")

/**
 * A signing process (`node -e`, so its arguments start at argv[1]): reads its jobs (JSON) from the file named by
 * argv[1], signs each with arbundles' `ArweaveSigner`, writes the items, each after its length (uint32 LE), to
 * argv[2]. Child processes, not worker
 * threads: arbundles loads native addons (keccak, secp256k1 prebuilds), and terminating a worker thread that
 * holds one corrupted the heap of the bench (SIGSEGV, "free(): invalid next size").
 */
const SIGNER = `
const fs = require("node:fs")
const { ArweaveSigner, createData } = require(process.env.ARBUNDLES)
const { jwk, jobs } = JSON.parse(fs.readFileSync(process.argv[1], "utf8"))
const signer = new ArweaveSigner(jwk)
;(async () => {
  const out = []
  for (const job of jobs) {
    const options = job.target === undefined ? { tags: job.tags, anchor: job.anchor } : { tags: job.tags, target: job.target, anchor: job.anchor }
    const item = createData(job.data, signer, options)
    await item.sign(signer)
    const raw = item.getRaw()
    const length = Buffer.alloc(4)
    length.writeUInt32LE(raw.length)
    out.push(length, raw)
  }
  fs.writeFileSync(process.argv[2], Buffer.concat(out))
})()`

interface Job {
  readonly data: string
  readonly tags: ReadonlyArray<{ name: string; value: string }>
  readonly target?: string | undefined
  readonly anchor: string
}

/** Items after their lengths (uint32 LE), as the cache files and the signing processes keep them. */
const framed = (bytes: Buffer): Array<Buffer> => {
  const out: Array<Buffer> = []
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUInt32LE(at)
    out.push(bytes.subarray(at + 4, at + 4 + length))
    at += 4 + length
  }
  return out
}

/** Signs `jobs` with the client key in one process per core (arbundles' `ArweaveSigner`, as aoconnect signs). */
const signAll = async (jobs: ReadonlyArray<Job>): Promise<Array<Buffer>> => {
  const arbundles = Path.join(ROOT, "node_modules", "@dha-team", "arbundles", "build", "node", "cjs", "index.js")
  const processes = Os.availableParallelism()
  const size = Math.ceil(jobs.length / processes)
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-bench-sign-"))
  try {
    const parts = await Promise.all(
      Array.from({ length: processes }, (_, i) => {
        const input = Path.join(dir, `jobs-${i}.json`)
        const output = Path.join(dir, `items-${i}`)
        Fs.writeFileSync(input, JSON.stringify({ jwk: clientJwk, jobs: jobs.slice(i * size, (i + 1) * size) }))
        return new Promise<Array<Buffer>>((resolve, reject) => {
          const child = spawn(process.execPath, ["-e", SIGNER, input, output], {
            stdio: ["ignore", "ignore", "inherit"],
            env: { ...process.env, ARBUNDLES: arbundles }
          })
          child.once("error", reject)
          child.once("exit", (code) =>
            code === 0
              ? resolve(framed(Fs.readFileSync(output)))
              : reject(new Error(`a signing process exited with ${code}`))
          )
        })
      })
    )
    return parts.flat()
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** The id of a signed raw item: sha256 of its signature (bytes 2–514 for signature type 1). */
export const itemId = (raw: Buffer): string =>
  Crypto.createHash("sha256").update(raw.subarray(2, 514)).digest("base64url")

const anchorOf = (p: number, i: number) =>
  Crypto.createHash("sha256").update(`${p}/${i}`).digest("base64url").slice(0, 32)

/**
 * `perProcess[p]` messages to each of `perProcess.length` processes, signed once and kept in the OS temp dir (the
 * items name the fixture wallet's address, so they fit every fresh node on that wallet). Grows the cache when a
 * run asks for more.
 */
export const items = async (perProcess: ReadonlyArray<number>): Promise<Items> => {
  const address = nodeAddress()
  const file = (name: string) => Path.join(CACHE, name)
  Fs.mkdirSync(CACHE, { recursive: true })
  const read = (name: string): Array<Buffer> => (Fs.existsSync(file(name)) ? framed(Fs.readFileSync(file(name))) : [])
  const write = (name: string, raws: ReadonlyArray<Buffer>) => {
    const parts = raws.flatMap((raw) => {
      const length = Buffer.alloc(4)
      length.writeUInt32LE(raw.length)
      return [length, raw]
    })
    Fs.appendFileSync(file(name), Buffer.concat(parts))
  }
  const spawns = read("spawns")
  if (spawns.length < perProcess.length) {
    const jobs: Array<Job> = []
    for (let p = spawns.length; p < perProcess.length; p++) {
      jobs.push({ data: `-- process ${p}\nreturn 1`, tags: processTags(address), anchor: anchorOf(p, -1) })
    }
    const signed = await signAll(jobs)
    write("spawns", signed)
    spawns.push(...signed)
  }
  const have = perProcess.map((_, p) => read(`p${p}`))
  const jobs: Array<Job & { p: number }> = []
  perProcess.forEach((want, p) => {
    const target = itemId(spawns[p]!)
    for (let i = have[p]!.length; i < want; i++) {
      jobs.push({ p, data: `message ${i}`, tags: messageTags(), target, anchor: anchorOf(p, i) })
    }
  })
  if (jobs.length > 0) {
    const signed = await signAll(jobs)
    const byProcess = new Map<number, Array<Buffer>>()
    jobs.forEach((job, i) => {
      const list = byProcess.get(job.p) ?? []
      list.push(signed[i]!)
      byProcess.set(job.p, list)
    })
    for (const [p, list] of byProcess) {
      write(`p${p}`, list)
      have[p]!.push(...list)
    }
  }
  return { spawns: spawns.slice(0, perProcess.length), messages: have.map((list, p) => list.slice(0, perProcess[p])) }
}

// ---------------------------------------------------------------------------------------------------------------
// The node

/**
 * Starts a server under load (`node` with `args`, from the repository's root) at a lower priority than this
 * process (nice 5, every thread of it), so that on a saturated machine autocannon's own waiting for a core does
 * not count as the server's latency. `BENCH_NO_NICE` (or no `/usr/bin/nice`) starts it at the same priority.
 */
const spawnServer = (args: ReadonlyArray<string>, stdio: StdioOptions): ChildProcess =>
  Fs.existsSync("/usr/bin/nice") && process.env.BENCH_NO_NICE === undefined
    ? spawn("/usr/bin/nice", ["-n", "5", process.execPath, ...args], { stdio, cwd: ROOT })
    : spawn(process.execPath, args, { stdio, cwd: ROOT })

export interface Node {
  readonly url: string
  readonly child: ChildProcess
  readonly dataDir: string
  /** Resident set of the node process, in bytes (`/proc/<pid>/status` VmRSS). */
  readonly rss: () => number
  /** OS threads of the node process (`/proc/<pid>/status` Threads). */
  readonly threads: () => number
  readonly stop: () => Promise<void>
}

const freePort = (): Promise<number> =>
  import("node:net").then(
    (Net) =>
      new Promise((resolve, reject) => {
        const server = Net.createServer()
        server.once("error", reject)
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
        })
      })
  )

/**
 * Starts `src/node/bin.ts serve` with default flags plus `flags`, on a fresh data dir holding the fixture wallet,
 * offline (`--gateway-url none`: no gateway is reachable here, and the POST path never asks one). Resolves once
 * `GET /health` answers 200. `BENCH_PROFILE_DIR` adds `--cpu-prof`.
 */
export const startNode = async (flags: ReadonlyArray<string> = []): Promise<Node> => {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-bench-node-"))
  Fs.writeFileSync(Path.join(dataDir, "wallet.json"), JSON.stringify(walletJwk), { mode: 0o600 })
  const port = await freePort()
  const profile = process.env.BENCH_PROFILE_DIR
  const prof = profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]
  const args = [...prof, "--import", "tsx", Path.join(ROOT, "src", "node", "bin.ts"), "serve"]
  args.push("--data-dir", dataDir, "--port", String(port), "--gateway-url", "none", ...flags)
  // BENCH_NODE_LOG: the node's stdout (its access log, one JSON line per request) goes to that file
  const log = process.env.BENCH_NODE_LOG
  const stdout = log === undefined ? "ignore" : Fs.openSync(log, "w")
  const child = spawnServer(args, ["ignore", stdout, "pipe"])
  let stderr = ""
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-4000)
  })
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the node exited with ${child.exitCode}: ${stderr}`)
    const ok = await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false
    )
    if (ok) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const stop = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        Fs.rmSync(dataDir, { recursive: true, force: true })
        resolve()
      }
      if (child.exitCode !== null) return done()
      child.once("exit", done)
      child.kill("SIGTERM")
      setTimeout(() => child.kill("SIGKILL"), 15_000).unref()
    })
  const status = (field: string) =>
    Number(new RegExp(`${field}:\\s+(\\d+)`).exec(Fs.readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0)
  const rss = () => status("VmRSS") * 1024
  const threads = () => status("Threads")
  return { url, child, dataDir, rss, threads, stop }
}

export const post = (url: string, body: Uint8Array): Promise<{ status: number; text: string }> =>
  fetch(`${url}/`, { method: "POST", body, headers: { "content-type": "application/octet-stream" } }).then(
    async (r) => ({ status: r.status, text: await r.text() })
  )

/** Spawns every process of `items` (in order, one request each). */
export const spawnAll = async (url: string, spawns: ReadonlyArray<Buffer>): Promise<void> => {
  for (let i = 0; i < spawns.length; i += 32) {
    const answers = await Promise.all(spawns.slice(i, i + 32).map((raw) => post(url, raw)))
    const bad = answers.find((a) => a.status !== 200)
    if (bad !== undefined) throw new Error(`spawning a process: ${bad.status} ${bad.text}`)
  }
}

export interface Load {
  readonly ok: number
  /** 2xx per second of the run. */
  readonly rate: number
  /** Latency (ms) of the answers on open connections: every answer but each connection's first. */
  readonly p50: number
  readonly p99: number
  readonly max: number
  /** Latency (ms) of each connection's first answer, which includes the wait to be accepted. */
  readonly firstP50: number
  readonly firstMax: number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
  readonly seconds: number
}

/** Interleaves the processes' messages (p0 m0, p1 m0, …, p0 m1, …), as concurrent clients would send them. */
export const interleave = (messages: ReadonlyArray<ReadonlyArray<Buffer>>): Array<Buffer> => {
  const out: Array<Buffer> = []
  const longest = Math.max(0, ...messages.map((m) => m.length))
  for (let i = 0; i < longest; i++) for (const list of messages) if (i < list.length) out.push(list[i]!)
  return out
}

/** The `q` quantile (0–1) of `values` (ms), rounded. */
const quantile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!)
}

/**
 * Posts every body once over `connections` keep-alive connections; the figures of the 2xx answers.
 *
 * - The time is from the start to the last answer: autocannon reports its result at its next 1-second tick, so
 *   its own `duration` runs up to a second past the last answer (a tenth of an 8-second run).
 * - The latencies are those of requests on open connections, as an MU's keep-alive pool sends them. Each
 *   connection's first request is reported apart (`firstP50`, `firstMax`): the load opens every connection at
 *   once, and a node whose CPU is saturated accepts them slowly (Node accepts about one connection per turn of
 *   its event loop; 200 connections opened at once on a busy node waited up to 5 s in the accept queue, a plain
 *   `node:http` server spending 3 ms per request included), so that wait would otherwise be counted as
 *   scheduling latency.
 */
export const load = (url: string, bodies: ReadonlyArray<Buffer>, connections: number): Promise<Load> =>
  new Promise((resolve, reject) => {
    let next = 0
    const started = performance.now()
    let last = started
    const answered = new Map<unknown, number>()
    const open: Array<number> = []
    const first: Array<number> = []
    const instance = autocannon(
      {
        url,
        connections,
        amount: bodies.length,
        timeout: 30,
        requests: [
          {
            method: "POST",
            path: "/",
            headers: { "content-type": "application/octet-stream" },
            setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length]! })
          }
        ]
      },
      (error, result) => {
        if (error !== null && error !== undefined) return reject(error)
        const ok = result["2xx"]
        const seconds = Math.max(0.001, (last - started) / 1000)
        // a short load may have no second answer on a connection: its latencies are then the first ones
        const steady = open.length > 0 ? open : first
        resolve({
          ok,
          rate: ok / seconds,
          p50: quantile(steady, 0.5),
          p99: quantile(steady, 0.99),
          max: quantile(steady, 1),
          firstP50: quantile(first, 0.5),
          firstMax: quantile(first, 1),
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          seconds
        })
      }
    )
    instance.on("response", (client: unknown, _status: number, _bytes: number, responseTime: number) => {
      last = performance.now()
      const count = answered.get(client) ?? 0
      answered.set(client, count + 1)
      ;(count === 0 ? first : open).push(responseTime)
    })
  })

/** What one request costs besides signing, measured on `floor-server.ts` (ms of CPU per request). */
export interface Floor {
  /** The minimal server: read, verify, answer. */
  readonly serverMs: number
  /** The load generator (autocannon, this process). */
  readonly clientMs: number
}

/**
 * Loads `floor-server.ts` with `bodies` over `connections`, as `load` loads the node (after a warm-up), and
 * returns the CPU per timed request of the server and of this process (autocannon). Run at nice 5 like the node.
 */
export const floor = async (bodies: ReadonlyArray<Buffer>, connections: number): Promise<Floor> => {
  const args = ["--import", "tsx", Path.join(ROOT, "bench", "floor-server.ts")]
  const child = spawnServer(args, ["ignore", "pipe", "inherit"])
  try {
    const port = await new Promise<string>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`the floor server exited with ${code}`)))
      child.stdout!.once("data", (chunk: Buffer) => resolve(chunk.toString("utf8").trim()))
    })
    const url = `http://127.0.0.1:${port}`
    const cpu = () => fetch(`${url}/cpu`).then((r) => r.json() as Promise<{ cpuMs: number; answered: number }>)
    // warm-up: the JIT and the connections' first requests, outside the measure
    await load(url, bodies.slice(0, Math.min(bodies.length, connections * 4)), connections)
    const server = await cpu()
    const client = process.cpuUsage()
    const timed = await load(url, bodies, connections)
    const used = process.cpuUsage(client)
    const clientMs = (used.user + used.system) / 1000
    const after = await cpu()
    if (timed.ok !== after.answered - server.answered) throw new Error("the floor server refused some items")
    return { serverMs: (after.cpuMs - server.cpuMs) / timed.ok, clientMs: clientMs / timed.ok }
  } finally {
    child.kill("SIGTERM")
  }
}
