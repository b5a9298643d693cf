/**
 * The assignment data item without a library: its tags, their ANS-104 (Avro) serialisation, the raw layout, the
 * signature data (deep hash) and the signing of a run of chained assignments, synchronous and self-contained.
 *
 * `assignmentCore` closes over nothing but its `crypto` argument, so that a signer thread can run the very same
 * code from its source text (`assignmentCoreSource`) with no module loader and no Effect runtime: the thread
 * costs a few MB instead of a second copy of the node's modules. `test/internal/assignment-core.test.ts`
 * checks every byte against `@dha-team/arbundles` (`createData`, `getSignatureData`, `rawId`).
 *
 * Source: ANS-104 (the data item format and its deep hash), ao's legacy SU `builder.rs` (the tags, in order) and
 * its hash chain (`Hash-Chain` of slot n+1 = sha256(id of n ‖ Hash-Chain of n)).
 */
import type * as NodeCrypto from "node:crypto"
import type { ChainEntry, ChainStart, SignedLink, TagFields } from "../Assignment.js"

export interface AssignmentCore {
  readonly tags: (fields: TagFields) => Array<{ name: string; value: string }>
  readonly serializeTags: (tags: ReadonlyArray<{ readonly name: string; readonly value: string }>) => Uint8Array
  readonly signatureData: (owner: Uint8Array, rawTags: Uint8Array) => Buffer
  /** The signature data (deep hash) of any data item from its raw fields. */
  readonly itemSignatureData: (item: {
    readonly signatureType: number
    readonly owner: Uint8Array
    readonly target: Uint8Array
    readonly anchor: Uint8Array
    readonly tags: Uint8Array
    readonly data: Uint8Array
  }) => Buffer
  readonly layout: (owner: Uint8Array, rawTags: Uint8Array, tagCount: number, signature: Uint8Array) => Uint8Array
  readonly initialHashChain: (processId: string) => string
  readonly nextHashChain: (previousId: string, previousHashChain: string) => string
  readonly idOf: (signature: Uint8Array) => string
  /**
   * Signs `entries` as slots `start.slot`, `start.slot + 1`, … chained from `start.hashChain`, with `sign` (the
   * RSA-PSS signature of the 48-byte deep hash). Returns the signed items in order.
   */
  readonly signChain: (
    owner: Uint8Array,
    sign: (data: Uint8Array) => Uint8Array,
    start: ChainStart,
    entries: ReadonlyArray<ChainEntry>
  ) => Array<SignedLink>
}

