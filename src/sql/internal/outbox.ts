/**
 * The SQL stores' `Outbox` over the `outbox` table (migration 5): the same SQL on SQLite and PostgreSQL. Each
 * call is one statement (no group commit: the uploader batches its own updates).
 */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Outbox, OutboxItem, OutboxStatus } from "../../AssignmentStore.js"
import { StoreError } from "../../errors.js"
import { type Int, reasonOf } from "./append.js"

interface DueRow {
  readonly item_id: string
  readonly kind: string
  readonly process_id: string
  readonly slot: Int
  readonly created_at: Int
  readonly attempts: Int
  readonly bytes: Uint8Array | null
}

interface StatusRow {
  readonly pending: Int | null
  readonly retrying: Int | null
  readonly oldest: Int | null
  readonly next_at: Int | null
}

const storeError = (operation: string) => (error: { readonly message: string; readonly cause?: unknown }) =>
  new StoreError({ operation, reason: reasonOf(error) })

const optionalNumber = (n: Int | null | undefined): number | undefined =>
  n === null || n === undefined ? undefined : Number(n)

/** A plain Uint8Array view of a driver's Buffer. */
const bytesOf = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

/** The outbox of the SQL store on `sql`. */
export const make = (sql: SqlClient.SqlClient): Outbox => {
  const due = (now: number, limit: number) =>
    sql<DueRow>`SELECT o.item_id, o.kind, a.process_id, a.slot, o.created_at, o.attempts,
        CASE WHEN o.kind = 'message' THEN a.message ELSE a.assignment END AS bytes
      FROM outbox o JOIN assignments a ON a.assignment_id = o.assignment_id
      WHERE o.uploaded_at IS NULL AND o.next_attempt_at <= ${now}
      ORDER BY o.next_attempt_at, o.created_at LIMIT ${Math.max(0, Math.floor(limit))}`.pipe(
      Effect.mapError(storeError("outbox.due")),
      Effect.flatMap((rows) =>
        Effect.forEach(rows, (row) =>
          row.bytes === null || (row.kind !== "message" && row.kind !== "assignment")
            ? Effect.fail(
                new StoreError({ operation: "outbox.due", reason: `corrupt outbox row ${row.item_id}: no bytes` })
              )
            : Effect.succeed<OutboxItem>({
                id: row.item_id,
                kind: row.kind,
                processId: row.process_id,
                slot: Number(row.slot),
                bytes: bytesOf(row.bytes),
                createdAt: Number(row.created_at),
                attempts: Number(row.attempts)
              })
        )
      )
    )

  const markUploaded = (ids: ReadonlyArray<string>, at: number) =>
    ids.length === 0
      ? Effect.void
      : Effect.mapError(
          sql`UPDATE outbox SET uploaded_at = ${at}, last_error = NULL
            WHERE ${sql.in("item_id", ids)} AND uploaded_at IS NULL`,
          storeError("outbox.markUploaded")
        )

  const markFailed = (id: string, attempts: number, nextAttemptAt: number, error: string) =>
    Effect.mapError(
      sql`UPDATE outbox SET attempts = ${attempts}, next_attempt_at = ${nextAttemptAt}, last_error = ${error.slice(0, 1_000)}
        WHERE item_id = ${id} AND uploaded_at IS NULL`,
      storeError("outbox.markFailed")
    )

  const uploaded = (ids: ReadonlyArray<string>) =>
    ids.length === 0
      ? Effect.succeed<ReadonlySet<string>>(new Set())
      : sql<{ item_id: string }>`SELECT item_id FROM outbox
          WHERE ${sql.in("item_id", ids)} AND uploaded_at IS NOT NULL`.pipe(
          Effect.mapError(storeError("outbox.uploaded")),
          Effect.map((rows): ReadonlySet<string> => new Set(rows.map((r) => r.item_id)))
        )

  const status = (options?: { readonly uploaded?: boolean | undefined } | undefined) =>
    Effect.gen(function* () {
      const [row] = yield* sql<StatusRow>`SELECT
          SUM(CASE WHEN attempts = 0 THEN 1 ELSE 0 END) AS pending,
          SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END) AS retrying,
          MIN(created_at) AS oldest, MIN(next_attempt_at) AS next_at
        FROM outbox WHERE uploaded_at IS NULL`
      const done =
        options?.uploaded === true
          ? (yield* sql<{ n: Int }>`SELECT COUNT(*) AS n FROM outbox WHERE uploaded_at IS NOT NULL`)[0]?.n
          : undefined
      return {
        pending: optionalNumber(row?.pending) ?? 0,
        retrying: optionalNumber(row?.retrying) ?? 0,
        uploaded: optionalNumber(done),
        oldestPendingAt: optionalNumber(row?.oldest),
        nextAttemptAt: optionalNumber(row?.next_at)
      } satisfies OutboxStatus
    }).pipe(Effect.mapError(storeError("outbox.status")))

  const redrive = () =>
    sql<{ item_id: string }>`UPDATE outbox SET attempts = 0, next_attempt_at = 0
      WHERE uploaded_at IS NULL AND attempts > 0 RETURNING item_id`.pipe(
      Effect.mapError(storeError("outbox.redrive")),
      Effect.map((rows) => rows.length)
    )

  return { due, markUploaded, markFailed, uploaded, status, redrive }
}
