/**
 * fast-check `Arbitrary`s for property tests of applications on the registry: process and message ids (from the
 * `ProcessId` and `MessageId` Schemas), and signed ao data items.
 *
 * Signing is asynchronous and costs an RSA-4096 signature (a few milliseconds), so items come in two steps: an
 * `Arbitrary` of item *specs* (plain data, shrinkable), and `sign(spec)`, an `Effect` that signs one spec with the
 * test wallet (`TestWallet.jwk`) through `@dha-team/arbundles`, as aoconnect does. In `it.effect.prop` /
 * `FastCheck.asyncProperty` tests, draw specs and `yield* Arbitraries.sign(spec)` inside the property.
 *
 * @since 0.2.0
 */
import { ArweaveSigner, createData } from "@dha-team/arbundles"
import { Arbitrary, Effect, FastCheck } from "effect"
import type { Tag } from "../DataItem.js"
import { MessageId, ProcessId } from "../ProcessId.js"
import type { ArweaveJwk } from "../Wallet.js"
import * as TestWallet from "./TestWallet.js"

/**
 * Process ids: canonical 43-character base64url texts of 32 random bytes (`Arbitrary.make(ProcessId.ProcessId)`).
 *
 * @since 0.2.0
 * @category ids
 */
export const processId: FastCheck.Arbitrary<ProcessId> = Arbitrary.make(ProcessId)

/**
 * Message ids, the same form as process ids (`Arbitrary.make(ProcessId.MessageId)`).
 *
 * @since 0.2.0
 * @category ids
 */
export const messageId: FastCheck.Arbitrary<MessageId> = Arbitrary.make(MessageId)

/**
 * The spec of a `Type: Message` data item: its `target` process, its data (UTF-8 text), its 32-character
 * `anchor`, and `tags` besides the ao ones (`Data-Protocol`, `Variant`, `Type`), which `tagsOf` adds.
 *
 * @since 0.2.0
 * @category models
 */
export interface MessageSpec {
  readonly _tag: "Message"
  readonly target: ProcessId
  readonly data: string
  readonly anchor: string
  readonly tags: ReadonlyArray<Tag>
}

/**
 * The spec of a `Type: Process` data item: its `Module` (a 43-character id) and `Scheduler` (the SU's address,
 * 43 characters), its data (the process source, UTF-8 text), its 32-character `anchor` and extra `tags`.
 *
 * @since 0.2.0
 * @category models
 */
export interface ProcessSpec {
  readonly _tag: "Process"
  readonly module: string
  readonly scheduler: string
  readonly data: string
  readonly anchor: string
  readonly tags: ReadonlyArray<Tag>
}

/**
 * A `MessageSpec` or a `ProcessSpec`.
 *
 * @since 0.2.0
 * @category models
 */
export type ItemSpec = MessageSpec | ProcessSpec

/**
 * A signed data item: its `id` (43 characters, base64url of sha256 of the signature), its ANS-104 bytes `raw`,
 * and the `spec` it was signed from.
 *
 * @since 0.2.0
 * @category models
 */
export interface SignedItem<S extends ItemSpec = ItemSpec> {
  readonly spec: S
  readonly id: MessageId
  readonly raw: Uint8Array
}

const toText = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url")

/** 32 characters of base64url, as aoconnect's anchors are. */
const anchor = FastCheck.uint8Array({ minLength: 24, maxLength: 24 }).map(toText)

/** Up to 4 extra tags named `X-…` (so they never shadow an ao tag), values of up to 64 characters. */
const extraTags: FastCheck.Arbitrary<ReadonlyArray<Tag>> = FastCheck.array(
  FastCheck.record({
    name: FastCheck.string({ minLength: 1, maxLength: 24 }).map((s) => `X-${s}`),
    value: FastCheck.string({ maxLength: 64 })
  }),
  { maxLength: 4 }
)

const data = FastCheck.string({ maxLength: 256 })

/**
 * `MessageSpec`s: the target from `options.target` (default: `processId`), data of up to 256 characters, a random
 * anchor and up to 4 extra `X-…` tags.
 *
 * @since 0.2.0
 * @category items
 */
