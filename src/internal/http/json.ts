/**
 * Renders stored data items as the legacy SU's JSON (`servers/su/src/domain/core/json.rs`) and HyperBEAM's
 * `application/http` schedule keys.
 */
import { Either } from "effect"
import type { AssignmentJson, HbAssignment, MessageJson, MessageNode, ProcessJson } from "../../Api.js"
import { type Assignment, tags } from "../../Assignment.js"
import type { Entry } from "../../AssignmentStore.js"
import * as DataItem from "../../DataItem.js"
import { ownerToAddress, SIGNATURE_LENGTH } from "../../Wallet.js"

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

/** Rendering options: `showAnchor` renders non-UTF-8 anchors as base64url (`show-anchor`). */
export interface RenderOptions {
  readonly showAnchor?: boolean | undefined
}

/** A message data item as `MessageInner`; `data` is its payload as (lossy) UTF-8 text. */
export const messageJson = (raw: Uint8Array, options: RenderOptions = {}): typeof MessageJson.Type => {
  const item = decodeStored(raw)
  return {
    id: item.id,
    owner: owner(item),
    data: Buffer.from(item.data.buffer, item.data.byteOffset, item.data.byteLength).toString("utf8"),
    tags: item.tags,
    signature: Buffer.from(item.signature).toString("base64url"),
    anchor: anchorText(item.anchor, options.showAnchor === true),
    target: item.target ?? null
  }
}

/** Owners seen recently (a node has one or a few): their base64url key and address, computed once each. */
const owners = new Map<string, { readonly address: string; readonly key: string }>()

/**
 * An assignment data item as `AssignmentInner`. Assignments are this node's own items, with a fixed layout
 * (RSA-4096: signature type, 512-byte signature, 512-byte owner, no target, no anchor) and tags that follow from
 * the stored fields, so they are rendered from the row without parsing the item again (a page renders 1,000).
 */
export const assignmentJson = (assignment: Assignment, _options: RenderOptions = {}): typeof AssignmentJson.Type => {
  const raw = Buffer.from(assignment.raw.buffer, assignment.raw.byteOffset, assignment.raw.byteLength)
  const key = raw.toString("base64url", 2 + SIGNATURE_LENGTH, 2 + 2 * SIGNATURE_LENGTH)
  let owner = owners.get(key)
  if (owner === undefined) {
    owner = { address: ownerToAddress(raw.subarray(2 + SIGNATURE_LENGTH, 2 + 2 * SIGNATURE_LENGTH)), key }
    if (owners.size >= 16) owners.clear()
    owners.set(key, owner)
  }
  return {
    id: assignment.id,
    owner,
    tags: tags(assignment),
    signature: raw.toString("base64url", 2, 2 + SIGNATURE_LENGTH),
    anchor: null,
    target: null
  }
}

/** A schedule entry as `{message, assignment}`; `message` is null for an assigned on-chain tx. */
export const nodeJson = (entry: Entry, options: RenderOptions = {}): typeof MessageNode.Type => ({
  message: entry.message === undefined ? null : messageJson(entry.message, options),
  assignment: assignmentJson(entry.assignment, options)
})

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

/** A schedule entry as a HyperBEAM assignment with its message as `body`. */
export const hbAssignmentJson = (entry: Entry): typeof HbAssignment.Type => {
  const a = entry.assignment
  return {
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
    message: a.messageId,
    body: entry.message === undefined ? null : messageJson(entry.message)
  }
}
