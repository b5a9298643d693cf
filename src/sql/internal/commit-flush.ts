/**
 * What makes a committed transaction durable when the connection itself does not wait for the disk: a SQLite store
 * commits with `synchronous = NORMAL` (no fsync on the event loop) and the group-commit writer then awaits this
 * flush, an `fsync` of the WAL file on libuv's thread pool, before it acknowledges the batch (`writer.ts`).
 * Absent (PostgreSQL, an in-memory SQLite database, `synchronous = NORMAL` chosen by the user): a commit is as
 * durable as the connection makes it.
 */
import { Context, type Effect } from "effect"

/** The flush after a commit; fails with the `fsync` error's message (the commit's durability is then unknown). */
export class CommitFlush extends Context.Tag("effect-scheduler-registry/sql/CommitFlush")<
  CommitFlush,
  { readonly flush: Effect.Effect<void, string> }
>() {}
