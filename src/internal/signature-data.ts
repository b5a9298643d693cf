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
import { assignmentCore } from "./assignment-core.js"

const core = assignmentCore(Crypto)

/**
 * The signature data of any data item from its raw fields: the same fold over all eight elements, computed
 * synchronously (arbundles' `getSignatureData` awaits a promise for each of its 33 digests).
 */
export const signatureData = core.itemSignatureData

/**
 * The 48-byte signature data of an RSA (signature type 1) data item by `owner` with empty target, anchor and
 * data, whose serialised tags are `rawTags`. `owner` should be one long-lived array per wallet (the prefix is
 * cached by identity).
 */
export const assignmentSignatureData = core.signatureData

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
