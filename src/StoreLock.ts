/**
 * One writer per store: a lock a node takes on its store at start and holds for its whole life, so that a
 * second node started on the same SQLite file or PostgreSQL schema is refused with `StoreLocked`, naming the
 * holder, instead of racing the first one for slots (each would see the other's appends as conflicts).
 *
 * The store modules take the lock: `SqliteStore.layerLock` (an SQLite write lock on a lock file beside the
 * database) and `PgStore.layerLock` (a session advisory lock per schema on a dedicated connection). Both are
 * released by the operating system or the server when the holder dies, even by SIGKILL, so a stale lock never
 * blocks a restart. A cluster needs neither: its runners share the store under shard locks.
 *
 * Mirrors the legacy ao SU, whose one process owns its store (`permaweb/ao@ff178d51 servers/su`), made explicit.
 *
 * @since 0.3.0
 */
import * as Os from "node:os"
import { Context } from "effect"
import type { LockHolder } from "./errors.js"

/**
 * Who holds a lock (`Errors.LockHolder`'s type): `pid`, `host`, `since` (ISO 8601), each where known.
 *
 * @since 0.3.0
 * @category models
 */
export type Holder = typeof LockHolder.Type

/**
 * A held store lock: `store` names what is locked (the SQLite file, or the PostgreSQL schema) and `holder` is
 * this process. The lock is released when the Layer that gave the service is released.
 *
 * @since 0.3.0
 * @category models
 */
export class StoreLock extends Context.Tag("effect-scheduler-registry/StoreLock")<
  StoreLock,
  { readonly store: string; readonly holder: Holder }
>() {}

/** When this process started, ISO 8601: the `since` of every lock it takes. */
const started = new Date(Date.now() - Math.round(process.uptime() * 1000)).toISOString()

/**
 * This process as a lock holder: its pid, its host name and when it started.
 *
 * @since 0.3.0
 * @category constructors
 */
export const self = (): Holder => ({ pid: process.pid, host: Os.hostname(), since: started })
