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
  const permit = Effect.unsafeMakeSemaphore(1).withPermits(1)
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
