/**
 * The assignment: the SU's signed statement that a message holds a slot (nonce) in a process's schedule.
 *
 * Each assignment is a signed ANS-104 data item with the ao.TN.1 tags the legacy ao SU writes
 * (`docs/behaviours.md` §4.5): Process, Epoch, Nonce, Hash-Chain, Block-Height, Timestamp, Data-Protocol=ao,
 * Type=Assignment, Variant=ao.TN.1 and Message. Its `target` and `anchor` are empty, as upstream's are.
 * The data items are built and verified with `@dha-team/arbundles`, the ANS-104 library aoconnect uses.
 *
 * The hash chain is the legacy ao SU / CU algorithm (`docs/behaviours.md` §6), which the CU recomputes:
 * - `HC(slot 0) = b64url(sha256(b64url_decode(process_id)))`
 * - `HC(slot k+1) = b64url(sha256(b64url_decode(assignment_id_k) ‖ b64url_decode(HC_k)))`
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { createData, DataItem, type Signer } from "@dha-team/arbundles"
import { Effect, Schema } from "effect"
import { assignmentSignatureData, layoutSigner } from "./internal/signature-data.js"
import { MessageId, ProcessId } from "./ProcessId.js"
import { verify as verifySignature } from "./Wallet.js"

/**
 * A scheduled assignment as the library and the stores see it.
 *
 * - `id`: the assignment data item's id (sha256 of its signature), 43 characters.
 * - `processId`, `messageId`: what was assigned to what.
 * - `slot`: the nonce, from 0 (the process itself); `epoch`: always 0.
 * - `timestamp`: SU wall clock in ms, strictly increasing per process (K14).
 * - `blockHeight`: Arweave block height (integer; written as a 12-digit zero-padded tag).
 * - `hashChain`: this slot's `Hash-Chain` tag, 43 characters.
 * - `raw`: the signed ANS-104 data item, in bytes.
 * - `exclude` (since 0.2.0, AOP-1): the values of its `Exclude` tags, in order; absent when it has none.
 *
 * @since 0.1.0
 * @category models
 */
export class Assignment extends Schema.Class<Assignment>("Assignment")({
  id: MessageId,
  processId: ProcessId,
  messageId: MessageId,
  slot: Schema.NonNegativeInt,
  epoch: Schema.NonNegativeInt,
  timestamp: Schema.NonNegativeInt,
  blockHeight: Schema.NonNegativeInt,
  hashChain: Schema.String,
  raw: Schema.Uint8ArrayFromSelf,
  exclude: Schema.optional(Schema.Array(Schema.String))
}) {}

/**
 * A message to schedule: its id and, where the SU has it, its signed ANS-104 data item bytes. `raw` is absent
 * for an assignment of an existing Arweave transaction (`POST /?process-id&assign`), which the CU then loads
 * from the gateway.
 *
 * `exclude` (since 0.2.0, AOP-1 `POST /?…&exclude=A,B`): the fields the CU should not load for this message;
 * its assignment carries one `Exclude` tag per value, in order, after `Message`.
 *
 * @since 0.1.0
 * @category models
 */
export class Message extends Schema.Class<Message>("Message")({
  id: MessageId,
  raw: Schema.optional(Schema.Uint8ArrayFromSelf),
  exclude: Schema.optional(Schema.Array(Schema.String))
}) {}

/**
 * The hash chain value of slot 0 for `processId`: `b64url(sha256(b64url_decode(processId)))`.
 *
 * @since 0.1.0
 * @category utils
 */
export const initialHashChain = (processId: string): string =>
  Crypto.createHash("sha256").update(Buffer.from(processId, "base64url")).digest("base64url")

/**
 * The hash chain value that follows the assignment `previousAssignmentId` whose chain value was
 * `previousHashChain`: `b64url(sha256(decode(previousAssignmentId) ‖ decode(previousHashChain)))`.
 * Both inputs are decoded to raw bytes, so it is the same before and after a restart.
 *
 * @since 0.1.0
 * @category utils
 */
export const nextHashChain = (previousAssignmentId: string, previousHashChain: string): string =>
  Crypto.createHash("sha256")
    .update(Buffer.from(previousAssignmentId, "base64url"))
    .update(Buffer.from(previousHashChain, "base64url"))
    .digest("base64url")

/**
 * Checks a schedule's hash chain from slot 0: each assignment's `hashChain` must follow from its predecessor
 * and slots must be 0, 1, 2, … Returns the first slot that breaks, or `undefined` when all hold.
 *
 * @since 0.1.0
 * @category utils
 */
