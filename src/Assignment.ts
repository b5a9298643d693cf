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
import { assignmentCore } from "./internal/assignment-core.js"
import { nextTurn } from "./internal/next-turn.js"
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
export const initialHashChain = (processId: string): string => core.initialHashChain(processId)

/**
 * The hash chain value that follows the assignment `previousAssignmentId` whose chain value was
 * `previousHashChain`: `b64url(sha256(decode(previousAssignmentId) ‖ decode(previousHashChain)))`.
 * Both inputs are decoded to raw bytes, so it is the same before and after a restart.
 *
 * @since 0.1.0
 * @category utils
 */
export const nextHashChain = (previousAssignmentId: string, previousHashChain: string): string =>
  core.nextHashChain(previousAssignmentId, previousHashChain)

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
export const tags = (fields: TagFields): Array<{ name: string; value: string }> => core.tags(fields)

/**
 * The fields an assignment's tags are made of (`tags`).
 *
 * @since 0.4.0
 * @category models
 */
export interface TagFields {
  readonly processId: string
  readonly messageId: string
  readonly slot: number
  readonly epoch: number
  readonly timestamp: number
  readonly blockHeight: number
  readonly hashChain: string
  readonly exclude?: ReadonlyArray<string> | undefined
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
  /**
   * Signs a run of assignments of one process at once, each chained to the one before (since 0.4.0): a
   * `SignerPool` does it on a signer thread in one round trip. Without it, `signChain` signs them one by one
   * with `sign`.
   */
  readonly signChain?:
    | ((
        start: ChainStart,
        entries: ReadonlyArray<ChainEntry>,
        growth?: ChainGrowth | undefined
      ) => Effect.Effect<ReadonlyArray<SignedLink>>)
    | undefined
}

/**
 * A run that may still grow while it is signed (`signChain` with `growth`, since 0.5.0). The caller pushes
 * entries onto the array it passed and then calls `grew`, which the signer sets while it can still take them (a
 * `SignerPool` sends them to the thread that signs the run, which takes them without a round trip). The signer
 * signs a prefix of the array: every entry it held when the call began, and those that reached it in time.
 *
 * @since 0.5.0
 * @category models
 */
export interface ChainGrowth {
  grew: (() => void) | undefined
}

/**
 * The fields of one assignment of a run that its signer does not choose (`signChain`): the message, the
 * timestamp (ms), the block height, the epoch and the AOP-1 `Exclude` values.
 *
 * @since 0.4.0
 * @category models
 */
export interface ChainEntry {
  readonly messageId: string
  readonly timestamp: number
  readonly blockHeight: number
  readonly epoch: number
  readonly exclude?: ReadonlyArray<string> | undefined
}

/**
 * Where a run of assignments starts (`signChain`): the process, the first slot and that slot's `Hash-Chain`.
 *
 * @since 0.4.0
 * @category models
 */
export interface ChainStart {
  readonly processId: string
  readonly slot: number
  readonly hashChain: string
}

/**
 * One signed assignment of a run (`signChain`): its id, its `Hash-Chain` and its raw ANS-104 bytes.
 *
 * @since 0.4.0
 * @category models
 */
export interface SignedLink {
  readonly id: string
  readonly hashChain: string
  readonly raw: Uint8Array
}

const core = assignmentCore(Crypto)

/**
 * Signs `entries` as slots `start.slot`, `start.slot + 1`, … of `start.processId`, each chained to the one
 * before (`Hash-Chain` of slot n+1 = sha256(id of n ‖ Hash-Chain of n)), and returns the assignments in order.
 * With `signer.signChain` the run is signed in one call (a signer thread); else one by one with `signer.sign`,
 * letting the event loop run between two signatures (an RSA-4096 signature holds the thread for about 3 ms).
 * The bytes are those `build` makes (`test/internal/assignment-core.test.ts`). Dies only on a signer defect.
 *
 * With `growth` (since 0.5.0), `entries` is an array the caller may push to while the run is signed (see
 * `ChainGrowth`); the result is then the signed prefix of it, at least as long as it was at the call. Without
 * it, every entry is signed.
 *
 * @since 0.4.0
 * @category constructors
 */
export const signChain = (
  signer: AssignmentSigner,
  start: ChainStart,
  entries: ReadonlyArray<ChainEntry>,
  growth?: ChainGrowth | undefined
): Effect.Effect<ReadonlyArray<Assignment>> => {
  const assemble = (signed: ReadonlyArray<SignedLink>) =>
    signed.map(
      (link, i) =>
        new Assignment(
          {
            ...entries[i]!,
            messageId: entries[i]!.messageId as MessageId,
            processId: start.processId as ProcessId,
            slot: start.slot + i,
            hashChain: link.hashChain,
            id: link.id as MessageId,
            raw: link.raw
          },
          { disableValidation: true }
        )
    )
  if (signer.signChain !== undefined) {
    const signed = growth === undefined ? signer.signChain(start, entries) : signer.signChain(start, entries, growth)
    return Effect.map(signed, assemble)
  }
  return Effect.suspend(() => {
    const signed: Array<SignedLink> = []
    let hashChain = start.hashChain
    // entries read by index while the loop runs: a growing run's entries pushed meanwhile are signed too
    const from = (i: number): Effect.Effect<ReadonlyArray<SignedLink>> => {
      if (i >= entries.length) return Effect.succeed(signed)
      const entry = entries[i]!
      const list = core.tags({ ...entry, processId: start.processId, slot: start.slot + i, hashChain })
      const rawTags = core.serializeTags(list)
      const one = Effect.flatMap(signer.sign(core.signatureData(signer.owner, rawTags)), (signature) => {
        const id = core.idOf(signature)
        signed.push({ id, hashChain, raw: core.layout(signer.owner, rawTags, list.length, signature) })
        hashChain = core.nextHashChain(id, hashChain)
        return from(i + 1)
      })
      return i === 0 ? one : Effect.zipRight(nextTurn, one)
    }
    return Effect.map(from(0), assemble)
  })
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
