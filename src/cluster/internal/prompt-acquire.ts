/**
 * Shard acquisition that retries promptly. `@effect/cluster`'s acquisition loop calls `RunnerStorage.acquire`
 * for the shards assigned to this runner and, whatever it got, waits 1,000 ms before it tries the rest again.
 * A shard whose old owner died is assigned here as soon as that owner's heartbeat is older than the lease, but
 * its lock rows are refreshed just after the heartbeat, so they expire a little later (milliseconds; more on a
 * busy machine): an acquisition in between gets nothing and waits the whole second. `acquire` here tries again
 * every `retryMs` while some shards are missing, for at most `budgetMs` (under the loop's own deadline), then
 * returns what it has. The storage still decides who holds a lock: retrying sooner never takes a live lock.
 */
import type { RunnerStorage } from "@effect/cluster"
import { Effect } from "effect"

export const promptAcquire = (
  storage: RunnerStorage.RunnerStorage["Type"],
  retryMs: number,
  budgetMs: number
): RunnerStorage.RunnerStorage["Type"] => {
  if (retryMs <= 0 || budgetMs < retryMs) return storage
  return {
    ...storage,
    acquire: (address, shardIds) => {
      const wanted = [...shardIds]
      const attempt = (left: number): ReturnType<typeof storage.acquire> =>
        Effect.flatMap(storage.acquire(address, wanted), (acquired) =>
          acquired.length >= wanted.length || left < retryMs
            ? Effect.succeed(acquired)
            : Effect.zipRight(
                Effect.sleep(retryMs),
                Effect.suspend(() => attempt(left - retryMs))
              )
        )
      return attempt(budgetMs)
    }
  }
}
