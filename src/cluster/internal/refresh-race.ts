/**
 * A `RunnerStorage` whose lock refresh also reports the shards this runner acquired while the refresh ran.
 *
 * `@effect/cluster` (0.60) refreshes a runner's shard locks in one fiber and acquires new ones in another. The
 * refresh takes its list of held shards when it starts and, when it ends, lets go every held shard its answer
 * does not name. A shard acquired while a refresh is under way is held by then but not in that refresh's list,
 * so the refresh lets it go at once: its entities are stopped (their processes moved a second time) and the
 * shard is taken back only at the next re-check of unheld shards (`entityMessagePollInterval`). It happened to
 * 6 of 16 moved processes in one failover of `bench/cluster.ts`.
 *
 * Here a refresh's answer also names the shards an `acquire` of this runner obtained while the refresh was in
 * flight. That is true: their lock rows were written by that acquisition (`acquired_at` = then, so valid for a
 * whole lease), and the next refresh, whose list holds them, refreshes them. Nothing is reported that this
 * runner's own `acquire` did not just obtain from the storage.
 */
import type { RunnerStorage } from "@effect/cluster"
import type { ShardId } from "@effect/cluster/ShardId"
import { Effect } from "effect"

export const reportAcquiredDuringRefresh = (
  storage: RunnerStorage.RunnerStorage["Type"]
): RunnerStorage.RunnerStorage["Type"] => {
  /** One set per refresh in flight: the shards acquired since it started. */
  const inFlight = new Set<Set<ShardId>>()
  return {
    ...storage,
    acquire: (address, shardIds) =>
      Effect.tap(storage.acquire(address, shardIds), (acquired) =>
        Effect.sync(() => {
          for (const during of inFlight) for (const shardId of acquired) during.add(shardId)
        })
      ),
    refresh: (address, shardIds) =>
      Effect.suspend(() => {
        const during = new Set<ShardId>()
        inFlight.add(during)
        return storage.refresh(address, shardIds).pipe(
          Effect.map((held) => {
            const extra = [...during].filter((shardId) => !held.includes(shardId))
            return extra.length === 0 ? held : [...held, ...extra]
          }),
          Effect.ensuring(Effect.sync(() => inFlight.delete(during)))
        )
      })
  }
}
