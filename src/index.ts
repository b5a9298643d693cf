/**
 * effect-scheduler-registry: an ao Scheduler Unit on Effect. Each module is exported as a namespace.
 *
 * @since 0.1.0
 */

/** The assignment model, its ao.TN.1 tags, signing and the hash chain. @since 0.1.0 */
export * as Assignment from "./Assignment.js"
/** The storage contract and its memory, SQLite and PostgreSQL layers. @since 0.1.0 */
export * as AssignmentStore from "./AssignmentStore.js"
/** Every typed error. @since 0.1.0 */
export * as Errors from "./errors.js"
/** The name service (`hb_name`). @since 0.1.0 */
export * as NameService from "./NameService.js"
/** Process and message ids. @since 0.1.0 */
export * as ProcessId from "./ProcessId.js"
/** One process's scheduler server (`dev_scheduler_server`). @since 0.1.0 */
export * as Scheduler from "./Scheduler.js"
/** The scheduler registry (`dev_scheduler_registry`). @since 0.1.0 */
export * as SchedulerRegistry from "./SchedulerRegistry.js"
/** The generic get-or-create registry of one service type. @since 0.1.0 */
export * as ServiceRegistry from "./ServiceRegistry.js"
/** Optional trace export. @since 0.1.0 */
export * as Tracing from "./Tracing.js"
/** The node wallet (`ar_wallet`). @since 0.1.0 */
export * as Wallet from "./Wallet.js"