export const verifyChain = (
  processId: string,
  assignments: ReadonlyArray<{ readonly id: string; readonly slot: number; readonly hashChain: string }>
): number | undefined => {
  let expected = initialHashChain(processId)
  for (let i = 0; i < assignments.length; i++) {
    const a = assignments[i]!
    if (a.slot !== i || a.hashChain !== expected) return i
    expected = nextHashChain(a.id, a.hashChain)
  }
  return undefined
}

/**
 * Pads a block height to the 12 digits the legacy SU writes in `Block-Height`.
 *
 * @since 0.1.0
 * @category utils
 */
export const padBlockHeight = (height: number): string => String(height).padStart(12, "0")

/**
 * The ao.TN.1 tags of an assignment, in the order the legacy SU writes them (`builder.rs`): the ten fixed tags,
 * then one `Exclude` tag per `exclude` value (AOP-1), in order, untrimmed. Every value is a string.
 *
 * @since 0.1.0
 * @category utils
 */
export const tags = (fields: {
  readonly processId: string
  readonly messageId: string
  readonly slot: number
  readonly epoch: number
  readonly timestamp: number
  readonly blockHeight: number
  readonly hashChain: string
  readonly exclude?: ReadonlyArray<string> | undefined
}): Array<{ name: string; value: string }> => {
  const fixed = [
    { name: "Process", value: fields.processId },
    { name: "Epoch", value: String(fields.epoch) },
    { name: "Nonce", value: String(fields.slot) },
    { name: "Hash-Chain", value: fields.hashChain },
    { name: "Block-Height", value: padBlockHeight(fields.blockHeight) },
    { name: "Timestamp", value: String(fields.timestamp) },
    { name: "Data-Protocol", value: "ao" },
    { name: "Type", value: "Assignment" },
    { name: "Variant", value: "ao.TN.1" },
    { name: "Message", value: fields.messageId }
  ]
  if (fields.exclude !== undefined) for (const value of fields.exclude) fixed.push({ name: "Exclude", value })
  return fixed
}

/**
 * What signs an assignment: the owner (public modulus, 512 bytes) and an effect that signs the ANS-104
 * signature data (the 48-byte deep hash) with RSA-PSS SHA-256. The node wallet signs in-line; a worker pool
 * can sign on other cores.
 *
 * @since 0.1.0
 * @category models
 */
export interface AssignmentSigner {
  readonly owner: Uint8Array
  readonly sign: (signatureData: Uint8Array) => Effect.Effect<Uint8Array>
}

/** One `createData` signer per owner array (a wallet's `owner` lives as long as the wallet). */
const signers = new WeakMap<Uint8Array, Signer>()
const unsignedFor = (owner: Uint8Array): Signer => {
  let signer = signers.get(owner)
  if (signer === undefined) {
    signer = layoutSigner(owner)
    signers.set(owner, signer)
  }
  return signer
}

/**
 * Builds and signs the assignment data item for the given fields: the item is laid out by
 * `@dha-team/arbundles`' `createData`; its signature data (the ANS-104 deep hash) is computed with the owner's
 * constant part folded once (`internal/signature-data.ts`, byte-equal to arbundles' `getSignatureData`); the
 * signature is written into the item and the id is arbundles' `rawId` (sha256 of the signature). Everything
 * but `signer.sign` runs synchronously. Dies only on a library defect.
 *
 * @since 0.1.0
 * @category constructors
 */
export const build = (signer: AssignmentSigner, fields: Omit<Assignment, "id" | "raw">): Effect.Effect<Assignment> =>
  Effect.suspend(() => {
    const item = createData("", unsignedFor(signer.owner), { tags: tags(fields) })
    return Effect.map(signer.sign(assignmentSignatureData(signer.owner, item.rawTags)), (signature) => {
      const raw = item.getRaw()
      raw.set(signature, 2)
      return new Assignment({ ...fields, id: item.id as MessageId, raw }, { disableValidation: true })
    })
  })

/**
 * Verifies an assignment: the data item parses, its signature verifies against its owner, its id matches,
 * and its tags agree with the fields. Returns a reason when it does not hold, `undefined` when it does.
 *
 * @since 0.1.0
 * @category utils
 */
export const verify = (assignment: Assignment): Effect.Effect<string | undefined> =>
  Effect.promise(async () => {
    const raw = Buffer.from(assignment.raw)
    if (!(await DataItem.verify(raw))) return "the data item does not verify"
    const item = new DataItem(raw)
    if (item.id !== assignment.id) return "the id does not match the signature"
    const data = await item.getSignatureData()
    if (!verifySignature(item.rawOwner, data, item.rawSignature)) return "the signature does not verify"
    const expected = tags(assignment)
    const actual = item.tags
    if (JSON.stringify(expected) !== JSON.stringify(actual)) return "the tags do not match the fields"
    return undefined
  })
