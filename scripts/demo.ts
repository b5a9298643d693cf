/**
 * `npm run demo [-- --url <su url>] [--messages <n>] [--client-wallet <jwk file>]`
 *
 * Talks to a running SU as aoconnect and the CU would: signs a Process (Scheduler = the SU's address) and
 * `n` Messages (default 10) with `@dha-team/arbundles` (`createData` + `ArweaveSigner`), POSTs them, reads the
 * schedule back 3 entries per page following `page_info` / cursors, verifies every assignment's signature from
 * its JSON and the hash chain, and prints the schedule as a table.
 *
 * The URL comes from `--url`, else `SU_URL`, else http://127.0.0.1:9000. The client key is `--client-wallet`,
 * else a fresh RSA-4096 key (a second or two to generate).
 */
import * as Fs from "node:fs"
import { parseArgs } from "node:util"
import { ArweaveSigner, createData } from "@dha-team/arbundles"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { DEFAULT_HOST, DEFAULT_PORT } from "../src/node/Config.js"
import * as Wallet from "../src/Wallet.js"
import * as Client from "../test/fixtures/client.js"

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    messages: { type: "string", default: "10" },
    "client-wallet": { type: "string" }
  }
})
const url = (values.url ?? process.env.SU_URL ?? `http://${DEFAULT_HOST}:${DEFAULT_PORT}`).replace(/\/$/, "")
const count = Number(values.messages)

const post = (body: Uint8Array) =>
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
    catch: (e) => new Client.ClientError({ url, reason: (e as Error).message })
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

const program = Effect.gen(function* () {
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
  const process = yield* sign(signer, {
    data: "-- demo process",
    tags: [
      ...protocol,
      { name: "Type", value: "Process" },
      { name: "Scheduler", value: info.address },
      { name: "Module", value: "Do_Uc2Sju_ffp6Ev0AnLVdPtot15rvMjP-a9VVaA5fM" },
      { name: "SDK", value: "aoconnect" }
    ]
  })
  yield* post(process.getRaw())
  yield* Console.log(`spawned process ${process.id}`)
  for (let n = 1; n <= count; n++) {
    const message = yield* sign(signer, {
      data: `demo message ${n}`,
      target: process.id,
      tags: [...protocol, { name: "Type", value: "Message" }, { name: "Action", value: "Eval" }]
    })
    yield* post(message.getRaw())
  }
  yield* Console.log(`sent ${count} messages`)

  const { edges, pages } = yield* Client.walkSchedule(url, process.id, { limit: 3 })
  yield* Console.log(`read ${edges.length} entries in ${pages} pages of at most 3\n`)
  const rows: Array<Array<string>> = [["nonce", "timestamp", "message id", "assignment id", "signature", "hash chain"]]
  const brokenAt = Client.verifyScheduleChain(
    process.id,
    edges.map((e) => e.node)
  )
  for (const [i, edge] of edges.entries()) {
    const problem = yield* Client.verifyAssignmentJson(edge.node.assignment)
    rows.push([
      Client.assignmentTag(edge.node, "Nonce") ?? "?",
      Client.assignmentTag(edge.node, "Timestamp") ?? "?",
      edge.node.message?.id ?? `${Client.assignmentTag(edge.node, "Message")} (assigned)`,
      edge.node.assignment.id,
      problem ?? "ok",
      brokenAt !== undefined && i >= brokenAt ? "BROKEN" : "ok"
    ])
  }
  yield* Console.log(table(rows))
  const ok = brokenAt === undefined && rows.slice(1).every((r) => r[4] === "ok")
  yield* Console.log(`\n${ok ? "all assignments verify and the hash chain holds" : "VERIFICATION FAILED"}`)
  if (!ok) return yield* Effect.fail(new Client.ClientError({ url, reason: "verification failed" }))
})

NodeRuntime.runMain(program)
