/**
 * Case S9 and the chart "page read time vs schedule length": `GET /{processId}?limit=1000` with random `from`
 * cursors over real HTTP (4 keep-alive connections, `readPages`), against the real node (`src/node/bin.ts serve`,
 * default flags, offline, SQLite store), whose store is seeded before it starts with one process per schedule
 * length: 10k, 100k and 1M assignments in the full run (S9 is the 100k one), 10k and 30k in quick mode.
 *
 * Seeding writes the rows straight into the store's file, in one transaction, with the columns and the node JSON
 * read model that the store's `append` writes (`src/sql/internal/append.ts`), after the store's own migrations
 * have created the schema. Assignments are laid out as arbundles' `createData` lays them out, with their real
 * tags and a random signature (the read path verifies nothing; ids and hash chains follow from the signatures);
 * messages are 64 data items reused, each row with its own message id. A row is about 8.6 KB on disk.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import { createRequire } from "node:module"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { createData, type Signer } from "@dha-team/arbundles"
import { Effect, Layer } from "effect"
import { type Assignment, initialHashChain, nextHashChain, tags } from "../../src/Assignment.js"
import { assignmentJsonText, messageJsonText } from "../../src/internal/wire-format.js"
import * as SqliteStore from "../../src/sqlite/SqliteStore.js"
import * as Wallet from "../../src/Wallet.js"
import { messageTags } from "../../test/fixtures/dataItems.js"
import { clientJwk, walletJwk } from "../../test/fixtures/wallet.js"
import { type CaseResult, fmt, type Options, type Row, type Series } from "../lib.js"

/** The few calls of better-sqlite3 (the driver under `@effect/sql-sqlite-node`, which ships no types) used here. */
interface Db {
  pragma(source: string): unknown
  prepare(source: string): { run(...params: ReadonlyArray<unknown>): unknown }
  exec(source: string): unknown
  transaction(f: () => void): () => void
  close(): void
}
const Database = createRequire(import.meta.url)("better-sqlite3") as new (file: string) => Db

const BASE_TIMESTAMP = 1_719_830_000_000
const BLOCK_HEIGHT = 1_500_000
const PAGE = 1000

/** A signer whose key only `createData` reads (owner and lengths); the signature is set afterwards. */
const unsigned = (owner: Uint8Array): Signer =>
  ({
    publicKey: Buffer.from(owner),
    signatureType: 1,
    signatureLength: Wallet.SIGNATURE_LENGTH,
    ownerLength: Wallet.SIGNATURE_LENGTH,
    sign: () => {
      throw new Error("unreachable")
    }
  }) as unknown as Signer

const INSERT = `INSERT INTO assignments (process_id, slot, epoch, timestamp, block_height, hash_chain, assignment_id,
  message_id, assignment, message, node_json, exclude) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`

/** Where the per-slot tag values sit in an assignment laid out by `createData`, for one width of the slot number. */
interface Template {
  readonly raw: Buffer
  readonly at: { readonly [K in "slot" | "timestamp" | "hashChain" | "messageId"]: number }
}

/**
 * `createData("", owner, { tags: tags(fields) }).getRaw()` (with a zero signature) without laying out each item
 * again: one item per process and width of the slot number, with its four per-slot tag values patched in place.
 * The first item of each template is checked against `createData`'s.
 */
