/**
 * Cases 8–9: the node over loopback, with autocannon in this process and the node in a child process
 * (`bench/node-child.ts`: the same Layers as `Node.layer`, plus the `SignerPool`).
 *
 * 8. `POST /` of distinct signed Message data items for 8 processes, 50 connections, against case 6's rate.
 *    The items are built with `@dha-team/arbundles` `createData` for the client key and signed RSA-PSS (the
 *    signature `ArweaveSigner` makes) on a `SignerPool` of the client wallet, so that making thousands of them
 *    takes seconds, before the run.
 * 9. `GET /{processId}?limit=1000` on a 100,000-assignment SQLite schedule, one connection (a CU walking the
 *    schedule), random `from` cursors: p99 latency.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { createData, type Signer } from "@dha-team/arbundles"
import autocannon from "autocannon"
import { Effect, Layer } from "effect"
import {
  Assignment,
  type AssignmentSigner,
  initialHashChain,
  Message,
  nextHashChain,
  tags
} from "../../src/Assignment.js"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import * as SignerPool from "../../src/node/SignerPool.js"
import type { MessageId, ProcessId } from "../../src/ProcessId.js"
import * as SqliteStore from "../../src/sqlite/SqliteStore.js"
import * as Wallet from "../../src/Wallet.js"
import { BASE_TIMESTAMP, BLOCK_HEIGHT, randomMessageId } from "../../test/fixtures/assignments.js"
import { messageTags, processTags, randomAnchor } from "../../test/fixtures/dataItems.js"
import { clientJwk } from "../../test/fixtures/wallet.js"
import type { Options, Row } from "../lib.js"

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

/** Builds and signs a data item with `signer` (RSA-PSS SHA-256 of the ANS-104 deep hash, as ArweaveSigner). */
const signItem = (
  signer: AssignmentSigner,
  fields: { data: string; tags: ReadonlyArray<{ name: string; value: string }>; target?: string; anchor?: string }
) =>
  Effect.gen(function* () {
    const item = createData(fields.data, unsigned(signer.owner), {
      tags: [...fields.tags],
      ...(fields.target === undefined ? {} : { target: fields.target }),
      ...(fields.anchor === undefined ? {} : { anchor: fields.anchor })
    })
    const data = yield* Effect.promise(() => item.getSignatureData())
    const signature = yield* signer.sign(data)
    yield* Effect.promise(() => item.setSignature(Buffer.from(signature)))
    return { id: item.id, raw: new Uint8Array(item.getRaw()) }
  })

/** Runs `f` with a `SignerPool` of the client key. */
const withClientPool = <A, E>(f: (pool: SignerPool.SignerPool["Type"]) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(SignerPool.make(), f).pipe(Effect.provide(Layer.orDie(Wallet.layerJwk(clientJwk))), Effect.orDie)
    )
  )

/** Starts `bench/node-child.ts` on `store` and waits for its address. */
const startNode = async (store: string): Promise<{ url: string; address: string; child: ChildProcess }> => {
  // BENCH_PROFILE_DIR=<dir>: the node writes a CPU profile there when it stops (`node --cpu-prof`)
  const profile = process.env.BENCH_PROFILE_DIR
  const flags = profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]
  const script = Path.join(import.meta.dirname, "..", "node-child.ts")
  const child = spawn(process.execPath, [...flags, "--import", "tsx", script, store], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  const lines = Readline.createInterface({ input: child.stdout! })
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve)
    child.once("exit", (code) => reject(new Error(`node exited with ${code}`)))
  })
  lines.close()
  child.stdout!.resume()
  const { url, address } = JSON.parse(first) as { url: string; address: string }
  return { url, address, child }
}

const stopNode = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
    setTimeout(() => child.kill("SIGKILL"), 10_000).unref()
  })

const post = (url: string, body: Uint8Array) =>
  fetch(`${url}/`, { method: "POST", body, headers: { "content-type": "application/octet-stream" } }).then(
    async (r) => ({ status: r.status, text: await r.text() })
  )

/** Case 8. `expectedRate` (assignments/s, case 6's) sizes the pre-signed items for `seconds`. */
const postMessages = async (options: Options, baselineRate: number): Promise<Row> => {
  const seconds = options.quick ? 1 : 10
  const processes = 8
  const count = Math.ceil(Math.max(200, baselineRate) * seconds * 1.3)
  const node = await startNode("memory")
  try {
    const { spawned, messages } = await withClientPool((pool) =>
      Effect.gen(function* () {
        const spawned = yield* Effect.forEach(Array.from({ length: processes }), () =>
          signItem(pool, {
            data: "-- process source\nreturn 1",
            tags: processTags(node.address),
            anchor: randomAnchor()
          })
        )
        const messages = yield* Effect.forEach(
          Array.from({ length: count }, (_, i) => i),
          (i) =>
            signItem(pool, {
              data: `message ${i}`,
              tags: messageTags(),
              target: spawned[i % processes]!.id,
              anchor: randomAnchor()
            }),
          { concurrency: 16 }
        )
        return { spawned, messages }
      })
    )
    for (const p of spawned) {
      const r = await post(node.url, p.raw)
      if (r.status !== 200) throw new Error(`spawning a process: ${r.status} ${r.text}`)
    }
    // a short warm-up outside the timed run
    for (const m of messages.splice(0, 16)) await post(node.url, m.raw)
    let next = 0
    const result = await autocannon({
      url: node.url,
      connections: 50,
      amount: messages.length,
      duration: seconds * 3,
      requests: [
        {
          method: "POST",
          path: "/",
          headers: { "content-type": "application/octet-stream" },
          setupRequest: (request) => ({ ...request, body: Buffer.from(messages[next++ % messages.length]!.raw) })
        }
      ]
    })
    const ok = result["2xx"]
    const rate = ok / result.duration
    return {
      id: "8",
      name: `\`POST /\` over loopback, 50 connections, ${ok.toLocaleString("en-US")} distinct Message items to ${processes} processes (memory store, \`SignerPool\`)`,
      unit: "requests/s",
      figure: rate,
      baseline: baselineRate,
      baselineName: "case 6's rate",
      target: { op: ">=", ratio: 0.8 },
      notes: [
        `latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms; non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}`
      ],
      checks: [{ what: "every request 2xx", ok: result.non2xx === 0 && result.errors === 0 && ok > 0 }]
    }
  } finally {
    await stopNode(node.child)
  }
}

