/**
 * `effect-scheduler-registry/pg`: the durable store in PostgreSQL. Needs the optional peers `@effect/sql` and
 * `@effect/sql-pg`.
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
 * The PostgreSQL store (`layer`, `layerConfig`, `layerClient`).
 *
 * @since 0.2.0
 * @category modules
 */
export * as PgStore from "./PgStore.js"
