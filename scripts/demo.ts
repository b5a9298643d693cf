/**
 * `npm run demo [-- --messages <n>] [--client-wallet <jwk file>]`, or `npm run demo -- --url <su url>`
 *
 * With no `--url` (and no `SU_URL`), the whole path on this machine: it starts a local Arweave gateway and
 * bundler (the project's protocol-faithful test double, at block height 1,600,000), and a node on a temporary
 * SQLite store that is online on that gateway, uploads to that bundler (`--upload-url`) and publishes its
 * Scheduler-Location (`--public-url`). Then, as aoconnect, the MU and the CU would:
 * 1. it signs a Process (Scheduler = the node's address) and `n` Messages (default 10) and POSTs them;
 * 2. it waits until the bundler holds every message and every assignment (the node's outbox drained);
 * 3. it locates the process's SU with the real `@permaweb/ao-scheduler-utils` (`locate`), from the record the
 *    node published;
 * 4. it loads the process (`GET /processes/{id}`) and checks its block height is the gateway's (at least
 *    1,440,000, where the CU validates hash chains), then pages the schedule back 3 entries a page, verifies every
 *    assignment's signature and the hash chain as the CU does, and prints the schedule.
 *
 * With `--url` (or `SU_URL`) it talks to that running SU instead and does steps 1 and 4 only.
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { parseArgs } from "node:util"
import { ArweaveSigner, createData } from "@dha-team/arbundles"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Logger, LogLevel, Schedule } from "effect"
import * as Node from "../src/node/Node.js"
import * as Wallet from "../src/Wallet.js"
import { startArweaveDouble } from "../test/fixtures/arweave/index.js"
import * as Client from "../test/fixtures/client.js"
import { hashChain } from "../test/fixtures/cu-hash-chain.js"
import { connectTo, withRouterStub } from "../test/fixtures/scheduler-utils.js"

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    messages: { type: "string", default: "10" },
    "client-wallet": { type: "string" }
  }
})
const remote = values.url ?? (process.env.SU_URL === "" ? undefined : process.env.SU_URL)
const count = Number(values.messages)
/** The block height the local gateway starts at: above 1,440,000, where the CU checks hash chains. */
const START_HEIGHT = 1_600_000

const fail = (url: string, reason: string) => new Client.ClientError({ url, reason })

const post = (url: string, body: Uint8Array) =>
  Effect.tryPromise({
    try: async () => {
      const res = await fetch(`${url}/`, {
        method: "POST",
        body,
        headers: { "content-type": "application/octet-stream", accept: "application/json" }
      })
      const json = (await res.json()) as { id?: string; timestamp?: number; error?: string }
      if (res.status !== 200) throw new Error(`POST / → ${res.status} ${json.error ?? ""}`)
      return json as { id: string; timestamp: number }
    },
    catch: (e) => fail(url, (e as Error).message)
  })

const sign = (
  signer: ArweaveSigner,
  fields: { data: string; tags: Array<{ name: string; value: string }>; target?: string }
) =>
  Effect.promise(async () => {
    const item = createData(fields.data, signer, {
      tags: fields.tags,
      ...(fields.target === undefined ? {} : { target: fields.target })
    })
    await item.sign(signer)
    return item
  })

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const line = (r: ReadonlyArray<string>) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ")
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n")
}

/** Step 1: a Process and `count` Messages, signed as aoconnect signs them, posted to the SU. */
const spawnAndSend = (url: string) =>
  Effect.gen(function* () {
    const info = (yield* Client.getJson(`${url}/`)) as { address: string }
    yield* Console.log(`SU ${url}, wallet address ${info.address}`)
    const jwk =
      values["client-wallet"] === undefined
        ? yield* Wallet.generateJwk
        : (JSON.parse(Fs.readFileSync(values["client-wallet"], "utf8")) as Wallet.ArweaveJwk)
    const signer = new ArweaveSigner(jwk)
    const protocol = [
      { name: "Data-Protocol", value: "ao" },
      { name: "Variant", value: "ao.TN.1" }
    ]
    const spawned = yield* sign(signer, {
      data: "-- demo process",
      tags: [
        ...protocol,
        { name: "Type", value: "Process" },
        { name: "Scheduler", value: info.address },
        { name: "Module", value: "Do_Uc2Sju_ffp6Ev0AnLVdPtot15rvMjP-a9VVaA5fM" },
        { name: "SDK", value: "aoconnect" }
      ]
    })
    yield* post(url, spawned.getRaw())
    yield* Console.log(`spawned process ${spawned.id}`)
    const messages: Array<string> = []
    for (let n = 1; n <= count; n++) {
      const message = yield* sign(signer, {
        data: `demo message ${n}`,
        target: spawned.id,
        tags: [...protocol, { name: "Type", value: "Message" }, { name: "Action", value: "Eval" }]
      })
      yield* post(url, message.getRaw())
      messages.push(message.id)
    }
    yield* Console.log(`sent ${count} messages`)
    return { processId: spawned.id, address: info.address, messages }
  })

