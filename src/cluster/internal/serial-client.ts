/**
 * A `SqlClient` whose reserved connections run one statement at a time. `SqlRunnerStorage` keeps every
 * shard-lock operation on one reserved connection and may issue several at once (a refresh while shards are
 * acquired or released); `pg` then queues them on its client and warns "Calling client.query() when the client
 * is already executing a query" (deprecated, removed in pg 9). A semaphore per connection queues them here.
 */
import type { SqlClient } from "@effect/sql"
import type { Connection } from "@effect/sql/SqlConnection"
import { Effect } from "effect"

const serialize = (conn: Connection): Connection => {
  const semaphore = Effect.unsafeMakeSemaphore(1)
  // the wait for the permit is interruptible; the statement is not, so the permit is released only once pg has
  // finished it (an interrupted statement, as when the runner storage times out an operation on a hung
  // connection, would otherwise still run on the client while the next one starts)
  const permit = <A, E, R>(statement: Effect.Effect<A, E, R>) =>
    semaphore.withPermits(1)(Effect.uninterruptible(statement))
  return {
    execute: (...args) => permit(conn.execute(...args)),
    executeRaw: (...args) => permit(conn.executeRaw(...args)),
    executeValues: (...args) => permit(conn.executeValues(...args)),
    executeUnprepared: (...args) => permit(conn.executeUnprepared(...args)),
    // a stream holds the connection while it is read; the runner storage reads none
    executeStream: (...args) => conn.executeStream(...args)
  }
}

/** `sql` with `reserve` giving serialized connections; every other member is `sql`'s own. */
export const serialReserve = (sql: SqlClient.SqlClient): SqlClient.SqlClient => {
  const reserve = Effect.map(sql.reserve, serialize)
  return new Proxy(sql, { get: (target, key) => (key === "reserve" ? reserve : Reflect.get(target, key)) })
}
