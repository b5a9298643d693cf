/**
 * Case 8: the node over loopback, with autocannon in this process and the node in a child process
 * (`bench/node-child.ts`: the same Layers as `Node.layer`, plus the `SignerPool`).
 *
 * 8. `POST /` of distinct signed Message data items for 8 processes, 50 connections, against case 6's rate.
 *    The items are built with `@dha-team/arbundles` `createData` for the client key and signed RSA-PSS (the
 *    signature `ArweaveSigner` makes) on a `SignerPool` of the client wallet, so that making thousands of them
 *    takes seconds, before the run.
 *
 * The page read (`GET /{processId}?limit=1000`) is case S9 in `read.ts`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { createData, type Signer } from "@dha-team/arbundles"
import autocannon from "autocannon"
import { Effect, Layer } from "effect"
import type { AssignmentSigner } from "../../src/Assignment.js"
import * as SignerPool from "../../src/node/SignerPool.js"
import * as Wallet from "../../src/Wallet.js"
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

export const cases = { postMessages }