/** The core over `crypto` (Node's `node:crypto`). Self-contained: it must not refer to anything outside itself. */
export function assignmentCore(crypto: typeof NodeCrypto): AssignmentCore {
  const sha384 = (a: Uint8Array, b?: Uint8Array): Buffer => {
    const hash = crypto.createHash("sha384").update(a)
    return (b === undefined ? hash : hash.update(b)).digest()
  }
  const utf8 = (text: string): Buffer => Buffer.from(text, "utf8")
  const blobHash = (blob: Uint8Array): Buffer => {
    const outer = crypto.createHash("sha384")
    outer.update(sha384(utf8(`blob${blob.byteLength}`)))
    outer.update(sha384(blob))
    return outer.digest()
  }
  const EMPTY = new Uint8Array(0)
  const EMPTY_BLOB = blobHash(EMPTY)
  const LIST8 = sha384(utf8("list8"))
  const fold = (acc: Buffer, chunks: ReadonlyArray<Uint8Array>): Buffer => {
    for (const chunk of chunks) acc = sha384(acc, blobHash(chunk))
    return acc
  }
  const prefixes = new WeakMap<Uint8Array, Buffer>()

  const signatureData = (owner: Uint8Array, rawTags: Uint8Array): Buffer => {
    let prefix = prefixes.get(owner)
    if (prefix === undefined) {
      prefix = fold(LIST8, [utf8("dataitem"), utf8("1"), utf8("1"), owner, EMPTY, EMPTY])
      prefixes.set(owner, prefix)
    }
    return sha384(fold(prefix, [rawTags]), EMPTY_BLOB)
  }

  const itemSignatureData: AssignmentCore["itemSignatureData"] = (item) =>
    fold(LIST8, [
      utf8("dataitem"),
      utf8("1"),
      utf8(String(item.signatureType)),
      item.owner,
      item.target,
      item.anchor,
      item.tags,
      item.data
    ])

  /** Avro's zig-zag variable-length long, as arbundles' `AVSCTap.writeLong` (non-negative lengths only here). */
  const writeLong = (out: Array<number>, n: number) => {
    let m = n * 2
    while (m >= 128) {
      out.push((m % 128) | 0x80)
      m = Math.floor(m / 128)
    }
    out.push(m)
  }

  const serializeTags = (tags: ReadonlyArray<{ readonly name: string; readonly value: string }>): Uint8Array => {
    if (tags.length === 0) return EMPTY
    const parts: Array<Uint8Array> = []
    const head: Array<number> = []
    writeLong(head, tags.length)
    parts.push(Uint8Array.from(head))
    for (const tag of tags) {
      for (const text of [tag.name, tag.value]) {
        const bytes = utf8(text)
        const length: Array<number> = []
        writeLong(length, bytes.length)
        parts.push(Uint8Array.from(length), bytes)
      }
    }
    parts.push(Uint8Array.of(0))
    return Buffer.concat(parts)
  }

  const padBlockHeight = (height: number): string => String(height).padStart(12, "0")

  const tags: AssignmentCore["tags"] = (fields) => {
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

  /** ANS-104 layout: type 1 (2 bytes LE), signature, owner, no target, no anchor, tag count and length (8 bytes LE each), tags, no data. */
  const layout = (owner: Uint8Array, rawTags: Uint8Array, tagCount: number, signature: Uint8Array): Uint8Array => {
    const raw = Buffer.alloc(2 + 512 + 512 + 1 + 1 + 16 + rawTags.length)
    raw.writeUInt16LE(1, 0)
    raw.set(signature, 2)
    raw.set(owner, 514)
    const tagsAt = 1028
    raw.writeUInt32LE(tagCount, tagsAt)
    raw.writeUInt32LE(rawTags.length, tagsAt + 8)
    raw.set(rawTags, tagsAt + 16)
    return raw
  }

  const initialHashChain = (processId: string): string =>
    crypto.createHash("sha256").update(Buffer.from(processId, "base64url")).digest("base64url")

  const nextHashChain = (previousId: string, previousHashChain: string): string =>
    crypto
      .createHash("sha256")
      .update(Buffer.from(previousId, "base64url"))
      .update(Buffer.from(previousHashChain, "base64url"))
      .digest("base64url")

  const idOf = (signature: Uint8Array): string => crypto.createHash("sha256").update(signature).digest("base64url")

  const signChain: AssignmentCore["signChain"] = (owner, sign, start, entries) => {
    const out: Array<SignedLink> = []
    let hashChain = start.hashChain
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!
      const list = tags({ ...entry, processId: start.processId, slot: start.slot + i, hashChain })
      const rawTags = serializeTags(list)
      const signature = sign(signatureData(owner, rawTags))
      const id = idOf(signature)
      out.push({ id, hashChain, raw: layout(owner, rawTags, list.length, signature) })
      hashChain = nextHashChain(id, hashChain)
    }
    return out
  }

  return {
    tags,
    serializeTags,
    signatureData,
    itemSignatureData,
    layout,
    initialHashChain,
    nextHashChain,
    idOf,
    signChain
  }
}

/**
 * The core's source text, to evaluate in a thread as `(${assignmentCoreSource})(require("node:crypto"))`. A
 * transpiler may wrap names in `__name(…)` calls (esbuild's keepNames): the thread defines `__name` first.
 */
export const assignmentCoreSource: string = assignmentCore.toString()
