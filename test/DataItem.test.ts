import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as DataItem from "../src/DataItem.js"
import { ownerToAddress } from "../src/Wallet.js"
import {
  clientSigner,
  messageItem,
  messageTags,
  processItem,
  signedItem,
  tampered,
  truncated,
  unsignedItem
} from "./fixtures/dataItems.js"
import { idOf } from "./fixtures/ids.js"

const SCHEDULER = "b1ayEFhXXqrS30fIn5k8ARPglHDKWXkVp_0wbTwo5UI"

const reason = <A>(result: Either.Either<A, { readonly reason: string }>) =>
  Either.match(result, { onLeft: (e) => e.reason, onRight: () => "valid" })

describe("DataItem", () => {
  it.effect("verify accepts an item signed as aoconnect signs it and reads its fields", () =>
    Effect.gen(function* () {
      const process = yield* Effect.promise(() => processItem(SCHEDULER))
      const item = yield* DataItem.verify(process.getRaw())
      expect(item.id).toBe(process.id)
      expect(item.id).toHaveLength(43)
      expect(item.signatureType).toBe(1)
      expect(item.owner).toHaveLength(512)
      expect(item.ownerAddress).toBe(ownerToAddress(Buffer.from(clientSigner.publicKey)))
      expect(item.target).toBeUndefined()
      expect(item.anchor).toHaveLength(32)
      expect(DataItem.tagValue(item, "Type")).toBe("Process")
      expect(DataItem.tagValue(item, "Scheduler")).toBe(SCHEDULER)
      expect(DataItem.tagValue(item, "Nope")).toBeUndefined()
      expect(Buffer.from(item.data).toString("utf8")).toBe("-- process source\nreturn 1")

      const message = yield* Effect.promise(() => messageItem(process.id, 3))
      const parsed = yield* DataItem.verify(message.getRaw())
      expect(parsed.target).toBe(process.id)
      expect(Buffer.from(parsed.data).toString("utf8")).toBe("message 3")
    })
  )

  it.effect("verify rejects tampered, truncated, unsigned, short and garbage bytes, naming the fault", () =>
    Effect.gen(function* () {
      const message = yield* Effect.promise(() => messageItem(idOf(1), 1))
      const raw = Uint8Array.from(message.getRaw())
      const check = (bytes: Uint8Array) => Effect.either(DataItem.verify(bytes)).pipe(Effect.map(reason))
      expect(yield* check(raw)).toBe("valid")
      expect(yield* check(tampered(raw))).toMatch(/signature does not verify/)
      expect(yield* check(truncated(raw, 3))).toMatch(/signature does not verify/)
      expect(yield* check(truncated(raw, raw.length - 700))).toMatch(/truncated|not an ANS-104/)
      expect(yield* check(unsignedItem({ tags: messageTags(), target: idOf(1) }))).toBe("the data item is not signed")
      expect(yield* check(new Uint8Array(10))).toMatch(/at least 80 bytes, got 10/)
      expect(yield* check(new Uint8Array(600).fill(7))).toMatch(/Unknown signature type/)
    })
  )

  it.effect("verify rejects an item signed by one key whose owner field names another", () =>
    Effect.gen(function* () {
      const a = yield* Effect.promise(() => signedItem({ tags: messageTags(), target: idOf(2), data: "x" }))
      const raw = Uint8Array.from(a.getRaw())
      // overwrite the owner (bytes 514..1026) with another modulus
      raw.set(new Uint8Array(512).fill(0xab), 514)
      expect(reason(yield* Effect.either(DataItem.verify(raw)))).toMatch(/signature does not verify/)
    })
  )

  it("decode does not check the signature; ownerAddress is Wallet.ownerToAddress of the owner", async () => {
    const item = await messageItem(idOf(3), 9)
    const decoded = Either.getOrThrow(DataItem.decode(tampered(Uint8Array.from(item.getRaw()))))
    expect(decoded.id).toBe(item.id)
    expect(ownerToAddress(decoded.owner)).toBe(decoded.ownerAddress)
  })
})
