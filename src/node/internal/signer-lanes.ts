/**
 * Natural batching of signature requests over a fixed set of lanes (one per worker thread).
 *
 * Each `sign` queues its data; each lane, whenever it is free, takes its share of the queue (up to
 * `maxBatch`) and sends it as one message. Under light load a batch holds one signature, so nothing waits for
 * a batch to fill; under load the batches grow, and the per-message cost (encode, post, decode, resume) is paid
 * once per batch instead of once per signature, on the main thread and on the worker alike.
 */
import { Cause, Effect, Exit, type Scope } from "effect"

interface Pending {
  readonly data: Uint8Array
  readonly resume: (effect: Effect.Effect<Uint8Array>) => void
  /** Set when the caller stopped waiting: the request is dropped if it has not been sent yet. */
  cancelled: boolean
}

/** Signs one batch: the signatures, in the order of `data`. */
export type SendBatch = (data: ReadonlyArray<Uint8Array>) => Effect.Effect<ReadonlyArray<Uint8Array>, unknown>

const closedDefect = () => new Error("the signer pool is closed")

/**
 * Starts one fiber per lane in the current scope and returns `sign`. When the scope closes, queued and
 * in-flight requests die (a defect: the signer went away), and later ones die at once.
 */
export const make = (
  lanes: ReadonlyArray<SendBatch>,
  maxBatch: number
): Effect.Effect<(data: Uint8Array) => Effect.Effect<Uint8Array>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const queue: Array<Pending> = []
    /** Lanes parked until the queue has work. */
    const parked: Array<() => void> = []
    /** Lanes not sending a batch (parked, or woken and about to take their share). */
    let free = 0
    let closed = false

    const wakeOne = () => parked.shift()?.()

    const awaitWork = Effect.async<void>((resume) => {
      if (queue.length > 0) return resume(Effect.void)
      parked.push(() => resume(Effect.void))
    })

    const settle = (batch: ReadonlyArray<Pending>, exit: Exit.Exit<ReadonlyArray<Uint8Array>, unknown>) => {
      if (Exit.isSuccess(exit) && exit.value.length === batch.length) {
        for (let i = 0; i < batch.length; i++) batch[i]!.resume(Effect.succeed(exit.value[i]!))
        return
      }
      const defect = Exit.isSuccess(exit)
        ? new Error(`a signer worker answered ${exit.value.length} signatures for ${batch.length}`)
        : Cause.isInterruptedOnly(exit.cause)
          ? closedDefect()
          : Cause.squash(exit.cause)
      for (const pending of batch) pending.resume(Effect.die(defect))
    }

    const lane = (send: SendBatch): Effect.Effect<never> =>
      Effect.forever(
        Effect.flatMap(awaitWork, () => {
          // this lane's share: what is queued, spread over the lanes that are free to send it
          const share = Math.min(maxBatch, Math.ceil(queue.length / Math.max(1, free)))
          const batch = queue.splice(0, share).filter((pending) => !pending.cancelled)
          if (queue.length > 0) wakeOne()
          if (batch.length === 0) return Effect.void
          free--
          return Effect.onExit(send(batch.map((pending) => pending.data)), (exit) =>
            Effect.sync(() => {
              free++
              settle(batch, exit)
            })
          ).pipe(Effect.ignore)
        })
      )

    free = lanes.length
    for (const send of lanes) yield* Effect.forkScoped(lane(send))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const pending of queue.splice(0)) pending.resume(Effect.die(closedDefect()))
      })
    )

    return (data: Uint8Array) =>
      Effect.async<Uint8Array>((resume) => {
        if (closed) return resume(Effect.die(closedDefect()))
        const pending: Pending = { data, resume, cancelled: false }
        queue.push(pending)
        wakeOne()
        return Effect.sync(() => {
          pending.cancelled = true
        })
      })
  })
