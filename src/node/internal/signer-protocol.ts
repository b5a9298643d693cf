/**
 * The messages between `SignerPool` and its worker threads (`signer-worker.ts`): the key once, at start, then
 * one `Sign` per batch of signatures (the data to sign in, the signatures out, in the same order). Shared by both
 * sides so the schemas cannot drift apart.
 */
import { Schema } from "effect"
import { Jwk } from "../../Wallet.js"

/** The private key as an RSA JWK (unpadded base64url fields), sent to each worker once, when it starts. */
export class InitialMessage extends Schema.TaggedRequest<InitialMessage>()("InitialMessage", {
  failure: Schema.Never,
  success: Schema.Void,
  payload: {
    jwk: Jwk
  }
}) {}

/** Signs `data` (an ANS-104 deep hash, 48 bytes) with RSA-PSS SHA-256, salt 32 bytes; replies 512 bytes. */
export class Sign extends Schema.TaggedRequest<Sign>()("Sign", {
  failure: Schema.Never,
  success: Schema.Array(Schema.Uint8ArrayFromSelf),
  payload: { data: Schema.Array(Schema.Uint8ArrayFromSelf) }
}) {}

export const SignerRequest = Schema.Union(InitialMessage, Sign)

/** Every request a signer worker takes. */
export type SignerRequest = typeof SignerRequest.Type
