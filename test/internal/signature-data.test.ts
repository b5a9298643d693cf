/**
 * The signature data (the ANS-104 deep hash) of an assignment (with the owner's part folded once) and of any
 * item is byte-equal to arbundles' own `getSignatureData` of the same item, for random items.
 */
import { createData, type Signer } from "@dha-team/arbundles"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { assignmentSignatureData, signatureData } from "../../src/internal/signature-data.js"

const signerFor = (owner: Uint8Array) =>
  ({ publicKey: Buffer.from(owner), signatureType: 1, signatureLength: 512, ownerLength: 512 }) as unknown as Signer

const owner = fc.uint8Array({ minLength: 512, maxLength: 512 })
const tag = fc.record({ name: fc.string({ minLength: 1, maxLength: 40 }), value: fc.string({ maxLength: 200 }) })

describe("internal/signature-data", () => {
  it.effect.prop(
    "equals arbundles' getSignatureData of the same item",
    [owner, fc.array(tag, { minLength: 1, maxLength: 12 })],
    ([ownerBytes, tags]) =>
      Effect.promise(async () => {
        const item = createData("", signerFor(ownerBytes), { tags })
        const expected = Buffer.from(await item.getSignatureData())
        const actual = assignmentSignatureData(ownerBytes, item.rawTags)
        expect(actual).toHaveLength(48)
        expect(actual.equals(expected)).toBe(true)
      }),
    { fastCheck: { numRuns: 200 } }
  )

  it.effect.prop(
    "signatureData of any item (target, anchor, data) equals arbundles' getSignatureData",
    [
      owner,
      fc.array(tag, { maxLength: 8 }),
      fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: undefined }),
      fc.option(fc.string({ minLength: 32, maxLength: 32, unit: "grapheme-ascii" }), { nil: undefined }),
      fc.uint8Array({ maxLength: 4096 })
    ],
    ([ownerBytes, tags, target, anchor, data]) =>
      Effect.promise(async () => {
        const item = createData(data, signerFor(ownerBytes), {
          tags,
          ...(target === undefined ? {} : { target: Buffer.from(target).toString("base64url") }),
          ...(anchor === undefined ? {} : { anchor })
        })
        const expected = Buffer.from(await item.getSignatureData())
        const actual = signatureData({
          signatureType: 1,
          owner: item.rawOwner,
          target: item.rawTarget,
          anchor: item.rawAnchor,
          tags: item.rawTags,
          data: item.rawData
        })
        expect(actual.equals(expected)).toBe(true)
      }),
    { fastCheck: { numRuns: 200 } }
  )

  it.effect("the same owner array twice (the cached prefix) still gives each item its own digest", () =>
    Effect.promise(async () => {
      const ownerBytes = new Uint8Array(512).fill(3)
      const one = createData("", signerFor(ownerBytes), { tags: [{ name: "Nonce", value: "1" }] })
      const two = createData("", signerFor(ownerBytes), { tags: [{ name: "Nonce", value: "2" }] })
      const first = assignmentSignatureData(ownerBytes, one.rawTags)
      const second = assignmentSignatureData(ownerBytes, two.rawTags)
      expect(first.equals(second)).toBe(false)
      expect(second.equals(Buffer.from(await two.getSignatureData()))).toBe(true)
      // another owner with the same tags: another prefix
      const other = new Uint8Array(512).fill(4)
      expect(assignmentSignatureData(other, one.rawTags).equals(first)).toBe(false)
    })
  )
})