export const messageSpec = (
  options: { readonly target?: FastCheck.Arbitrary<ProcessId> | undefined } = {}
): FastCheck.Arbitrary<MessageSpec> =>
  FastCheck.record({ target: options.target ?? processId, data, anchor, tags: extraTags }).map((fields) => ({
    _tag: "Message" as const,
    ...fields
  }))

/**
 * `ProcessSpec`s: the `Scheduler` tag from `options.scheduler` (default: the test wallet's address, so the node
 * signing with `TestWallet.layer` is the scheduler), a random `Module` id, data of up to 256 characters, a random
 * anchor and up to 4 extra `X-…` tags.
 *
 * @since 0.2.0
 * @category items
 */
export const processSpec = (
  options: { readonly scheduler?: FastCheck.Arbitrary<string> | undefined } = {}
): FastCheck.Arbitrary<ProcessSpec> =>
  FastCheck.record({
    module: messageId.map((id): string => id),
    scheduler: options.scheduler ?? FastCheck.constant(TestWallet.address),
    data,
    anchor,
    tags: extraTags
  }).map((fields) => ({ _tag: "Process" as const, ...fields }))

/**
 * Either kind of spec, with the defaults of `messageSpec` and `processSpec`.
 *
 * @since 0.2.0
 * @category items
 */
export const itemSpec: FastCheck.Arbitrary<ItemSpec> = FastCheck.oneof(messageSpec(), processSpec())

/**
 * The tags a spec's item carries, in order: the ao ones aoconnect writes (`Data-Protocol: ao`,
 * `Variant: ao.TN.1`, `Type`, and for a process `Scheduler` and `Module`), then the spec's extra tags.
 *
 * @since 0.2.0
 * @category items
 */
export const tagsOf = (spec: ItemSpec): Array<Tag> => [
  { name: "Data-Protocol", value: "ao" },
  { name: "Variant", value: "ao.TN.1" },
  { name: "Type", value: spec._tag },
  ...(spec._tag === "Process"
    ? [
        { name: "Scheduler", value: spec.scheduler },
        { name: "Module", value: spec.module }
      ]
    : []),
  ...spec.tags
]

const signers = new WeakMap<ArweaveJwk, ArweaveSigner>()
const signerOf = (jwk: ArweaveJwk): ArweaveSigner => {
  let signer = signers.get(jwk)
  if (signer === undefined) {
    signer = new ArweaveSigner(jwk)
    signers.set(jwk, signer)
  }
  return signer
}

/**
 * Signs `spec` into an ANS-104 data item with `jwk` (default: the test wallet's key) through `@dha-team/arbundles`
 * (`createData`, then `sign` with an `ArweaveSigner`), as aoconnect does. One RSA-4096 signature: a few
 * milliseconds. Never fails: a signing error is a defect.
 *
 * @example
 * ```ts
 * import { Effect, FastCheck } from "effect"
 * import { DataItem } from "effect-scheduler-registry"
 * import { Arbitraries } from "effect-scheduler-registry/testing"
 *
 * await FastCheck.assert(
 *   FastCheck.asyncProperty(Arbitraries.messageSpec(), async (spec) => {
 *     const item = await Effect.runPromise(Arbitraries.sign(spec))
 *     const decoded = await Effect.runPromise(DataItem.verify(item.raw))
 *     return decoded.target === spec.target
 *   }),
 *   { numRuns: 20 }
 * )
 * ```
 *
 * @since 0.2.0
 * @category items
 */
export const sign = <S extends ItemSpec>(spec: S, jwk: ArweaveJwk = TestWallet.jwk): Effect.Effect<SignedItem<S>> =>
  Effect.promise(async () => {
    const signer = signerOf(jwk)
    const item = createData(spec.data, signer, {
      tags: tagsOf(spec),
      anchor: spec.anchor,
      ...(spec._tag === "Message" ? { target: spec.target } : {})
    })
    await item.sign(signer)
    return { spec, id: item.id as MessageId, raw: Uint8Array.from(item.getRaw()) }
  })
