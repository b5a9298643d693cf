/**
 * Assignment: the hash chain against the CU's reference function and a golden vector
 * (`docs/behaviours.md` §6 and §9, additional check 1), `verifyChain`, and the signed
 * ao.TN.1 data item (`docs/behaviours.md` §4.5).
 */
import * as Crypto from "node:crypto"
import { DataItem } from "@dha-team/arbundles"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import * as Assignment from "../src/Assignment.js"
import * as ProcessId from "../src/ProcessId.js"
import * as Wallet from "../src/Wallet.js"
import { hashChain as cuHashChain } from "./fixtures/cu-hash-chain.js"
import { Wallet2Test, WalletTest } from "./fixtures/wallet.js"

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 })
const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url")

/** A deterministic 43-character id derived from a label. */
const idOf = (label: string): ProcessId.MessageId =>
  ProcessId.MessageId.make(Crypto.createHash("sha256").update(label).digest("base64url"))

const PROCESS = ProcessId.unsafeMake(idOf("golden process"))
const TIMESTAMP = 1_719_830_000_123

const signerOf = (wallet: Wallet.Wallet["Type"]): Assignment.AssignmentSigner => ({
  owner: wallet.owner,
  sign: wallet.sign
})

/** Builds slots 0..count-1 of `processId`'s schedule, each chained from its predecessor. */
const buildChain = (signer: Assignment.AssignmentSigner, processId: ProcessId.ProcessId, count: number) =>
  Effect.gen(function* () {
    const chain: Array<Assignment.Assignment> = []
    for (let slot = 0; slot < count; slot++) {
      const previous = chain[slot - 1]
      const hashChain =
        previous === undefined
          ? Assignment.initialHashChain(processId)
          : Assignment.nextHashChain(previous.id, previous.hashChain)
      chain.push(
        yield* Assignment.build(signer, {
          processId,
          messageId: slot === 0 ? ProcessId.MessageId.make(processId) : idOf(`${processId} message ${slot}`),
          slot,
          epoch: 0,
          timestamp: TIMESTAMP + slot,
          blockHeight: 1_500_000 + slot,
          hashChain
        })
      )
    }
    return chain
  })

const tagValue = (item: DataItem, name: string): string => {
  const tag = item.tags.find((t) => t.name === name)
  if (tag === undefined) throw new Error(`no ${name} tag`)
  return tag.value
}

