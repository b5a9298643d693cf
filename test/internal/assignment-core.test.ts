/**
 * The library-free assignment core is byte-equal to the arbundles path: tag serialisation, raw layout, id and
 * signature data for random fields, and a signed chain verifies (`Assignment.verify`, `verifyChain`). Its source
 * text runs in a bare worker thread (no module loader) and signs the same bytes.
 */
import * as Crypto from "node:crypto"
import { Worker } from "node:worker_threads"
import { createData, DataItem, serializeTags } from "@dha-team/arbundles"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import * as Assignment from "../../src/Assignment.js"
import { assignmentCore, assignmentCoreSource } from "../../src/internal/assignment-core.js"
import { layoutSigner } from "../../src/internal/signature-data.js"
import type { MessageId, ProcessId } from "../../src/ProcessId.js"
import { walletJwk } from "../fixtures/wallet.js"

const core = assignmentCore(Crypto)
const key = Crypto.createPrivateKey({ key: { ...walletJwk }, format: "jwk" })
const owner = Buffer.from(walletJwk.n, "base64url")
const sign = (data: Uint8Array) =>
  Crypto.sign("sha256", data, { key, padding: Crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })

const id43 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("base64url"))
const fields = fc.record({
  processId: id43,
  messageId: id43,
  slot: fc.nat({ max: 2 ** 40 }),
  epoch: fc.nat({ max: 1000 }),
  timestamp: fc.nat({ max: 2 ** 45 }),
  blockHeight: fc.nat({ max: 10_000_000 }),
  hashChain: id43,
  exclude: fc.option(fc.array(fc.string({ maxLength: 80 }), { maxLength: 4 }), { nil: undefined })
})

describe("internal/assignment-core", () => {
  it.effect.prop(
    "tags, their serialisation, the layout and the signature data equal arbundles'",
    [fields, fc.uint8Array({ minLength: 512, maxLength: 512 })],
    ([f, signature]) =>
      Effect.promise(async () => {
        const tags = core.tags(f)
        expect(tags).toEqual(Assignment.tags(f))
        const rawTags = core.serializeTags(tags)
        expect(Buffer.from(rawTags).equals(serializeTags(tags))).toBe(true)
        const item = createData("", layoutSigner(owner), { tags })
        const raw = Buffer.from(item.getRaw())
        raw.set(signature, 2)
        expect(Buffer.from(core.layout(owner, rawTags, tags.length, signature)).equals(raw)).toBe(true)
        const expected = Buffer.from(await item.getSignatureData())
        expect(Buffer.from(core.signatureData(owner, rawTags)).equals(expected)).toBe(true)
        expect(core.idOf(signature)).toBe(new DataItem(raw).id)
      }),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect("a signed chain verifies and continues the chain", () =>
    Effect.gen(function* () {
      const processId = Crypto.randomBytes(32).toString("base64url") as ProcessId
      const entries = Array.from({ length: 5 }, (_, i) => ({
        messageId: i === 0 ? processId : Crypto.randomBytes(32).toString("base64url"),
        timestamp: 1_700_000_000_000 + i,
        blockHeight: 1_500_000,
        epoch: 0
      }))
      const start = { processId, slot: 0, hashChain: core.initialHashChain(processId) }
      const signed = core.signChain(owner, sign, start, entries)
      const assignments = signed.map(
        (s, i) =>
          new Assignment.Assignment({
            ...entries[i]!,
            messageId: entries[i]!.messageId as MessageId,
            processId,
            slot: i,
            hashChain: s.hashChain,
            id: s.id as MessageId,
            raw: s.raw
          })
      )
      for (const a of assignments) expect(yield* Assignment.verify(a)).toBeUndefined()
      expect(Assignment.verifyChain(processId, assignments)).toBeUndefined()
    })
  )

  it.effect("its source text signs in a bare worker thread", () =>
    Effect.promise(async () => {
      const code = `
        const __name = (target) => target
        const { parentPort, workerData } = require("node:worker_threads")
        const crypto = require("node:crypto")
        const core = (${assignmentCoreSource})(crypto)
        const key = crypto.createPrivateKey({ key: workerData.jwk, format: "jwk" })
        const sign = (d) => crypto.sign("sha256", d, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
        const owner = Buffer.from(workerData.jwk.n, "base64url")
        parentPort.postMessage(core.signChain(owner, sign, workerData.start, workerData.entries))`
      const start = { processId: "a".repeat(43), slot: 7, hashChain: "b".repeat(43) }
      const entries = [{ messageId: "c".repeat(43), timestamp: 1, blockHeight: 2, epoch: 0 }]
      const worker = new Worker(code, { eval: true, workerData: { jwk: walletJwk, start, entries } })
      const [signed] = await new Promise<Array<{ id: string; raw: Uint8Array }>>((resolve, reject) => {
        worker.once("message", resolve)
        worker.once("error", reject)
      })
      await worker.terminate()
      const item = new DataItem(Buffer.from(signed!.raw))
      expect(await item.isValid()).toBe(true)
      expect(item.id).toBe(signed!.id)
      expect(item.tags.find((t) => t.name === "Nonce")?.value).toBe("7")
    })
  )
})
