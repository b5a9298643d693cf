/**
 * Group commit: one writer fiber takes up to `maxBatch` pending items from a queue and writes them with one
 * `run` call (one transaction); each caller waits on its own Deferred for its own result.
 */
import { Chunk, Deferred, Effect, type Exit, Queue, type Scope } from "effect"

interface Pending<A, E> {
  readonly item: A
  readonly done: Deferred.Deferred<void, E>
}

export interface WriterOptions<A, E> {
  /** The most items one `run` call receives (1 or more). */
  readonly maxBatch: number
  /** Writes a batch; returns one Exit per item, in order. Must not fail: a batch-wide failure is per-item Exits. */
  readonly run: (batch: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<Exit.Exit<void, E>>>
  /** The failure of every item still pending when the scope closes, and of every later submit. */
  readonly closed: E
}

/**
 * Starts the writer fiber in the current scope and returns `submit(item)`, which resolves once the batch that
 * holds `item` has been written (committed). Items are written in submission order. A batch in progress when
 * the scope closes is finished (the write runs uninterruptibly); items still queued fail with `closed`.
 * Interrupting a caller only stops its wait: its item may still be written.
 */
export const make = <A, E>(
  options: WriterOptions<A, E>
): Effect.Effect<(item: A) => Effect.Effect<void, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<Pending<A, E>>()
    // Every submitted, not yet settled item. Checked and changed only in synchronous blocks, so a submit either
    // happens before the closing sweep (and is settled by it) or sees `closed`.
    const outstanding = new Set<Pending<A, E>>()
    let closed = false

    // Added before the writer fork, so it runs after the writer fiber has been interrupted.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        const left = Array.from(outstanding)
        outstanding.clear()
        return Effect.forEach(left, (p) => Deferred.fail(p.done, options.closed), { discard: true })
      })
    )

    const settle = (batch: ReadonlyArray<Pending<A, E>>, results: ReadonlyArray<Exit.Exit<void, E>>) =>
      Effect.forEach(
        batch,
        (p, i) => {
          outstanding.delete(p)
          return Deferred.done(p.done, results[i]!)
        },
        { discard: true }
      )

    const step = Effect.flatMap(Queue.takeBetween(queue, 1, Math.max(1, options.maxBatch)), (chunk) => {
      const batch = Chunk.toReadonlyArray(chunk)
      return Effect.uninterruptible(
        Effect.flatMap(options.run(batch.map((p) => p.item)), (results) => settle(batch, results))
      )
    })
    yield* Effect.forkScoped(Effect.forever(step))

    return (item: A) =>
      Effect.flatMap(Deferred.make<void, E>(), (done) =>
        Effect.suspend(() => {
          if (closed) return Effect.fail(options.closed)
          const pending = { item, done }
          outstanding.add(pending)
          queue.unsafeOffer(pending)
          return Deferred.await(done)
        })
      )
  })