const layouts = (owner: Buffer, epoch: number, blockHeight: number) => {
  const templates = new Map<number, Template>()
  const make = (fields: Parameters<typeof tags>[0]): Template => {
    const marks = {
      slot: "!".repeat(String(fields.slot).length),
      timestamp: "#".repeat(String(fields.timestamp).length),
      hashChain: "$".repeat(fields.hashChain.length),
      messageId: "%".repeat(fields.messageId.length)
    }
    const marked = tags(fields).map((tag) =>
      tag.name === "Nonce"
        ? { ...tag, value: marks.slot }
        : tag.name === "Timestamp"
          ? { ...tag, value: marks.timestamp }
          : tag.name === "Hash-Chain"
            ? { ...tag, value: marks.hashChain }
            : tag.name === "Message"
              ? { ...tag, value: marks.messageId }
              : tag
    )
    const raw = createData("", unsigned(owner), { tags: marked }).getRaw()
    const find = (mark: string) => raw.indexOf(mark, 2 + 2 * Wallet.SIGNATURE_LENGTH, "latin1")
    return {
      raw,
      at: {
        slot: find(marks.slot),
        timestamp: find(marks.timestamp),
        hashChain: find(marks.hashChain),
        messageId: find(marks.messageId)
      }
    }
  }
  return (fields: Parameters<typeof tags>[0]): Buffer => {
    if (fields.epoch !== epoch || fields.blockHeight !== blockHeight) throw new Error("one epoch and height only")
    const key = String(fields.slot).length * 100 + String(fields.timestamp).length
    let template = templates.get(key)
    const fresh = template === undefined
    if (template === undefined) {
      template = make(fields)
      templates.set(key, template)
    }
    const raw = Buffer.from(template.raw)
    raw.write(String(fields.slot), template.at.slot, "latin1")
    raw.write(String(fields.timestamp), template.at.timestamp, "latin1")
    raw.write(fields.hashChain, template.at.hashChain, "latin1")
    raw.write(fields.messageId, template.at.messageId, "latin1")
    if (fresh && !raw.equals(createData("", unsigned(owner), { tags: tags(fields) }).getRaw())) {
      throw new Error("the assignment template does not lay out as createData")
    }
    return raw
  }
}

/**
 * Writes one process of `rows` assignments per entry of `lengths` into the SQLite store `file` (created and
 * migrated by the store itself first). Slot s has timestamp `BASE_TIMESTAMP + s`. Returns the process ids.
 */
export const seed = async (file: string, lengths: ReadonlyArray<number>): Promise<Array<string>> => {
  // the schema, by the store's own migrations
  await Effect.runPromise(Effect.scoped(Layer.build(Layer.orDie(SqliteStore.layer({ filename: file })))))
  const suOwner = Buffer.from(Effect.runSync(Effect.orDie(Wallet.make(walletJwk))).owner)
  const clientOwner = Effect.runSync(Effect.orDie(Wallet.make(clientJwk))).owner
  const db = new Database(file)
  try {
    // out of WAL, so the rows go straight to the file (the node turns WAL on again when it opens it)
    db.pragma("journal_mode = DELETE")
    db.pragma("synchronous = OFF")
    // the unique indexes on ids (random keys, ~400 bytes a row together) stay in memory instead of being spilled
    // and read back per row; no larger, which slowed small seeds down
    const rowsInAll = lengths.reduce((a, b) => a + b, 0)
    db.pragma(`cache_size = -${Math.max(2_000, Math.ceil((rowsInAll * 400) / 1024))}`)
    // the plain indexes are built once at the end (a sort), as the store's migrations define them
    const indexes = (
      db.prepare(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'assignments' AND sql IS NOT NULL"
      ) as unknown as { all(): Array<{ name: string; sql: string }> }
    ).all()
    for (const index of indexes) db.exec(`DROP INDEX ${index.name}`)
    const insert = db.prepare(INSERT)
    const insertProcess = db.prepare("INSERT INTO processes (process_id, first_timestamp) VALUES (?, ?)")
    const ids: Array<string> = []
    db.transaction(() => {
      for (const rows of lengths) {
        const processId = Crypto.randomBytes(32).toString("base64url")
        ids.push(processId)
        // 64 message bodies; the JSON of each after its id, so a row's message JSON is its id and that text
        const bodies = Array.from({ length: 64 }, (_, i) => {
          const item = createData(`message ${i}`, unsigned(clientOwner), { tags: messageTags(), target: processId })
          item.getRaw().set(Crypto.randomBytes(Wallet.SIGNATURE_LENGTH), 2)
          const raw = new Uint8Array(item.getRaw())
          const json = messageJsonText(raw, {}, "")
          return { raw, rest: json.slice('{"id":"'.length) }
        })
        insertProcess.run(processId, BASE_TIMESTAMP)
        const layout = layouts(suOwner, 0, BLOCK_HEIGHT)
        let hashChain = initialHashChain(processId)
        const random = Crypto.randomBytes(4096 * (Wallet.SIGNATURE_LENGTH + 32))
        for (let slot = 0; slot < rows; slot++) {
          const at = (slot % 4096) * (Wallet.SIGNATURE_LENGTH + 32)
          if (slot > 0 && at === 0) Crypto.randomFillSync(random)
          const messageId = slot === 0 ? processId : random.toString("base64url", at, at + 32)
          const fields = {
            processId,
            messageId,
            slot,
            epoch: 0,
            timestamp: BASE_TIMESTAMP + slot,
            blockHeight: BLOCK_HEIGHT,
            hashChain
          }
          const raw = layout(fields)
          const signature = random.subarray(at + 32, at + 32 + Wallet.SIGNATURE_LENGTH)
          raw.set(signature, 2)
          const id = Crypto.createHash("sha256").update(signature).digest("base64url")
          const body = bodies[slot % bodies.length]!
          const assignment = { ...fields, id, raw } as unknown as Assignment
          const nodeJson = `{"message":{"id":"${messageId}${body.rest},"assignment":${assignmentJsonText(assignment)}}`
          insert.run(
            processId,
            slot,
            fields.timestamp,
            BLOCK_HEIGHT,
            hashChain,
            id,
            messageId,
            raw,
            body.raw,
            Buffer.from(nodeJson, "utf8")
          )
          hashChain = nextHashChain(id, hashChain)
        }
      }
    })()
    for (const index of indexes) db.exec(index.sql)
    db.pragma("journal_mode = WAL")
    return ids
  } finally {
    db.close()
  }
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as Net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })

