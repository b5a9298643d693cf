/**
 * `effect-scheduler-registry/sqlite`: the durable store in one SQLite file. Needs the optional peers
 * `@effect/sql` and `@effect/sql-sqlite-node` (better-sqlite3).
 *
 * @since 0.2.0
 */

/**
 * The SQL store on any `SqlClient` you provide.
 *
 * @since 0.2.0
 * @category modules
 */
export * as SqlStore from "../sql/SqlStore.js"
/**
 * The SQLite store (`layer`, `layerConfig`, `layerClient`).
 *
 * @since 0.2.0
 * @category modules
 */
export * as SqliteStore from "./SqliteStore.js"