/** Step 4: the process's block height as the CU reads it, then the schedule paged, verified and printed. */
const verifyAsCu = (url: string, processId: string, minHeight: number) =>
  Effect.gen(function* () {
    // the CU's loadProcess: `block` is the 12-digit zero-padded height, read with parseInt
    const loaded = (yield* Client.getJson(`${url}/processes/${processId}`)) as { block: string }
    const height = Number.parseInt(loaded.block, 10)
    yield* Console.log(
      `the process's block height is ${height}: the CU ${height >= 1_440_000 ? "validates" : "does NOT validate"} its hash chain`
    )
    if (!(height >= minHeight)) return yield* Effect.fail(fail(url, `block height ${height} is below ${minHeight}`))

    const { edges, pages } = yield* Client.walkSchedule(url, processId, { limit: 3 })
    yield* Console.log(`read ${edges.length} entries in ${pages} pages of at most 3\n`)
    const rows: Array<Array<string>> = [
      ["nonce", "timestamp", "message id", "assignment id", "signature", "hash chain"]
    ]
    let previous: { chain: string; id: string } | undefined
    let chainOk = true
    for (const edge of edges) {
      const problem = yield* Client.verifyAssignmentJson(edge.node.assignment)
      // the CU's own check (servers/cu `hashChain(prevHashChain, prevAssignmentId)`), from the process id on
      const expected = previous === undefined ? hashChain(processId) : hashChain(previous.chain, previous.id)
      const chain = Client.assignmentTag(edge.node, "Hash-Chain") ?? ""
      const linkOk: boolean = chainOk && chain === expected
      chainOk = linkOk
      previous = { chain, id: edge.node.assignment.id }
      rows.push([
        Client.assignmentTag(edge.node, "Nonce") ?? "?",
        Client.assignmentTag(edge.node, "Timestamp") ?? "?",
        edge.node.message?.id ?? `${Client.assignmentTag(edge.node, "Message")} (assigned)`,
        edge.node.assignment.id,
        problem ?? "ok",
        linkOk ? "ok" : "BROKEN"
      ])
    }
    yield* Console.log(table(rows))
    const ok = chainOk && rows.slice(1).every((r) => r[4] === "ok")
    yield* Console.log(`\n${ok ? "all assignments verify and the hash chain holds" : "VERIFICATION FAILED"}`)
    if (!ok) return yield* Effect.fail(fail(url, "verification failed"))
    return edges
  })

/** A free TCP port on 127.0.0.1 (the node's public URL must be known before it starts). */
const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Steps 1–4 on a local gateway and bundler, with a node started here. */
const fullPath = Effect.gen(function* () {
  const ar = yield* Effect.acquireRelease(
    Effect.promise(() => startArweaveDouble({ startHeight: START_HEIGHT })),
    (double) => Effect.promise(() => double.close())
  )
  yield* Console.log(`local Arweave gateway and bundler at ${ar.url}, block height ${ar.height}`)
  const dataDir = yield* Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-demo-"))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )
  const port = yield* freePort
  const publicUrl = `http://127.0.0.1:${port}`
  const node = yield* Node.start({
    port,
    host: "127.0.0.1",
    dataDir,
    walletPath: Path.join(dataDir, "wallet.json"),
    store: { kind: "sqlite", filename: Path.join(dataDir, "su.sqlite") },
    mode: "local_confirmation",
    bodyLimit: 10 * 1024 * 1024,
    blockHeight: 0,
    gateway: { kind: "online", url: ar.url },
    upload: { url: ar.url },
    publicUrl
  })
  yield* Console.log(`node ${node.url} (SQLite in ${dataDir}), online on the gateway, uploading to the bundler`)

  const { processId, address, messages } = yield* spawnAndSend(node.url)

  // step 2: the outbox drains in the background; poll the bundler until it holds every item
  const edgesNow = (yield* Client.walkSchedule(node.url, processId, { limit: 1000 })).edges
  const wanted = [processId, ...messages, ...edgesNow.map((e) => e.node.assignment.id)]
  yield* Effect.suspend(() => {
    const missing = wanted.filter((id) => ar.uploadCount(id) === 0)
    return missing.length === 0 ? Effect.void : Effect.fail(missing.length)
  }).pipe(Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 600 }))
  const once = wanted.every((id) => ar.uploadCount(id) === 1)
  yield* Console.log(
    `the bundler holds all ${wanted.length} items (${messages.length + 1} messages, ${edgesNow.length} assignments)` +
      `${once ? ", each uploaded once" : ""}`
  )

  // step 3: the real ao-scheduler-utils finds this SU from the record the node published on start
  ar.mine()
  const located = yield* withRouterStub(async () => (await connectTo(ar.url)).locate(processId))
  yield* Console.log(`ao-scheduler-utils locates the process's SU at ${located.url} (address ${located.address})`)
  if (located.url.replace(/\/$/, "") !== publicUrl || located.address !== address) {
    return yield* Effect.fail(fail(node.url, `located ${located.url}, expected ${publicUrl}`))
  }

  yield* verifyAsCu(node.url, processId, 1_440_000)
})

const againstRunning = (url: string) =>
  Effect.gen(function* () {
    const { processId } = yield* spawnAndSend(url)
    yield* verifyAsCu(url, processId, 0)
  })

NodeRuntime.runMain(
  remote === undefined
    ? // the node's access log would drown the demo's own lines: warnings and errors only
      Effect.scoped(fullPath).pipe(Logger.withMinimumLogLevel(LogLevel.Warning))
    : againstRunning(remote.replace(/\/$/, "")),
  { disableErrorReporting: false }
)