/**
 * Starts `src/node/bin.ts serve` on `dataDir` (its `su.sqlite`, the fixture wallet), offline, and waits until
 * it answers. `BENCH_PROFILE_DIR=<dir>`: the node writes a CPU profile there when it stops (`--cpu-prof`).
 */
export const startNode = async (dataDir: string): Promise<{ url: string; child: ChildProcess }> => {
  Fs.writeFileSync(Path.join(dataDir, "wallet.json"), JSON.stringify(walletJwk), { mode: 0o600 })
  const port = await freePort()
  const profile = process.env.BENCH_PROFILE_DIR
  const flags = profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]
  const bin = Path.join(import.meta.dirname, "..", "..", "src", "node", "bin.ts")
  const args = ["serve", "--data-dir", dataDir, "--port", String(port), "--gateway-url", "none"]
  const child = spawn(process.execPath, [...flags, "--import", "tsx", bin, ...args], {
    stdio: ["ignore", "ignore", "inherit"]
  })
  const url = `http://127.0.0.1:${port}`
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`node exited with ${code}`)))
  )
  exited.catch(() => {})
  for (let i = 0; ; i++) {
    const ok = await Promise.race([
      fetch(`${url}/`).then(
        (r) => r.ok,
        () => false
      ),
      exited
    ])
    if (ok) return { url, child }
    if (i > 600) throw new Error("the node did not start")
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export const stopNode = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
    setTimeout(() => child.kill("SIGKILL"), 10_000).unref()
  })

interface Reads {
  readonly p50: number
  readonly p99: number
  readonly pages: number
  readonly non2xx: number
  readonly errors: number
  readonly edges: number
}

/**
 * `connections` keep-alive connections (Node's `http`, its native parser), each reading 1,000-edge pages of
 * `processId` (of `rows` slots) from random `from`s one after the other for `seconds`; the latency of a page is
 * from sending its request to its body's last byte. Not autocannon: its JavaScript HTTP parser could not keep
 * up with 4 MB pages on 4 connections (the node sat idle a fifth of the run, waiting for it to read).
 */
