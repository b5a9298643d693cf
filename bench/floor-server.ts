/**
 * The least a scheduler unit does per `POST /`, with nothing else: Node's own HTTP server reads the body, parses
 * the ANS-104 data item (arbundles), verifies its RSA-PSS signature (the deep hash of the assignment core,
 * `crypto.verify`) and answers a small JSON body. No Effect, no store, no signing. `cases/serve.ts` loads it as
 * it loads the node, to measure the CPU that any server spends per request besides signing (the ceiling row).
 *
 * Usage: `node --import tsx bench/floor-server.ts`; prints its port. `GET /cpu` answers its CPU time so far (ms)
 * and the number of items it answered: `{ "cpuMs", "answered" }`.
 */
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import { DataItem } from "@dha-team/arbundles"
import { assignmentCore } from "../src/internal/assignment-core.js"

const core = assignmentCore(Crypto)
let answered = 0
const keys = new Map<string, Crypto.KeyObject>()

const verify = (raw: Buffer): boolean => {
  const item = new DataItem(raw)
  const data = core.itemSignatureData({
    signatureType: item.signatureType,
    owner: item.rawOwner,
    target: item.rawTarget,
    anchor: item.rawAnchor,
    tags: item.rawTags,
    data: item.rawData
  })
  const n = item.rawOwner.toString("base64url")
  let key = keys.get(n)
  if (key === undefined) {
    key = Crypto.createPublicKey({ key: { kty: "RSA", n, e: "AQAB" }, format: "jwk" })
    keys.set(n, key)
  }
  const padding = Crypto.constants.RSA_PKCS1_PSS_PADDING
  const saltLength = Crypto.constants.RSA_PSS_SALTLEN_AUTO
  return Crypto.verify("sha256", data, { key, padding, saltLength }, item.rawSignature)
}

const server = Http.createServer((request, response) => {
  if (request.method === "GET") {
    const cpu = process.cpuUsage()
    response.end(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, answered }))
    return
  }
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => {
    const ok = verify(Buffer.concat(chunks))
    answered++
    const body = JSON.stringify({ timestamp: Date.now(), id: ok ? "verified" : "bad" })
    response.writeHead(ok ? 200 : 400, { "content-type": "application/json" }).end(body)
  })
})

server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  console.log(typeof address === "object" && address !== null ? address.port : 0)
})
