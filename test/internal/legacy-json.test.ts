/**
 * The legacy JSON text renderers (`internal/legacy-json`): what they write parses to the fields of the stored
 * data items and assignments (arbundles' reading of the same bytes, `Assignment.tags`), with JSON-escaped
 * text where clients put arbitrary strings (tags, data, anchor).
 */
import { DataItem } from "@dha-team/arbundles"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Assignment from "../../src/Assignment.js"
import { nodeJsonText } from "../../src/internal/wire-format.js"
import { MessageNode } from "../../src/node/Api.js"
import type { MessageId, ProcessId } from "../../src/ProcessId.js"
import * as Wallet from "../../src/Wallet.js"
import { signedItem } from "../fixtures/dataItems.js"
import { WalletTest } from "../fixtures/wallet.js"

describe("internal/legacy-json: legacy JSON text", () => {
  it.effect("a node parses to the message's and the assignment's fields, and to the MessageNode schema", () =>
    Effect.gen(function* () {
      const wallet = yield* Wallet.Wallet
      const target = "T".repeat(42) + "A"
      const tricky = 'quote " backslash \\ newline \n tab \t unicode é ✓ nul \u0000'
      const message = yield* Effect.promise(() =>
        signedItem({ data: tricky, target, anchor: "anchor-".padEnd(32, "x"), tags: [{ name: "Say", value: tricky }] })
      )
      const processId = target as ProcessId
      const assignment = yield* Assignment.build(
        { owner: wallet.owner, sign: wallet.sign },
        {
          processId,
          messageId: message.id as MessageId,
          slot: 7,
          epoch: 0,
          timestamp: 1_719_830_000_123,
          blockHeight: 1_500_000,
          hashChain: Assignment.initialHashChain(processId)
        }
      )
      const text = nodeJsonText({ assignment, message: new Uint8Array(message.getRaw()) })
      const node = JSON.parse(text)
      // the text is the schema's encoded form, key for key
      expect(Schema.decodeUnknownSync(MessageNode)(node)).toEqual(node)
      expect(node.message).toEqual({
        id: message.id,
        owner: { address: Wallet.ownerToAddress(message.rawOwner), key: message.owner },
        tags: [{ name: "Say", value: tricky }],
        signature: message.signature,
        anchor: "anchor-".padEnd(32, "x"),
        target,
        data: tricky
      })
      const signed = new DataItem(Buffer.from(assignment.raw))
      expect(node.assignment).toEqual({
        id: assignment.id,
        owner: { address: wallet.address, key: signed.owner },
        tags: Assignment.tags(assignment),
        signature: signed.signature,
        anchor: null,
        target: null
      })
      expect(Object.keys(node.message)).toEqual(["id", "owner", "tags", "signature", "anchor", "target", "data"])
      // an assignment of an existing transaction has no message
      expect(JSON.parse(nodeJsonText({ assignment, message: undefined })).message).toBeNull()
    }).pipe(Effect.provide(WalletTest))
  )
})
