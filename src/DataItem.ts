/**
 * ANS-104 data items as clients send them to the SU: decoding, signature verification and the ao.TN.1 tags the
 * SU routes on.
 *
 * Mirrors the legacy ao SU's `Builder::parse_data_item` / `DataItem::from_bytes_verify`
 * (`servers/su/src/domain/core/bytes.rs`): every item POSTed to `/` is parsed and its signature verified before
 * anything is scheduled. Parsing and verification are done by `@dha-team/arbundles`, the ANS-104 library that
 * aoconnect signs with.
 *
 * @since 0.1.0
 */
import { DataItem as AnsDataItem, byteArrayToLong, MAX_TAG_BYTES, MIN_BINARY_SIZE } from "@dha-team/arbundles"
import { Effect, Either } from "effect"
import { InvalidDataItem } from "./errors.js"
import { signatureData } from "./internal/signature-data.js"
import type { MessageId } from "./ProcessId.js"
import { ownerToAddress, verify as verifyRsa } from "./Wallet.js"

/**
 * One ANS-104 tag. Names and values are UTF-8 strings.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tag {
  readonly name: string
  readonly value: string
}

/**
 * A decoded data item. Byte fields are views into `raw`, which is never copied.
 *
 * - `id`: base64url(sha256(signature)), 43 characters.
 * - `signatureType`: the ANS-104 signature type (1 = Arweave RSA-PSS, 4096-bit).
 * - `owner`: the signer's public key bytes (512 bytes for Arweave); `ownerAddress`: base64url(sha256(owner)),
 *   as the legacy SU computes `owner.address` for every signature type.
 * - `target`: the 43-character target id, or `undefined` when the item has none.
 * - `anchor`: the anchor bytes (32 when present), or `undefined`.
 * - `tags`: in the order they were signed; `data`: the payload bytes.
 *
 * @since 0.1.0
 * @category models
 */
export interface DataItem {
  readonly id: MessageId
  readonly raw: Uint8Array
  readonly signatureType: number
  readonly signature: Uint8Array
  readonly owner: Uint8Array
  readonly ownerAddress: string
  readonly target: string | undefined
  readonly anchor: Uint8Array | undefined
  readonly tags: ReadonlyArray<Tag>
  readonly data: Uint8Array
}

const invalid = (reason: string) => Either.left(new InvalidDataItem({ reason }))

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/**
 * Decodes the ANS-104 layout of `raw` without checking the signature: for bytes this node stored itself.
 * Fails with `InvalidDataItem` when `raw` is too short, has an unknown signature type, is truncated inside its
 * header or its tags do not decode.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decode = (raw: Uint8Array): Either.Either<DataItem, InvalidDataItem> => {
  if (raw.byteLength < MIN_BINARY_SIZE) {
    return invalid(`expected an ANS-104 data item of at least ${MIN_BINARY_SIZE} bytes, got ${raw.byteLength}`)
  }
  const item = new AnsDataItem(toBuffer(raw))
  try {
    const signatureType = item.signatureType
    const dataStart = item.getStartOfData()
    if (!Number.isSafeInteger(dataStart) || dataStart > raw.byteLength) {
      return invalid("the data item is truncated (its header is longer than the body)")
    }
    const tagBytes = item.rawTags.byteLength
    if (tagBytes > MAX_TAG_BYTES) return invalid(`its tags take ${tagBytes} bytes; ANS-104 allows ${MAX_TAG_BYTES}`)
    const tagsStart = dataStart - 16 - tagBytes
    const declaredTags = byteArrayToLong(item.getRaw().subarray(tagsStart, tagsStart + 8))
    const tags = item.tags
    if (tags.length !== declaredTags) {
      return invalid(`its header declares ${declaredTags} tags but ${tags.length} decode`)
    }
    const target = item.rawTarget
    const anchor = item.rawAnchor
    return Either.right({
      id: item.id as MessageId,
      raw,
      signatureType,
      signature: item.rawSignature,
      owner: item.rawOwner,
      ownerAddress: ownerToAddress(item.rawOwner),
      target: target.byteLength === 0 ? undefined : item.target,
      anchor: anchor.byteLength === 0 ? undefined : anchor,
      tags,
      data: item.rawData
    })
  } catch (e) {
    return invalid(`not an ANS-104 data item (${(e as Error).message.split("\n")[0]})`)
  }
}

/** Arweave (RSA-PSS) signatures are checked with Node's crypto: arbundles' `ArweaveSigner.verify` logs each failure. */
const ARWEAVE_SIGNATURE = 1

/**
 * Whether the signature verifies. Arweave (RSA-PSS) items, the ones ao clients send, are checked synchronously:
 * the deep hash in one pass (`internal/signature-data`) and the owner's parsed public key reused; other
 * signature types go through arbundles' `DataItem.verify`.
 */
const signatureValid = (item: DataItem): Effect.Effect<boolean> => {
  if (item.signatureType !== ARWEAVE_SIGNATURE) {
    return Effect.promise(() => AnsDataItem.verify(toBuffer(item.raw)).catch(() => false))
  }
  return Effect.sync(() => {
    const ans = new AnsDataItem(toBuffer(item.raw))
    const data = signatureData({
      signatureType: item.signatureType,
      owner: item.owner,
      target: ans.rawTarget,
      anchor: ans.rawAnchor,
      tags: ans.rawTags,
      data: ans.rawData
    })
    return verifyRsa(item.owner, data, item.signature)
  })
}

/**
 * Decodes `raw` (`decode`: layout and tag encoding, as arbundles' `DataItem.verify` checks them) and verifies its
 * signature over the ANS-104 deep hash (arbundles' `getSignatureData`; RSA-PSS with any salt length for Arweave
 * keys, the library's verifier for other signature types). Fails with `InvalidDataItem` naming what is wrong:
 * too short or truncated, unknown signature type, bad tags, not signed (an all-zero signature), or a signature
 * that does not verify (tampered, truncated data, or signed with another key).
 *
 * @since 0.1.0
 * @category constructors
 */
export const verify = (raw: Uint8Array): Effect.Effect<DataItem, InvalidDataItem> =>
  Effect.flatMap(decode(raw), (item) => {
    if (item.signature.every((b) => b === 0)) {
      return Effect.fail(new InvalidDataItem({ reason: "the data item is not signed" }))
    }
    return signatureValid(item).pipe(
      Effect.filterOrFail(
        (valid) => valid,
        () =>
          new InvalidDataItem({
            reason: "the signature does not verify (the data item was altered, truncated or signed by another key)"
          })
      ),
      Effect.as(item)
    )
  })

/**
 * The value of the first tag called `name`, or `undefined`. Names compare exactly, as the legacy SU does.
 *
 * @since 0.1.0
 * @category utils
 */
export const tagValue = (item: Pick<DataItem, "tags">, name: string): string | undefined =>
  item.tags.find((t) => t.name === name)?.value
