/**
 * `effect-scheduler-registry/cluster`: the same `SchedulerRegistry` over `@effect/cluster`, one writer per
 * process across runners (docs/scaling.md). Needs the optional peers `@effect/cluster`, `@effect/rpc`,
 * `@effect/sql`, `@effect/sql-pg`, `@effect/platform` and `@effect/platform-node`.
 *
 * @since 0.2.0
 */

/**
 * One runner: how it joins, its shard locks, its sharding, and the whole runner (`layerClusterNode`).
 *
 * @since 0.2.0
 * @category modules
 */
export * as ClusterNode from "./ClusterNode.js"
/**
 * The registry over the cluster (`layerCluster`, `layerClusterNode`, the runner's storage and sharding).
 *
 * @since 0.2.0
 * @category modules
 */
export * as ClusterRegistry from "./ClusterRegistry.js"
/**
 * A process's scheduler as a cluster entity.
 *
 * @since 0.2.0
 * @category modules
 */
export * as SchedulerEntity from "./SchedulerEntity.js"