describe("Assignment", () => {
  it.effect("signChain in-line signs the entries pushed onto a growing run while it signs", () =>
    Effect.gen(function* () {
      const wallet = yield* Wallet.Wallet
      const processId = idOf("growing run")
      const entry = (i: number): Assignment.ChainEntry => ({
        messageId: idOf(`growing ${i}`),
        timestamp: TIMESTAMP + i,
        blockHeight: 1,
        epoch: 0
      })
      const entries = [entry(0), entry(1)]
      let calls = 0
      // an arrival during the first signature: the caller pushes onto the run it passed
      const signer: Assignment.AssignmentSigner = {
        owner: wallet.owner,
        sign: (data) => Effect.tap(wallet.sign(data), () => (calls++ === 0 ? entries.push(entry(2)) : undefined))
      }
      const growth: Assignment.ChainGrowth = { grew: undefined }
      const start = { processId, slot: 3, hashChain: Assignment.initialHashChain(processId) }
      const signed = yield* Assignment.signChain(signer, start, entries, growth)
      expect(signed.map((a) => a.slot)).toEqual([3, 4, 5])
      expect(signed.map((a) => a.messageId)).toEqual(entries.map((e) => e.messageId))
      for (let i = 1; i < signed.length; i++) {
        expect(signed[i]!.hashChain).toBe(Assignment.nextHashChain(signed[i - 1]!.id, signed[i - 1]!.hashChain))
      }
    }).pipe(Effect.provide(WalletTest))
  )

  describe("hash chain: agreement with the CU's hashChain()", () => {
    it("golden vector: process of 32 zero bytes and two fixed assignment ids", () => {
      const processId = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
      const assignment0 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA" // bytes 0x01..0x20
      const assignment1 = "__________________________________________8" // 32 bytes of 0xff
      // Computed once with the CU's function (test/fixtures/cu-hash-chain.ts) and pasted here.
      const hc0 = "Zmh6rfhivXdsj8GLjp-OIAiXFIVu4jOzkCpZHQ1fKSU"
      const hc1 = "N803bOEMg2iCy-Mca9fJg6UAEAikQYab0BG3KDhmgrA"
      const hc2 = "N2rY64ItUEIBZVGr06G_GzA-K1lqeNxKzn7jD5y_T8k"

      expect(processId).toHaveLength(43)
      // HC(process) is sha256 of the 32 decoded zero bytes, a well-known digest.
      expect(Buffer.from(hc0, "base64url").toString("hex")).toBe(
        "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
      )

      expect(Assignment.initialHashChain(processId)).toBe(hc0)
      expect(Assignment.nextHashChain(assignment0, hc0)).toBe(hc1)
      expect(Assignment.nextHashChain(assignment1, hc1)).toBe(hc2)

      expect(cuHashChain(processId)).toBe(hc0)
      expect(cuHashChain(hc0, assignment0)).toBe(hc1)
      expect(cuHashChain(hc1, assignment1)).toBe(hc2)

      expect(
        Assignment.verifyChain(processId, [
          { id: ProcessId.MessageId.make(assignment0), slot: 0, hashChain: hc0 },
          { id: ProcessId.MessageId.make(assignment1), slot: 1, hashChain: hc1 },
          { id: idOf("any"), slot: 2, hashChain: hc2 }
        ])
      ).toBeUndefined()
    })

    it("the chain hashes decoded bytes with the previous assignment id first, not the text or the other order", () => {
      const previousId = idOf("previous assignment")
      const previousHc = Assignment.initialHashChain(PROCESS)
      const next = Assignment.nextHashChain(previousId, previousHc)
      const sha = (...parts: Array<Uint8Array>) => {
        const hash = Crypto.createHash("sha256")
        for (const part of parts) hash.update(part)
        return hash.digest("base64url")
      }
      const raw = (text: string) => Buffer.from(text, "base64url")
      expect(next).toBe(sha(raw(previousId), raw(previousHc)))
      expect(next).not.toBe(sha(raw(previousHc), raw(previousId)))
      expect(next).not.toBe(sha(Buffer.from(previousId), Buffer.from(previousHc)))
      expect(Assignment.initialHashChain(PROCESS)).not.toBe(sha(Buffer.from(PROCESS)))
    })

    it.prop(
      "initialHashChain(pid) and nextHashChain(aid, hc) equal the CU's hashChain(pid) and hashChain(hc, aid)",
      [bytes32, bytes32, bytes32],
      ([processBytes, assignmentBytes, hashChainBytes]) => {
        const processId = b64url(processBytes)
        const assignmentId = b64url(assignmentBytes)
        const hashChain = b64url(hashChainBytes)
        expect(Assignment.initialHashChain(processId)).toBe(cuHashChain(processId))
        expect(Assignment.nextHashChain(assignmentId, hashChain)).toBe(cuHashChain(hashChain, assignmentId))
        expect(Assignment.initialHashChain(processId)).toHaveLength(43)
      }
    )

    it.effect("a chain of 5 built assignments recomputes with the CU's function from the signed tags", () =>
      Effect.gen(function* () {
        const wallet = yield* Wallet.Wallet
        const chain = yield* buildChain(signerOf(wallet), PROCESS, 5)
        const items = chain.map((a) => new DataItem(Buffer.from(a.raw)))
        expect(items.map((item) => tagValue(item, "Nonce"))).toEqual(["0", "1", "2", "3", "4"])
        expect(tagValue(items[0]!, "Hash-Chain")).toBe(cuHashChain(PROCESS))
        for (let i = 1; i < items.length; i++) {
          const previous = items[i - 1]!
          // As the CU does: from the previous assignment's id and Hash-Chain tag, as they came over the wire.
          expect(tagValue(items[i]!, "Hash-Chain")).toBe(cuHashChain(tagValue(previous, "Hash-Chain"), previous.id))
          expect(chain[i]!.hashChain).toBe(tagValue(items[i]!, "Hash-Chain"))
        }
        expect(new Set(chain.map((a) => a.hashChain)).size).toBe(5)
        expect(Assignment.verifyChain(PROCESS, chain)).toBeUndefined()
      }).pipe(Effect.provide(WalletTest))
    )
  })

  describe("verifyChain", () => {
    it.effect("returns undefined for a good chain and the index of the first broken link otherwise", () =>
      Effect.gen(function* () {
        const wallet = yield* Wallet.Wallet
        const chain = yield* buildChain(signerOf(wallet), PROCESS, 5)
        const links = chain.map(({ hashChain, id, slot }) => ({ hashChain, id, slot }))

        expect(Assignment.verifyChain(PROCESS, links)).toBeUndefined()
        expect(Assignment.verifyChain(PROCESS, [])).toBeUndefined()

        const tampered = links.map((link, i) => (i === 3 ? { ...link, hashChain: links[2]!.hashChain } : link))
        expect(Assignment.verifyChain(PROCESS, tampered)).toBe(3)

        const gap = [links[0]!, links[1]!, links[3]!, links[4]!]
        expect(Assignment.verifyChain(PROCESS, gap)).toBe(2)

        // A replaced assignment id breaks the link after it.
        const replacedId = links.map((link, i) => (i === 1 ? { ...link, id: idOf("forged") } : link))
        expect(Assignment.verifyChain(PROCESS, replacedId)).toBe(2)

        // The chain of another process fails at slot 0.
        expect(Assignment.verifyChain(ProcessId.unsafeMake(idOf("another process")), links)).toBe(0)

        // Renumbered slots with the right chain values still break at the first wrong slot.
        const renumbered = links.map((link, i) => (i === 4 ? { ...link, slot: 5 } : link))
        expect(Assignment.verifyChain(PROCESS, renumbered)).toBe(4)
      }).pipe(Effect.provide(WalletTest))
    )
  })

  describe("build: the signed ao.TN.1 data item", () => {
    it.effect("is an ANS-104 data item that arbundles verifies, with exactly the ao.TN.1 tags in order", () =>
      Effect.gen(function* () {
        const wallet = yield* Wallet.Wallet
        const messageId = idOf("a message")
        const hashChain = Assignment.nextHashChain(idOf("slot 6 assignment"), Assignment.initialHashChain(PROCESS))
        const assignment = yield* Assignment.build(signerOf(wallet), {
          processId: PROCESS,
          messageId,
          slot: 7,
          epoch: 0,
          timestamp: TIMESTAMP,
          blockHeight: 1_500_000,
          hashChain
        })
        const raw = Buffer.from(assignment.raw)
        expect(yield* Effect.promise(() => DataItem.verify(raw))).toBe(true)

        const item = new DataItem(raw)
        expect(item.tags).toEqual([
          { name: "Process", value: PROCESS },
          { name: "Epoch", value: "0" },
          { name: "Nonce", value: "7" },
          { name: "Hash-Chain", value: hashChain },
          { name: "Block-Height", value: "000001500000" },
          { name: "Timestamp", value: "1719830000123" },
          { name: "Data-Protocol", value: "ao" },
          { name: "Type", value: "Assignment" },
          { name: "Variant", value: "ao.TN.1" },
          { name: "Message", value: messageId }
        ])
        expect(item.signatureType).toBe(1)
        expect(item.rawSignature).toHaveLength(512)
        expect(Buffer.from(item.rawOwner).equals(Buffer.from(wallet.owner))).toBe(true)
        expect(item.target).toBe("")
        expect(item.anchor).toBe("")
        expect(item.rawData).toHaveLength(0)
        // On the wire: 2-byte signature type, 512-byte signature, 512-byte owner, then "no target", "no anchor".
        expect(raw[2 + 512 + 512]).toBe(0)
        expect(raw[2 + 512 + 512 + 1]).toBe(0)

        const expectedId = Crypto.createHash("sha256").update(item.rawSignature).digest("base64url")
        expect(item.id).toBe(expectedId)
        expect(assignment.id).toBe(expectedId)
        expect(assignment.id).toHaveLength(43)
        expect(
          Wallet.verify(wallet.owner, yield* Effect.promise(() => item.getSignatureData()), item.rawSignature)
        ).toBe(true)

        expect(assignment).toMatchObject({
          processId: PROCESS,
          messageId,
          slot: 7,
          epoch: 0,
          timestamp: TIMESTAMP,
          blockHeight: 1_500_000,
          hashChain
        })
      }).pipe(Effect.provide(WalletTest))
    )

    it("pads Block-Height to 12 digits", () => {
      expect(Assignment.padBlockHeight(0)).toBe("000000000000")
      expect(Assignment.padBlockHeight(1_440_000)).toBe("000001440000")
      expect(Assignment.padBlockHeight(999_999_999_999)).toBe("999999999999")
    })
  })

  describe("verify", () => {
    const buildOne = Effect.gen(function* () {
      const wallet = yield* Wallet.Wallet
      const [first] = yield* buildChain(signerOf(wallet), PROCESS, 1)
      return first!
    })

    it.effect("returns undefined for a built assignment", () =>
      Effect.gen(function* () {
        const assignment = yield* buildOne
        expect(yield* Assignment.verify(assignment)).toBeUndefined()
      }).pipe(Effect.provide(WalletTest))
    )

    it.effect("returns a reason for a copy with one signature byte flipped", () =>
      Effect.gen(function* () {
        const assignment = yield* buildOne
        const raw = Uint8Array.from(assignment.raw)
        raw[2 + 100] = raw[2 + 100]! ^ 0x01
        const tampered = new Assignment.Assignment({ ...assignment, raw }, { disableValidation: true })
        expect(yield* Assignment.verify(tampered)).toBe("the data item does not verify")
      }).pipe(Effect.provide(WalletTest))
    )

    it.effect("returns a reason for a copy whose signed tag bytes were altered", () =>
      Effect.gen(function* () {
        const assignment = yield* buildOne
        const raw = Buffer.from(assignment.raw)
        const at = raw.indexOf("ao.TN.1")
        expect(at).toBeGreaterThan(2 + 512 + 512)
        raw.write("ao.TN.2", at)
        const tampered = new Assignment.Assignment({ ...assignment, raw }, { disableValidation: true })
        expect(yield* Assignment.verify(tampered)).toBe("the data item does not verify")
      }).pipe(Effect.provide(WalletTest))
    )

    it.effect("returns a reason when a field disagrees with the signed tags", () =>
      Effect.gen(function* () {
        const assignment = yield* buildOne
        for (const change of [
          { slot: assignment.slot + 1 },
          { hashChain: Assignment.nextHashChain(assignment.id, assignment.hashChain) },
          { timestamp: assignment.timestamp + 1 },
          { blockHeight: assignment.blockHeight + 1 },
          { messageId: idOf("another message") }
        ]) {
          const tampered = new Assignment.Assignment({ ...assignment, ...change }, { disableValidation: true })
          expect(yield* Assignment.verify(tampered)).toBe("the tags do not match the fields")
        }
      }).pipe(Effect.provide(WalletTest))
    )

    it.effect("returns a reason when the id is not the one of the signature", () =>
      Effect.gen(function* () {
        const assignment = yield* buildOne
        const tampered = new Assignment.Assignment(
          { ...assignment, id: idOf("forged id") },
          { disableValidation: true }
        )
        expect(yield* Assignment.verify(tampered)).toBe("the id does not match the signature")
      }).pipe(Effect.provide(WalletTest))
    )

    it.effect("returns a reason for an assignment signed by a key other than its owner", () =>
      Effect.gen(function* () {
        const node = yield* Effect.provide(Wallet.Wallet, WalletTest)
        const other = yield* Effect.provide(Wallet.Wallet, Wallet2Test)
        const [forged] = yield* buildChain({ owner: node.owner, sign: other.sign }, PROCESS, 1)
        expect(yield* Assignment.verify(forged!)).toBe("the data item does not verify")
      })
    )
  })
})
