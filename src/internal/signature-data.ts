/**
 * The ANS-104 signature data (deep hash) of an assignment data item, computed with the constant part folded
 * once per owner.
 *
 * ANS-104 signs `deepHash(["dataitem", "1", signatureType, owner, target, anchor, tags, data])`, a left fold of
 * SHA-384 over the eight elements. For an assignment only `tags` varies: the SU's owner is fixed, target,
 * anchor and data are empty. arbundles' `getSignatureData` recomputes all 33 SHA-384 digests (through a chain
 * of promises) for every item; here the fold over the first six elements is kept per owner, and each
 * assignment costs five synchronous digests. `signatureData` computes the whole fold for any item (the node
 * verifies every data item it is sent). `test/internal/signature-data.test.ts` checks both are byte-equal to
 * arbundles' `getSignatureData` for random items.
 */
import * as Crypto from "node:crypto"
import type { Signer } from "@dha-team/arbundles"

const sha384 = (a: Uint8Array, b?: Uint8Array): Buffer => {
  const hash = Crypto.createHash("sha384").update(a)
  return (b === undefined ? hash : hash.update(b)).digest()
}

const utf8 = (text: string): Buffer => Buffer.from(text, "utf8")

/** `deepHash(blob)`: `sha384(sha384("blob" ‖ length) ‖ sha384(blob))`. */
const blobHash = (blob: Uint8Array): Buffer => {
  const outer = Crypto.createHash("sha384")
  outer.update(sha384(utf8(`blob${blob.byteLength}`)))
  outer.update(sha384(blob))
  return outer.digest()
}

const EMPTY = new Uint8Array(0)
const EMPTY_BLOB = blobHash(EMPTY)

/** `deepHash` of a list, from `acc` (the list's tag, or a fold so far): `acc = sha384(acc ‖ deepHash(chunk))`. */
const fold = (acc: Buffer, chunks: ReadonlyArray<Uint8Array>): Buffer => {
  for (const chunk of chunks) acc = sha384(acc, blobHash(chunk))
  return acc
}

/** The tag of an ANS-104 item's 8-element list, where every fold starts. */
const LIST8 = sha384(utf8("list8"))

/** The fold over `["dataitem", "1", "1", owner, target = empty, anchor = empty]`. */
const prefixOf = (owner: Uint8Array): Buffer =>
  fold(LIST8, [utf8("dataitem"), utf8("1"), utf8("1"), owner, EMPTY, EMPTY])

/**
 * The signature data of any data item from its raw fields: the same fold over all eight elements, computed
 * synchronously (arbundles' `getSignatureData` awaits a promise for each of its 33 digests).
 */
export const signatureData = (item: {
  readonly signatureType: number
  readonly owner: Uint8Array
  readonly target: Uint8Array
  readonly anchor: Uint8Array
  readonly tags: Uint8Array
  readonly data: Uint8Array
}): Buffer =>
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

const prefixes = new WeakMap<Uint8Array, Buffer>()

/**
 * The 48-byte signature data of an RSA (signature type 1) data item by `owner` with empty target, anchor and
 * data, whose serialised tags are `rawTags`. `owner` should be one long-lived array per wallet (the prefix is
 * cached by identity).
 */
export const assignmentSignatureData = (owner: Uint8Array, rawTags: Uint8Array): Buffer => {
  let prefix = prefixes.get(owner)
  if (prefix === undefined) {
    prefix = prefixOf(owner)
    prefixes.set(owner, prefix)
  }
  // the last two folds, tags then the empty data (whose deep hash is a constant)
  return sha384(fold(prefix, [rawTags]), EMPTY_BLOB)
}

/**
 * A `createData` signer for an RSA-4096 `owner` (512-byte key and signature) that only lays the item out: arbundles
 * reads its `publicKey` and lengths, and the caller signs the signature data itself and writes the 512 bytes at
 * offset 2 of the raw item.
 */
export const layoutSigner = (owner: Uint8Array): Signer =>
  ({
    publicKey: Buffer.from(owner),
    signatureType: 1,
    signatureLength: 512,
    ownerLength: 512,
    sign: () => {
      throw new Error("unreachable: the item is signed through its signature bytes")
    }
  }) as unknown as Signer
