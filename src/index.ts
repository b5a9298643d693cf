/**
 * effect-scheduler-registry: an ao Scheduler Unit on Effect. The main entry point is the core: ids, the name
 * service, the generic service registry, the scheduler and its registry, the wallet, the assignment, the data
 * item, the wire format, the store contract and the in-memory store. It loads no SQL, cluster, HTTP server or
 * OpenTelemetry code; those live in `effect-scheduler-registry/sqlite`, `/pg`, `/cluster`, `/node`, `/tracing`
 * (and `/testing` for tests). Each module is exported as a namespace.
 *
 * @since 0.1.0
 */

/**
 * The assignment model, its ao.TN.1 tags, signing and the hash chain.
 *
 * @since 0.1.0
 * @category modules
 */
export * as Assignment from "./Assignment.js"
/**
 * The storage contract and the in-memory store.
 *
 * @since 0.1.0
 * @category modules
 */
export * as AssignmentStore from "./AssignmentStore.js"
/**
 * ANS-104 data items as clients send them: decoding, verifying, tags.
 *
 * @since 0.2.0
 * @category modules
 */
export * as DataItem from "./DataItem.js"
/**
 * Every typed error.
 *
 * @since 0.1.0
 * @category modules
 */
export * as Errors from "./errors.js"
/**
 * The node's metrics (Effect's global metric registry).
 *
 * @since 0.2.0
 * @category modules
 */
export * as Metrics from "./Metrics.js"
/**
 * The name service (`hb_name`).
 *
 * @since 0.1.0
 * @category modules
 */
export * as NameService from "./NameService.js"
/**
 * Process and message ids.
 *
 * @since 0.1.0
 * @category modules
 */
export * as ProcessId from "./ProcessId.js"
/**
 * One process's scheduler server (`dev_scheduler_server`).
 *
 * @since 0.1.0
 * @category modules
 */
export * as Scheduler from "./Scheduler.js"
/**
 * The scheduler registry (`dev_scheduler_registry`).
 *
 * @since 0.1.0
 * @category modules
 */
export * as SchedulerRegistry from "./SchedulerRegistry.js"
/**
 * What a hosted service and its registry share: `Passivated` and the registry's events.
 *
 * @since 0.2.0
 * @category modules
 */
export * as Service from "./Service.js"
/**
 * The generic get-or-create registry of one service type.
 *
 * @since 0.1.0
 * @category modules
 */
export * as ServiceRegistry from "./ServiceRegistry.js"
/**
 * One writer per store: the lock service and its holder (`SqliteStore.layerLock`, `PgStore.layerLock` take it).
 *
 * @since 0.3.0
 * @category modules
 */
export * as StoreLock from "./StoreLock.js"
/**
 * Export and import of schedules between stores (NDJSON, `su export` / `su import`).
 *
 * @since 0.3.0
 * @category modules
 */
export * as Transfer from "./Transfer.js"
/**
 * The node wallet (`ar_wallet`).
 *
 * @since 0.1.0
 * @category modules
 */
export * as Wallet from "./Wallet.js"
/**
 * The JSON shapes real ao clients parse (legacy SU pages, HyperBEAM schedules).
 *
 * @since 0.2.0
 * @category modules
 */
export * as WireFormat from "./WireFormat.js"
