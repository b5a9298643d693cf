/**
 * A fixed RSA-4096 Arweave key for tests, so that no test pays for generating one (a second or more of CPU).
 *
 * **A test key, never for production**: its private half is published in this package, so anything it signs
 * proves nothing. Every test that uses it signs with the same key and the same 43-character `address`, which
 * makes owners and ids of assignments reproducible across runs (RSA-PSS signatures still vary: the salt is
 * random).
 *
 * @since 0.2.0
 */
import { Effect, Layer } from "effect"
import * as Wallet from "../Wallet.js"

/**
 * The test key as an Arweave JWK (`kty: "RSA"`, `e: "AQAB"`, a 4096-bit modulus `n`, every field unpadded
 * base64url). Write it to a file (`JSON.stringify(jwk)`) for code that takes a key file, such as
 * `Wallet.layerFile` or `su serve --wallet`. **Never use it in production.**
 *
 * @since 0.2.0
 * @category constants
 */
export const jwk: Wallet.ArweaveJwk = {
  kty: "RSA",
  n: "5oh6EkdbNtJtJlA4ZX8rcoyynvm0T6sn3UNF6CpgR0Ddi5I7EGn2F65zoc9VqdZt6Rys9y-KLHE3kUUOw35adEMgkbTddthgLodRJgsev0PXKmItdnowSA0_wHwTefFnwWQQZkrzv0pAcMaX4M8F-4lu34vN8LUlA0zXU2tSkfNQ7s4MPz0bhDVEBUM3il0qS0ititlmfGaREg_XpUboLaIbTBXG9f6jeDoGICgKqyauSsAutNADHdCKdrmdgNJqSeDRpPDOc9Ds88k1KXJcUqkI3VmdbbIfUJ0qYepCX-dyxnw5Hd85mUYMOZtulJFrGzGmJvr_ISOrGti5YD0QWDj7iADwwKZUji1TH7f51SFqsxN1crmGfCt0lDSWiI0XP9Y3QJjoAAKAtJm_ckEZS7cXXQ7AeVlwUFUb8a1gxcQr__muRsray3i27MXMa54S_uVXcoGGGGyWMT3w2TC4KCBXhUrnpguN7axUVgj64sdMdG4TrjFHVhl0ZTrShQR-cilFtLKQMYMIRXKxfWz3BfvWKtJMKCIXDvRzZEvyeYVOnqsn1r8elx7iQIA_dJomM0dKVMOcX_GvLuTfK_FNOoZnKQYLBI_Rn6BRgC8i7DYLQ7aI1eHcgHKA0HG3tl94cu1jCYmBmhAMqb42C7IxFLj7DwjDxj9ube5h9LDfgFk",
  e: "AQAB",
  d: "MgZTAPTpgvGyHEKDnmi0V6DW4N78JN6V4bJnsMvDRSr6-D604OixbW2ea3Inm1lr0840bVYsVF0ECxqya7MXM0vevSeDeDbXVjloX0pB84yn2-tehKtan0P6vcze2BMNqf5J_byNfIjDB4XcrryVxoHJ5Kn8eBuCyt7JifFLw16KhSuCplVfC3cYidDOdFCnrRr6B5uJ3PxPxhzYdWW327El3cKLAFXviJcEvcUanY2g_BkMeZF636UhasZ3-lyOknX94B4eGq0vQe57QgFuLcS-5vN7kTJ6D57vM7ynBxMdCZuqtEP8hnlYDUcgfY45sPa64JIOO1V3W3XEcjEGAslyL89y9e9SOFkaV4iI3cSPmO23FGkVFkBTOjkpcN98DBD-TtLa4S2NXchjJQwNqjM_Ch0MnU2EIKYKO7XWOC1MFKARHTOMvj-uk08igEhaqkrcMljK1J7b8_gqhEh0B50NDQF3Oj9WvljsG1fO0VxMpv4Ziu1BbCJuQU6Xgq4iQI7e7nlk_k418pXRxTQmFePh1-yJ4WJU8KINvUFztE2dkf1g4rQnMUQLFzcYWzr-vgQSW9SocTr-5s6XDTV_uQoDndw9AxRQOjfiEerK3FAR-wPoWNCo6kleLA3I-d4ct20owGuZfreeUa7kuOIy3-HP6icDgF5pvEhRcIJnnoU",
  p: "-Nb3pHfpQTNqX3FT6eAAe82i1b9c-1RfCkYhKdFeLNVK9BOb48BIlEp1Z-IG0HMgD8XSQbCW4eIHXUovT4xN6jBSfhbYZ5m1uW2Xb36Vsx--sC6-9X_7Kc3P3kpFSdBQjjvtC6hDdyQl0U1532xYtXPvOQmEpm5M9hfM5ClqVh6BkVIcfd2zkM164XKdnHUbpjyn0R6PCOV0Av-Ix40TIPt7vzmJxNS4U9IJdukAUM_Io5pFDjfJGWn-umKHE6cQqfZk4kIJfXeFrf626Z39D-_CsqJBVOLZ1o0gZLigbu0Srz8r5ug_RVSFR_MpOAtDEtYQNRe9saWG31Fmc3MBnQ",
  q: "7SqoPxSEo2gLLV7hNM3h7JTQh3G0erkCTgue4a3uCGCH3yYXISirhPlB1PdkY5S1klVyTLx16amQHEKvejuPm7rwCQFASJq67q6vWBAFWDkdjgknrFCdLJhLDMqRT3JXo5fQ0M0lOvhBz5jKjLazmLAyY1MhOZV-GELs8CRwcy3OtDtOJJYzDrLTwI9YBzVAfkvV3cu0SRNhvo-WWl5SJfPoczU152cTAYvxGS1xC1-R6ryBp_M5V9DLtdLOVvleeE0k3O4WzR0brV1OmaN2XcjSoV1Mg56R7yZbqpCucKF0KdBB8x688i-0pwmM3oSYDiHdJLFZs0-bVMnXROxq7Q",
  dp: "FbftdVVh7mbmad4iTM9YO3X_OFizbNw4T1U_n76-UXtsR1FO0dn-e7Lj_GUl4xupOLczWrhm8uAfdGz9JBxC0KXXDVpBGQm5aq2-AeUye6fRpN7vm83HxiZIdkZVNdQQs9lXHyVYfhWRl2sDsBRsyamMv5WtFjmaTgBVybQzq8CN3nkkM3geLA1DJFo0l2tBNokkvIPGSCh-r6RN89zERqSscEw9Ugie7fHvEYnUlTkNcfoM_OixjJ5LtUjUMUrrkWoH9Bd_bIv6Bu2sWUeIxtNOUvkGarpB-Q_oO-JBXm0irFj_I_AxVYPC_jyi5FlXSVWVpIyl6dNgqi0YnAr1oQ",
  dq: "IgrQcZWBYG8rw4xt6QVwW2QU9owUqtTphshWOvCbTSqF9jricQkEbabVkzsbdsu-sE2BhZA7oJmNLPFJfNMVzvWrRK-gSYukL2R1mL9b9QjlvCCGSE6d8Ou_QgvFhdDU0Y-WEpKPuIIv-BtnX4FOECmiYe1pxHk3y0W3-tRQK8g0dlxY4BmLJJ34lRg-O3KiWj6KaTa3HxIgIpk7rKcDRZ1YDUli_l8mND-hEMscAdTq_fWm6rOX1IoM44FpysQqkjwIgYnPTgvSkDTndlgnQlj0GuNoezAEpH4uBDKWR2Z1ZRcWkE4mMuE0HhHZ3YrMxKKJup2WUY2oryf1tVf2FQ",
  qi: "H7zCZ9PDyH2bxCGc_VVjxXpKJiIUGyYRVpUU2herU22Ei6aTT5V_51_i19m6_XP_syhPimgOkl8dO7HU3Oo25n6uPFDv-r1oJGuAAn01Jtef7X64B2fUpCEl5wxlgpHrJh2qHssGTKziV_RJ-WqHNxxKe5ERhJvlsZSXJQRzp-rteLn1HpRElWEEK2mJE8JNlcoY8W1HtraSfbEn-mLAfn5VvvV_KaNU9LjaNyFuj1q_TuwbYzqo-bxZYPWSZWmHUOoY-ddOx-jkaR53leP0XQU5rFobVvEkNBe5oD6GXcf3qkZZPcRURbFOcz3Kxsy_uOchGhzh7l86zSioSTZOOg",
  ext: true
}

/**
 * The test key's ao/Arweave address: base64url(sha256(n)), 43 characters.
 *
 * @since 0.2.0
 * @category constants
 */
export const address: string = Wallet.ownerToAddress(Buffer.from(jwk.n, "base64url"))

/**
 * The `Wallet` service over the test key (`jwk`). Building it parses the key and checks it with one signature
 * (a few milliseconds, no key generation). Never fails: the key is known to be valid, so a failure would be a
 * defect.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 * import { TestWallet } from "effect-scheduler-registry/testing"
 *
 * const program = Effect.gen(function* () {
 *   const wallet = yield* Wallet.Wallet
 *   return wallet.address // === TestWallet.address
 * }).pipe(Effect.provide(TestWallet.layer))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<Wallet.Wallet> = Layer.effect(Wallet.Wallet, Effect.orDie(Wallet.make(jwk)))
