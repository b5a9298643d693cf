/**
 * Renders stored data items as the legacy SU's JSON (`servers/su/src/domain/core/json.rs`) and HyperBEAM's
 * `application/http` schedule keys.
 */
import { DataItem as AnsDataItem } from "@dha-team/arbundles"
import { Either } from "effect"
import { type Assignment, padBlockHeight } from "../Assignment.js"
import type { Entry } from "../AssignmentStore.js"
import * as DataItem from "../DataItem.js"
import { ownerToAddress, SIGNATURE_LENGTH } from "../Wallet.js"
import type { HbAssignment, HbScheduled, MessageJson, MessageNode, ProcessJson } from "../WireFormat.js"
import { cacheByOwner } from "./by-owner.js"

/** base64url of 32 zero bytes: the `block-hash` of a node without a gateway (HyperBEAM's `{0, 0, <<0:256>>}`). */
export const ZERO_BLOCK_HASH = Buffer.alloc(32).toString("base64url")

const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

/** `bytes` as UTF-8 text, or `undefined` when they are not valid UTF-8 (Rust's `String::from_utf8`). */
const utf8OrUndefined = (bytes: Uint8Array): string | undefined => {
  try {
    return strictUtf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** The anchor as upstream renders it: UTF-8 text, else base64url with `showAnchor`, else null. */
const anchorText = (anchor: Uint8Array | undefined, showAnchor: boolean): string | null => {
  if (anchor === undefined) return null
  const text = utf8OrUndefined(anchor)
  if (text !== undefined) return text
  return showAnchor ? Buffer.from(anchor).toString("base64url") : null
}

/** Decodes bytes this node stored; a failure is a corrupt store, a defect. */
const decodeStored = (raw: Uint8Array): DataItem.DataItem => Either.getOrThrow(DataItem.decode(raw))

const owner = (item: DataItem.DataItem) => ({
  address: item.ownerAddress,
  key: Buffer.from(item.owner).toString("base64url")
})

/** Render options: `showAnchor` renders a non-UTF-8 anchor as base64url instead of null. */
export interface RenderOptions {
  readonly showAnchor?: boolean | undefined
}

/** `{address, key}` of an owner, as JSON text. */
type OwnerJson = { readonly address: string; readonly key: string; readonly text: string }

/** The last few owners' JSON: a page holds many items of few owners (the SU, a few clients). */
const ownerOf = cacheByOwner(8, (owner): OwnerJson => {
  const key = owner.toString("base64url")
  const address = ownerToAddress(owner)
  return { address, key, text: JSON.stringify({ address, key }) }
})

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/**
 * A stored message data item as the legacy JSON text (`MessageJson`, keys in the schema's order). Stored items
 * were decoded and verified when they were scheduled, so they are read here with arbundles' getters only; `id`
 * is the stored message id when the caller has it (computing it again hashes the signature). Base64url values
 * need no escaping; tags, anchor and data go through `JSON.stringify`.
 *
 * Pages are rendered as text, not as objects for `Schema` to encode and `JSON.stringify` to scan again: that
 * tripled the time of a 1,000-edge page. The object forms below parse this text, so there is one renderer.
 */
export const messageJsonText = (raw: Uint8Array, options: RenderOptions = {}, id?: string | undefined): string => {
  const item = new AnsDataItem(asBuffer(raw))
  const anchor = item.rawAnchor
  const rawTarget = item.rawTarget
  const target = rawTarget.byteLength === 0 ? "null" : `"${rawTarget.toString("base64url")}"`
  return `{"id":"${id ?? item.id}","owner":${ownerOf(item.rawOwner).text},"tags":${JSON.stringify(item.tags)},"signature":"${item.rawSignature.toString("base64url")}","anchor":${JSON.stringify(anchorText(anchor.byteLength === 0 ? undefined : anchor, options.showAnchor === true))},"target":${target},"data":${JSON.stringify(item.rawData.toString("utf8"))}}`
}

/**
 * `Assignment.tags(assignment)` as JSON text. The values are ids (base64url, checked when the row was read),
 * decimal numbers and constants, none of which JSON escapes, except the hash chain, which is stringified.
 */
const assignmentTagsText = (a: Assignment): string =>
  `[{"name":"Process","value":"${a.processId}"},{"name":"Epoch","value":"${a.epoch}"},{"name":"Nonce","value":"${a.slot}"},{"name":"Hash-Chain","value":${JSON.stringify(a.hashChain)}},{"name":"Block-Height","value":"${padBlockHeight(a.blockHeight)}"},{"name":"Timestamp","value":"${a.timestamp}"},{"name":"Data-Protocol","value":"ao"},{"name":"Type","value":"Assignment"},{"name":"Variant","value":"ao.TN.1"},{"name":"Message","value":"${a.messageId}"}${a.exclude === undefined ? "" : a.exclude.map((v) => `,{"name":"Exclude","value":${JSON.stringify(v)}}`).join("")}]`

/**
 * An assignment as the legacy JSON text (`AssignmentJson`), from the stored row: the fixed RSA-4096 layout and
 * the tags of its fields. Its anchor and target are null.
 */
export const assignmentJsonText = (assignment: Assignment): string => {
  const raw = asBuffer(assignment.raw)
  const owner = ownerOf(raw.subarray(2 + SIGNATURE_LENGTH, 2 + 2 * SIGNATURE_LENGTH))
  return `{"id":"${assignment.id}","owner":${owner.text},"tags":${assignmentTagsText(assignment)},"signature":"${raw.toString("base64url", 2, 2 + SIGNATURE_LENGTH)}","anchor":null,"target":null}`
}

/** `{message, assignment}` (`MessageNode`) as JSON text; `message` is null for an assignment of a transaction. */
export const nodeJsonText = (entry: Entry, options: RenderOptions = {}): string =>
  `{"message":${entry.message === undefined ? "null" : messageJsonText(entry.message, options, entry.assignment.messageId)},"assignment":${assignmentJsonText(entry.assignment)}}`

/** A stored message data item as the legacy JSON object (the parsed `messageJsonText`). */
export const messageJson = (raw: Uint8Array, options: RenderOptions = {}): typeof MessageJson.Type =>
  JSON.parse(messageJsonText(raw, options))

/** `{message, assignment}` as the legacy JSON object (the parsed `nodeJsonText`). */
export const nodeJson = (entry: Entry, options: RenderOptions = {}): typeof MessageNode.Type =>
  JSON.parse(nodeJsonText(entry, options))

/** A process's slot-0 entry as `GET /processes/{id}` renders it. */
export const processJson = (entry: Entry & { readonly message: Uint8Array }): typeof ProcessJson.Type => {
  const item = decodeStored(entry.message)
  const a = entry.assignment
  return {
    process_id: item.id,
    block: String(a.blockHeight).padStart(12, "0"),
    owner: owner(item),
    tags: item.tags,
    timestamp: a.timestamp,
    data: utf8OrUndefined(item.data) ?? null,
    anchor: anchorText(item.anchor, false),
    signature: Buffer.from(item.signature).toString("base64url"),
    target: item.target ?? null
  }
}

/** An assignment as HyperBEAM's assignment keys, without the message (`body`). */
export const hbScheduledJson = (a: Assignment): typeof HbScheduled.Type => ({
  id: a.id,
  "data-protocol": "ao",
  variant: "ao.TN.1",
  type: "Assignment",
  process: a.processId,
  epoch: a.epoch,
  slot: a.slot,
  timestamp: a.timestamp,
  "block-height": a.blockHeight,
  "block-hash": ZERO_BLOCK_HASH,
  "hash-chain": a.hashChain,
  message: a.messageId
})

/** A schedule entry as a HyperBEAM assignment with its message as `body`. */
export const hbAssignmentJson = (entry: Entry): typeof HbAssignment.Type => ({
  ...hbScheduledJson(entry.assignment),
  body: entry.message === undefined ? null : messageJson(entry.message)
})