export const readPages = async (
  url: string,
  processId: string,
  rows: number,
  connections: number,
  seconds: number
): Promise<Reads> => {
  const path = () => `/${processId}?limit=${PAGE}&from=${BASE_TIMESTAMP + Math.floor(Math.random() * (rows - PAGE))}`
  const first = (await fetch(`${url}${path()}`).then((r) => r.json())) as { edges: Array<unknown> }
  const agent = new Http.Agent({ keepAlive: true, maxSockets: connections })
  const latencies: Array<number> = []
  let non2xx = 0
  let errors = 0
  // one request at a time per connection; the time from sending it to the body's last byte
  const get = (at: string) =>
    new Promise<void>((resolve) => {
      const started = performance.now()
      const request = Http.get(`${url}${at}`, { agent, timeout: 10_000 }, (response) => {
        response.on("data", () => {})
        response.on("end", () => {
          latencies.push(performance.now() - started)
          if ((response.statusCode ?? 0) >= 300) non2xx++
          resolve()
        })
        response.on("error", () => {
          errors++
          resolve()
        })
      })
      request.on("timeout", () => request.destroy(new Error("timeout")))
      request.on("error", () => {
        errors++
        resolve()
      })
    })
  const end = performance.now() + seconds * 1000
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < end) await get(path())
      })
    )
  } finally {
    agent.destroy()
  }
  latencies.sort((a, b) => a - b)
  const quantile = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN
  return {
    p50: quantile(0.5),
    p99: quantile(0.99),
    pages: latencies.length - non2xx,
    non2xx,
    errors,
    edges: first.edges.length
  }
}

/** Case S9 and the series "page-read-vs-length". */
const readPage = async (options: Options): Promise<CaseResult> => {
  // quick: 30,000 stands for 100,000 (seeding 1.1M rows of 8.6 KB takes one to three minutes; 40k, a few seconds)
  const lengths = options.quick ? [10_000, 30_000] : [10_000, 100_000, 1_000_000]
  const s9Length = options.quick ? 30_000 : 100_000
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-bench-read-"))
  try {
    const seededAt = performance.now()
    const ids = await seed(Path.join(dir, "su.sqlite"), lengths)
    const seedSeconds = (performance.now() - seededAt) / 1000
    const node = await startNode(dir)
    try {
      const at = (length: number) => ids[lengths.indexOf(length)]!
      // warm-up outside the timed runs
      await readPages(node.url, at(s9Length), s9Length, 4, options.quick ? 0.5 : 1)
      const one = await readPages(node.url, at(s9Length), s9Length, 1, options.quick ? 1 : 4)
      const four = await readPages(node.url, at(s9Length), s9Length, 4, options.quick ? 1.5 : 8)
      const points: Array<{ x: number; y: number; line: string }> = []
      const all = [one, four]
      for (const length of lengths) {
        const r = length === s9Length ? four : await readPages(node.url, at(length), length, 4, options.quick ? 1 : 4)
        all.push(r)
        const ms = (x: number) => Math.round(x * 10) / 10
        points.push({ x: length, y: ms(r.p50), line: "p50" }, { x: length, y: ms(r.p99), line: "p99" })
      }
      const row: Row = {
        id: "S9",
        name: `\`GET /{processId}?limit=1000\` on a ${s9Length.toLocaleString("en-US")}-assignment SQLite schedule, 4 connections, random \`from\` (the node: \`bin.ts serve\`)`,
        unit: "ms p99",
        figure: Math.round(four.p99 * 10) / 10,
        baseline: undefined,
        baselineName: "",
        target: undefined,
        absolute: { op: "<=", value: 50 },
        notes: [
          `4 connections: p50 ${fmt(four.p50)} ms, ${four.pages} pages; 1 connection: p50 ${fmt(one.p50)} ms, p99 ${fmt(one.p99)} ms, ${one.pages} pages`,
          `seeded ${lengths.map((n) => n.toLocaleString("en-US")).join(" + ")} assignments in ${seedSeconds.toFixed(1)} s`
        ],
        checks: [
          {
            what: "1,000 edges a page, all 2xx",
            ok: all.every((r) => r.edges === PAGE && r.non2xx === 0 && r.errors === 0 && r.pages > 0)
          }
        ]
      }
      const series: Series = {
        id: "page-read-vs-length",
        title: "`GET ?limit=1000` page read time against schedule length (4 connections, random `from`)",
        x: { name: "assignments in the schedule", log: true },
        y: { name: "page read time", unit: "ms" },
        points
      }
      return { rows: [row], series: [series] }
    } finally {
      await stopNode(node.child)
    }
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

export const cases = { readPage }
