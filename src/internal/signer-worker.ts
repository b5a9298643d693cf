/**
 * A signer worker thread: parses the key it gets in `InitialMessage` once, then answers each `Sign` with an
 * RSA-PSS SHA-256 signature (salt 32 bytes), synchronously on this thread. Started by `SignerPool`.
 */
import * as Crypto from "node:crypto"
import { WorkerRunner } from "@effect/platform"
import { NodeRuntime, NodeWorkerRunner } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { SignerRequest } from "./signer-protocol.js"

class Key extends Context.Tag("effect-scheduler-registry/internal/signer-worker/Key")<Key, Crypto.KeyObject>() {}

const options = { padding: Crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } as const

WorkerRunner.layerSerialized(SignerRequest, {
  InitialMessage: ({ jwk }) => Layer.sync(Key, () => Crypto.createPrivateKey({ key: { ...jwk }, format: "jwk" })),
  Sign: ({ data }) => Effect.map(Key, (key) => Crypto.sign("sha256", data, { key, ...options }))
}).pipe(Layer.provide(NodeWorkerRunner.layer), WorkerRunner.launch, NodeRuntime.runMain)
