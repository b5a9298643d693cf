/**
 * A signer worker thread: parses the key it gets in `InitialMessage` once, then answers each `Sign` batch with
 * RSA-PSS SHA-256 signatures (salt 32 bytes), one per input in order, synchronously on this thread. Started by `SignerPool`.
 */
import * as Crypto from "node:crypto"
import * as Os from "node:os"
import { WorkerRunner } from "@effect/platform"
import { NodeRuntime, NodeWorkerRunner } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { SignerRequest } from "./signer-protocol.js"

class Key extends Context.Tag("effect-scheduler-registry/internal/signer-worker/Key")<Key, Crypto.KeyObject>() {}

/**
 * On Linux a thread has its own nice value, and `setpriority(PRIO_PROCESS, 0)` sets the calling thread's. A
 * signer runs slightly below the main thread, so that the main thread (HTTP, store, handing out the next
 * batch) gets a core at once when both are busy signing. Best effort: ignored where it is not allowed.
 */
try {
  Os.setPriority(0, Math.min(19, Os.getPriority(0) + 5))
} catch {
  // not permitted or not supported: run at the main thread's priority
}

const options = { padding: Crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } as const

WorkerRunner.layerSerialized(SignerRequest, {
  InitialMessage: ({ jwk }) => Layer.sync(Key, () => Crypto.createPrivateKey({ key: { ...jwk }, format: "jwk" })),
  Sign: ({ data }) => Effect.map(Key, (key) => data.map((bytes) => Crypto.sign("sha256", bytes, { key, ...options })))
}).pipe(Layer.provide(NodeWorkerRunner.layer), WorkerRunner.launch, NodeRuntime.runMain)
