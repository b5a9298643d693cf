/**
 * Group commit: one writer fiber takes up to `maxBatch` pending items from a queue and writes them with one
 * `run` call (one transaction); each caller waits on its own Deferred for its own result.
 */
import { Chunk, Deferred, Effect, Exit, Queue, type Scope } from "effect"
import { nextTurn } from "../../internal/next-turn.js"

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
  /**
   * Makes a committed batch durable (`CommitFlush`): `effect` is awaited before the batch's items are settled,
   * and the next batch gathers meanwhile; if it fails, every item the batch had written fails with `failure`.
   */
  readonly flush?: { readonly effect: Effect.Effect<void, string>; readonly failure: (reason: string) => E } | undefined
}

/**
 * Starts the writer fiber in the current scope and returns `submit(item)`, which resolves once the batch that
 * holds `item` has been written (committed, and flushed when a `flush` is given). Items are written in
 * submission order. A batch in progress when the scope closes is finished (the write runs uninterruptibly);
 * items still queued fail with `closed`. Interrupting a caller only stops its wait: its item may still be written.
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

    /** The batch's results once its commit is flushed; a failed flush fails what was written. */
    const durable = (results: ReadonlyArray<Exit.Exit<void, E>>) => {
      const flush = options.flush
      if (flush === undefined || !results.some(Exit.isSuccess)) return Effect.succeed(results)
      return Effect.catchAll(Effect.as(flush.effect, results), (reason) => {
        const failed = Exit.fail(flush.failure(reason))
        return Effect.succeed(results.map((exit) => (Exit.isSuccess(exit) ? failed : exit)))
      })
    }

    const max = Math.max(1, options.maxBatch)
    // after the first item, the rest of this turn of the event loop: the appends that signer threads and other
    // schedulers hand over in the same turn join the batch, one transaction (and one fsync) for all of them
    const step = Effect.flatMap(Queue.take(queue), (first) =>
      Effect.flatMap(
        Effect.zipRight(
          nextTurn,
          max === 1 ? Effect.succeed(Chunk.empty<Pending<A, E>>()) : Queue.takeUpTo(queue, max - 1)
        ),
        (rest) => {
          const batch = [first, ...Chunk.toReadonlyArray(rest)]
          return Effect.uninterruptible(
            Effect.flatMap(Effect.flatMap(options.run(batch.map((p) => p.item)), durable), (results) =>
              settle(batch, results)
            )
          )
        }
      )
    )
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
