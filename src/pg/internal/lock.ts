/**
 * The PostgreSQL store's writer lock (`PgStore.layerLock`): a session advisory lock keyed by the schema,
 * `pg_try_advisory_lock(hashtext('effect-scheduler-registry'), hashtext(schema))`, taken on a dedicated
 * connection that stays checked out for the node's life. The server releases it when that session ends, so a
 * node killed by SIGKILL frees it as soon as its connection drops. The connection's `application_name` carries
 * the node's pid and host, which `pg_stat_activity` shows to the next node that asks.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { StoreError, StoreLocked } from "../../errors.js"
import * as StoreLock from "../../StoreLock.js"
import { reasonOf } from "../../sql/internal/append.js"
import { layerOrStoreError } from "../../sql/internal/store.js"

/** The first half of every lock key: this library's, so other advisory locks on the database never collide. */
const NAMESPACE = "effect-scheduler-registry"

const TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS locked"

const HOLDER = `SELECT a.application_name, a.client_addr::text AS client_addr, a.client_hostname,
  to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
  AND l.classid = hashtext($1)::oid AND l.objid = hashtext($2)::oid
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`

interface HolderRow {
  readonly application_name: string | null
  readonly client_addr: string | null
  readonly client_hostname: string | null
  readonly since: string | null
}

/** The holder from its session: pid and host from our `application_name`, else the client's address. */
const holderOf = (row: HolderRow | undefined): StoreLock.Holder => {
  if (row === undefined) return {}
  const named = /pid=(\d+) host=(\S+)/.exec(row.application_name ?? "")
  const host = named?.[2] ?? row.client_hostname ?? row.client_addr ?? undefined
  return {
    ...(named === null ? {} : { pid: Number(named[1]) }),
    ...(host === undefined ? {} : { host }),
    ...(row.since === null ? {} : { since: row.since })
  }
}

/** The lock of `schema` as a Layer: taken when built, released (with its connection) when released. */
export const layerLock = (options: {
  readonly url: string
  readonly schema?: string | undefined
}): Layer.Layer<StoreLock.StoreLock, StoreLocked | StoreError> => {
  const schema = options.schema ?? "public"
  const me = StoreLock.self()
  const lockError = (error: { readonly message: string; readonly cause?: unknown }) =>
    new StoreError({ operation: "lock", reason: reasonOf(error) })
  const acquire = Effect.gen(function* () {
    const sql = yield* PgClient.PgClient
    // held for the Layer's life: the lock is the session's, so the session must not go back to the pool
    const connection = yield* Effect.mapError(sql.reserve, lockError)
    const [row] = yield* Effect.mapError(connection.execute(TRY_LOCK, [NAMESPACE, schema], undefined), lockError)
    if (row?.locked !== true) {
      const [holder] = yield* connection
        .execute(HOLDER, [NAMESPACE, schema], undefined)
        .pipe(Effect.orElseSucceed(() => []))
      return yield* new StoreLocked({
        store: `the PostgreSQL schema "${schema}"`,
        holder: holderOf(holder as HolderRow | undefined)
      })
    }
    return { store: `the PostgreSQL schema "${schema}"`, holder: me }
  })
  return Layer.scoped(StoreLock.StoreLock, acquire).pipe(
    Layer.provide(
      layerOrStoreError("lock")(
        PgClient.layer({
          url: Redacted.make(options.url),
          maxConnections: 1,
          applicationName: `su-lock pid=${me.pid} host=${me.host}`.slice(0, 63)
        })
      )
    )
  )
}
