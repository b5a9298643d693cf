/**
 * The signer threads behind `SignerPool`: plain `node:worker_threads` that evaluate the assignment core's source
 * text, with a FIFO of jobs, at most two jobs held by each thread, and replies matched by job id.
 */
import type * as Crypto from "node:crypto"
import { Worker } from "node:worker_threads"
import { Effect } from "effect"
import type { ChainEntry, ChainGrowth, ChainStart, SignedLink } from "../../Assignment.js"
import { assignmentCoreSource } from "../../internal/assignment-core.js"

/** What a thread is asked: one signature, or one chained run (which may grow while it is signed). */
export type Job =
  | { readonly kind: "sign"; readonly data: Uint8Array }
  | {
      readonly kind: "chain"
      readonly start: ChainStart
      readonly entries: ReadonlyArray<ChainEntry>
      readonly growth?: ChainGrowth | undefined
    }

/**
 * A thread's program. `__name` is what a transpiler's keepNames (esbuild, under tsx) calls in the core's text.
 *
 * Jobs run in the order they came. A message `{ extend, entries }` adds entries to the chain job `extend` when the
 * thread still holds it: after every signature the thread reads the messages that arrived meanwhile
 * (`receiveMessageOnPort`), so a growing run goes on without a round trip to the main thread. Its reply holds
 * the links of every entry it signed; entries that came after it are not signed, and the main thread, which
 * knows how many it sent, signs them again in a later run.
 */
const PROGRAM = `
const __name = (target) => target
const { parentPort, receiveMessageOnPort, workerData } = require("node:worker_threads")
const crypto = require("node:crypto")
const core = (${assignmentCoreSource})(crypto)
const key = crypto.createPrivateKey({ key: workerData.jwk, format: "jwk" })
const owner = Buffer.from(workerData.jwk.n, "base64url")
const options = { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
const sign = (data) => crypto.sign("sha256", data, options)
sign(Buffer.alloc(48))
const jobs = []
const held = new Map()
const receive = (message) => {
  if (message.extend === undefined) {
    jobs.push(message)
    held.set(message.id, message)
  } else {
    const job = held.get(message.extend)
    if (job !== undefined) for (const entry of message.entries) job.entries.push(entry)
  }
}
const drain = () => {
  for (let next = receiveMessageOnPort(parentPort); next !== undefined; next = receiveMessageOnPort(parentPort)) {
    receive(next.message)
  }
}
const signAndDrain = (data) => {
  const signature = sign(data)
  drain()
  return signature
}
const pump = () => {
  while (jobs.length > 0) {
    const job = jobs.shift()
    try {
      if (job.kind === "sign") {
        const signature = sign(job.data)
        parentPort.postMessage({ id: job.id, value: signature }, [signature.buffer])
      } else {
        const value = core.signChain(owner, signAndDrain, job.start, job.entries)
        parentPort.postMessage({ id: job.id, value }, value.map((link) => link.raw.buffer))
      }
    } catch (error) {
      parentPort.postMessage({ id: job.id, error: String((error && error.stack) || error) })
    }
    held.delete(job.id)
  }
}
parentPort.on("message", (message) => {
  receive(message)
  pump()
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

  /** Sends `pending`'s job to `thread`; a growing run's later entries follow it while the thread holds it. */
  const send = (thread: Thread, pending: Pending) => {
    const job = pending.job
    if (job.kind === "sign" || job.growth === undefined) {
      thread.worker.postMessage({
        id: pending.id,
        kind: job.kind,
        ...(job.kind === "sign" ? { data: job.data } : { start: job.start, entries: job.entries })
      })
      return
    }
    const { entries, growth } = job
    let sent = entries.length
    thread.worker.postMessage({ id: pending.id, kind: job.kind, start: job.start, entries })
    growth.grew = () => {
      if (entries.length <= sent || !thread.held.has(pending.id)) return
      thread.worker.postMessage({ extend: pending.id, entries: entries.slice(sent) })
      sent = entries.length
    }
  }

  const dispatch = () => {
    for (const thread of threads) {
      while (!thread.dead && thread.held.size < DEPTH && queue.length > 0) {
        const pending = queue.shift()!
        if (pending.cancelled) continue
        thread.held.set(pending.id, pending)
        send(thread, pending)
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
        if (pending.job.kind === "chain" && pending.job.growth !== undefined) pending.job.growth.grew = undefined
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