/** Assignments with real data item layout and random signatures (the read path does not verify them). */
const seed = async (file: string, rows: number): Promise<{ processId: ProcessId; timestamps: Array<number> }> => {
  const owner = Effect.runSync(Effect.orDie(Wallet.make(clientJwk))).owner
  const processId = Crypto.randomBytes(32).toString("base64url") as ProcessId
  const bodies = await Promise.all(
    Array.from({ length: 64 }, async (_, i) => {
      const item = createData(`message ${i}`, unsigned(owner), { tags: messageTags(), target: processId })
      await item.setSignature(Crypto.randomBytes(512))
      return new Uint8Array(item.getRaw())
    })
  )
  const timestamps: Array<number> = []
  const store = SqliteStore.layer({ filename: file, synchronous: "NORMAL", batchSize: 512 })
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const s = yield* AssignmentStore.AssignmentStore
        let hashChain = initialHashChain(processId)
        for (let from = 0; from < rows; from += 5_000) {
          const batch: Array<{ assignment: Assignment; message: Message }> = []
          for (let slot = from; slot < Math.min(rows, from + 5_000); slot++) {
            const messageId = (slot === 0 ? processId : randomMessageId()) as MessageId
            const fields = {
              processId,
              messageId,
              slot,
              epoch: 0,
              timestamp: BASE_TIMESTAMP + slot,
              blockHeight: BLOCK_HEIGHT,
              hashChain
            }
            const item = createData("", unsigned(owner), { tags: tags(fields) })
            yield* Effect.promise(() => item.setSignature(Crypto.randomBytes(512)))
            const assignment = new Assignment(
              { ...fields, id: item.id as MessageId, raw: new Uint8Array(item.getRaw()) },
              { disableValidation: true }
            )
            hashChain = nextHashChain(assignment.id, hashChain)
            timestamps.push(fields.timestamp)
            batch.push({ assignment, message: new Message({ id: messageId, raw: bodies[slot % bodies.length]! }) })
          }
          yield* Effect.forEach(batch, (r) => s.append(r.assignment, r.message), {
            concurrency: 1024,
            discard: true
          })
        }
      }).pipe(Effect.provide(Layer.orDie(store)))
    )
  )
  return { processId, timestamps }
}

/** Case 9. */
const readPage = async (options: Options): Promise<Row> => {
  // quick mode seeds 2,000 rows (seeding 100,000 takes half a minute or more)
  const rows = options.quick ? 2_000 : 100_000
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-bench-read-"))
  const file = Path.join(dir, "su.sqlite")
  try {
    const seededAt = performance.now()
    const { processId, timestamps } = await seed(file, rows)
    const seedSeconds = (performance.now() - seededAt) / 1000
    const node = await startNode(file)
    try {
      const paths = Array.from({ length: 64 }, (_, i) =>
        i === 0
          ? `/${processId}?limit=1000`
          : `/${processId}?limit=1000&from=${timestamps[Math.floor(Math.random() * (rows - 1_001))]}`
      )
      const first = await fetch(`${node.url}${paths[1]}`).then((r) => r.json() as Promise<{ edges: Array<unknown> }>)
      let next = 0
      const result = await autocannon({
        url: node.url,
        connections: 1,
        duration: options.quick ? 1 : 10,
        requests: [{ method: "GET", setupRequest: (request) => ({ ...request, path: paths[next++ % paths.length]! }) }]
      })
      return {
        id: "9",
        name: `\`GET /{processId}?limit=1000\` on a ${rows.toLocaleString("en-US")}-assignment SQLite schedule, 1 connection, random \`from\``,
        unit: "ms p99",
        figure: result.latency.p99,
        baseline: undefined,
        baselineName: "",
        target: undefined,
        absolute: { op: "<=", value: 50 },
        notes: [
          `p50 ${result.latency.p50} ms, mean ${result.latency.average} ms, ${result["2xx"]} pages (${result.non2xx} non-2xx); seeded in ${seedSeconds.toFixed(1)} s`
        ],
        checks: [{ what: "1,000 edges a page, all 2xx", ok: first.edges.length === 1000 && result.non2xx === 0 }]
      }
    } finally {
      await stopNode(node.child)
    }
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

export const cases = { postMessages, readPage }
