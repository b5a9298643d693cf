/**
 * The signer threads behind `SignerPool`: plain `node:worker_threads` that evaluate the assignment core's source
 * text, with a FIFO of jobs, at most two jobs held by each thread, and replies matched by job id.
 */
import type * as Crypto from "node:crypto"
import { Worker } from "node:worker_threads"
import { Effect } from "effect"
import type { ChainEntry, ChainStart, SignedLink } from "../../Assignment.js"
import { assignmentCoreSource } from "../../internal/assignment-core.js"

/** What a thread is asked: one signature, or one chained run. */
export type Job =
  | { readonly kind: "sign"; readonly data: Uint8Array }
  | { readonly kind: "chain"; readonly start: ChainStart; readonly entries: ReadonlyArray<ChainEntry> }

/** A thread's program. `__name` is what a transpiler's keepNames (esbuild, under tsx) calls in the core's text. */
const PROGRAM = `
const __name = (target) => target
const { parentPort, workerData } = require("node:worker_threads")
const crypto = require("node:crypto")
const core = (${assignmentCoreSource})(crypto)
const key = crypto.createPrivateKey({ key: workerData.jwk, format: "jwk" })
const owner = Buffer.from(workerData.jwk.n, "base64url")
const options = { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
const sign = (data) => crypto.sign("sha256", data, options)
sign(Buffer.alloc(48))
parentPort.on("message", (job) => {
  try {
    if (job.kind === "sign") {
      const signature = sign(job.data)
      parentPort.postMessage({ id: job.id, value: signature }, [signature.buffer])
    } else {
      const value = core.signChain(owner, sign, job.start, job.entries)
      parentPort.postMessage({ id: job.id, value }, value.map((link) => link.raw.buffer))
    }
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: String((error && error.stack) || error) })
  }
})
parentPort.postMessage({ ready: true })
`

/** Jobs a thread holds at once: the one it signs and the next, so that it never waits for the main thread. */
const DEPTH = 2

interface Pending {
  readonly id: number
  readonly job: Job
  readonly resume: (effect: Effect.Effect<never> | Effect.Effect<unknown>) => void
  cancelled: boolean
}

interface Thread {
  readonly worker: Worker
  readonly held: Map<number, Pending>
  dead: boolean
}

export interface Threads {
  /** Runs `job` on a thread; dies if the thread crashed or the pool is closed. */
  readonly run: <A = ReadonlyArray<SignedLink>>(job: Job) => Effect.Effect<A>
  readonly close: () => Promise<void>
}

/** Starts `size` threads holding `key`; resolves once each has parsed it (and signed once), rejects if one fails. */
export const start = async (key: Crypto.KeyObject, size: number): Promise<Threads> => {
  const jwk = key.export({ format: "jwk" })
  const threads: Array<Thread> = []
  const queue: Array<Pending> = []
  let nextId = 0
  let closed = false

  const dispatch = () => {
    for (const thread of threads) {
      while (!thread.dead && thread.held.size < DEPTH && queue.length > 0) {
        const pending = queue.shift()!
        if (pending.cancelled) continue
        thread.held.set(pending.id, pending)
        thread.worker.postMessage({ id: pending.id, ...pending.job })
      }
    }
    if (queue.length > 0 && threads.every((t) => t.dead)) {
      for (const pending of queue.splice(0)) pending.resume(Effect.dieMessage("every signer thread has stopped"))
    }
  }

  const failHeld = (thread: Thread, reason: string) => {
    thread.dead = true
    for (const pending of thread.held.values()) pending.resume(Effect.dieMessage(reason))
    thread.held.clear()
    dispatch()
  }

  await Promise.all(
    Array.from({ length: size }, async () => {
      const worker = new Worker(PROGRAM, { eval: true, workerData: { jwk } })
      const thread: Thread = { worker, held: new Map(), dead: false }
      threads.push(thread)
      const onExit = (code: number) => failStart(new Error(`a signer thread exited with code ${code}`))
      let failStart: (error: Error) => void = () => {}
      await new Promise<void>((resolve, reject) => {
        failStart = reject
        worker.once("error", reject)
        worker.once("exit", onExit)
        worker.once("message", () => resolve())
      }).catch(async (error) => {
        await Promise.all(threads.map((t) => t.worker.terminate()))
        throw error
      })
      // only this module's own listeners: `removeAllListeners` would also drop the port's internal ones
      worker.off("error", failStart)
      worker.off("exit", onExit)
      worker.on("message", (reply: { id: number; value?: unknown; error?: string }) => {
        const pending = thread.held.get(reply.id)
        if (pending === undefined) return
        thread.held.delete(reply.id)
        dispatch()
        pending.resume(
          reply.error === undefined ? Effect.succeed(reply.value) : Effect.dieMessage(`signer thread: ${reply.error}`)
        )
      })
      worker.on("error", (error) => failHeld(thread, `a signer thread failed: ${error.message}`))
      worker.on("exit", (code) => {
        if (!closed) failHeld(thread, `a signer thread exited with code ${code}`)
      })
    })
  )

  const run = <A>(job: Job): Effect.Effect<A> =>
    Effect.async<A>((resume) => {
      if (closed) return resume(Effect.dieMessage("the signer pool is closed"))
      const pending: Pending = { id: nextId++, job, resume: resume as Pending["resume"], cancelled: false }
      queue.push(pending)
      dispatch()
      return Effect.sync(() => {
        pending.cancelled = true
      })
    })

  const close = async () => {
    closed = true
    for (const pending of queue.splice(0)) pending.resume(Effect.dieMessage("the signer pool is closed"))
    for (const thread of threads) {
      for (const pending of thread.held.values()) pending.resume(Effect.dieMessage("the signer pool is closed"))
      thread.held.clear()
    }
    await Promise.all(threads.map((t) => t.worker.terminate()))
  }

  return { run, close }
}
