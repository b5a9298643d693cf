/**
 * Writing one group-commit batch: one transaction, a few multi-row statements, one result per append.
 * The same SQL runs on SQLite and PostgreSQL (`INSERT … ON CONFLICT DO NOTHING RETURNING`).
 */
import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Effect, Exit, Metric, MetricBoundaries, Option } from "effect"
import type { Assignment, Message } from "../../Assignment.js"
import { NODE_JSON_MAX_BYTES } from "../../AssignmentStore.js"
import { Fenced, StoreConflict, StoreError } from "../../errors.js"
import { itemsOf } from "../../internal/outbox.js"
import { PREVIOUS_MISMATCH } from "../../internal/store/reasons.js"
import { nodeJsonText } from "../../internal/wire-format.js"

/** One queued append. */
export interface Append {
  readonly assignment: Assignment
  readonly message: Message
  /** The writer's fencing token for the process (`AssignmentStore.claim`); unchecked when undefined. */
  readonly epoch?: number | undefined
  /** Also queue the entry's items for upload (`AppendOptions.outbox`). */
  readonly outbox?: boolean | undefined
  /** The assignment id expected at `slot - 1` (`AppendOptions.previous`); unchecked when undefined. */
  readonly previous?: string | undefined
}

/** A BIGINT column: a number from SQLite, a decimal string from PostgreSQL. */
export type Int = number | string | bigint

/** The number of appends committed per transaction by the group-commit writer. */
export const batchSize = Metric.histogram(
  "assignment_store_batch_size",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 10 }),
  "Appends committed per store transaction"
)

/** Rows per INSERT statement: 11 parameters each stays far below SQLite's 32,766 and PostgreSQL's 65,535. */
const MAX_ROWS_PER_STATEMENT = 500
/** Payload bytes per INSERT statement, so that 10 MiB bodies never build one huge protocol message. */
const MAX_BYTES_PER_STATEMENT = 8 * 1024 * 1024

/** Splits `batch` into runs of at most MAX_ROWS_PER_STATEMENT rows and (beyond one row) MAX_BYTES_PER_STATEMENT. */
const statements = (batch: ReadonlyArray<Append>): Array<Array<Append>> => {
  const out: Array<Array<Append>> = []
  let current: Array<Append> = []
  let bytes = 0
  for (const append of batch) {
    // a stored node JSON is at most ~3 times its message (NODE_JSON_MAX_BYTES)
    const message = append.message.raw?.length ?? 0
    const size = append.assignment.raw.length + message + (message <= NODE_JSON_MAX_BYTES ? 3 * message + 4096 : 0)
    if (current.length > 0 && (current.length >= MAX_ROWS_PER_STATEMENT || bytes + size > MAX_BYTES_PER_STATEMENT)) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(append)
    bytes += size
  }
  if (current.length > 0) out.push(current)
  return out
}

/**
 * The entry's legacy node JSON for the read model, or null for a message over NODE_JSON_MAX_BYTES or one that
 * is not a data item (the library accepts any bytes; a reader then renders, or reports, it from the bytes).
 */
const nodeJsonOf = (assignment: Assignment, message: Message): Uint8Array | null => {
  if (message.raw !== undefined && message.raw.length > NODE_JSON_MAX_BYTES) return null
  try {
    return Buffer.from(nodeJsonText({ assignment, message: message.raw }), "utf8")
  } catch {
    return null
  }
}

/** `rows` in runs of at most `size`. */
const chunks = <A>(rows: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size))
  return out
}

const keyOf = (processId: string, slot: Int, assignmentId: string) => `${processId} ${Number(slot)} ${assignmentId}`

/** `error.message`, with its cause's message when it has one (a SqlError wraps the driver's error). */
export const reasonOf = (error: { readonly message: string; readonly cause?: unknown }): string =>
  error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message

/**
 * Returns `run(batch)`: writes the batch in one transaction and returns one Exit per append, in order.
 *
 * Fencing first: the `process_epochs` rows of the batch's processes whose appends carry an epoch are read and
 * share-locked (PostgreSQL: `FOR SHARE NOWAIT`, in process order), so a `claim` of one of them waits for this
 * transaction, and this transaction never waits for a claim, nor for another runner's transaction: a locked row
 * fails the statement at once, and the per-append retry below confines the failure to that process's appends.
 * An append whose epoch is not the current one fails with `Fenced` and is not written.
 *
 * Then each run of rows is one `INSERT … ON CONFLICT DO NOTHING RETURNING`; an append whose row did not come back
 * hit a unique key (slot, assignment id or message id, also against an earlier append of the same batch) and
 * fails with `StoreConflict` alone. A statement error rolls the transaction back with nothing written, so
 * the appends are retried one per transaction and only the bad one fails with `StoreError`. A failed COMMIT
 * (a defect) leaves the outcome unknown: every append fails with `StoreError`, nothing is retried.
 */
export const makeRun = (sql: SqlClient.SqlClient) => {
  /** Why `a` did not insert: the first of slot, assignment id, message id that already exists. */
  const conflictOf = ({ assignment: a, message }: Append) =>
    Effect.map(
      sql<{ process_id: string; slot: Int; assignment_id: string }>`
        SELECT process_id, slot, assignment_id FROM assignments
        WHERE (process_id = ${a.processId} AND slot = ${a.slot}) OR assignment_id = ${a.id}
          OR (process_id = ${a.processId} AND message_id = ${message.id})`,
      (rows) => {
        const reason = rows.some((r) => r.process_id === a.processId && Number(r.slot) === a.slot)
          ? "slot already written"
          : rows.some((r) => r.assignment_id === a.id)
            ? "assignment id already written"
            : "message already scheduled"
        return new StoreConflict({ processId: a.processId, slot: a.slot, reason })
      }
    )

  const linkConflict = ({ assignment: a }: Append) =>
    new StoreConflict({ processId: a.processId, slot: a.slot, reason: PREVIOUS_MISMATCH })

  const insertRows = (rows: ReadonlyArray<Append>) =>
    sql<{ process_id: string; slot: Int; assignment_id: string }>`INSERT INTO assignments ${sql.insert(
      rows.map(({ assignment: a, message }) => ({
        process_id: a.processId,
        slot: a.slot,
        epoch: a.epoch,
        timestamp: a.timestamp,
        block_height: a.blockHeight,
        hash_chain: a.hashChain,
        assignment_id: a.id,
        message_id: message.id,
        assignment: a.raw,
        message: message.raw ?? null,
        node_json: nodeJsonOf(a, message),
        exclude: a.exclude === undefined ? null : JSON.stringify(a.exclude)
      }))
    )} ON CONFLICT DO NOTHING RETURNING process_id, slot, assignment_id`

  const insertProcesses = (written: ReadonlyArray<Append>) => {
    const first = new Map<string, number>()
    for (const { assignment: a } of written) {
      first.set(a.processId, Math.min(first.get(a.processId) ?? a.timestamp, a.timestamp))
    }
    if (first.size === 0) return Effect.void
    const rows = Array.from(first, ([process_id, first_timestamp]) => ({ process_id, first_timestamp }))
    return sql`INSERT INTO processes ${sql.insert(rows)} ON CONFLICT DO NOTHING`
  }

  /** The outbox rows of the written appends that asked for them; an item already queued is left as it is. */
  const insertOutbox = (written: ReadonlyArray<Append>) => {
    const rows = written.flatMap(({ assignment: a, message, outbox }) =>
      outbox === true
        ? itemsOf(a, message).map(({ id, kind }) => ({
            item_id: id,
            assignment_id: a.id,
            kind,
            created_at: a.timestamp
          }))
        : []
    )
    if (rows.length === 0) return Effect.void
    return Effect.forEach(
      chunks(rows, MAX_ROWS_PER_STATEMENT),
      (chunk) => sql`INSERT INTO outbox ${sql.insert(chunk)} ON CONFLICT DO NOTHING`,
      { discard: true }
    )
  }

  const lockShared = sql.onDialectOrElse({ pg: () => sql.literal("FOR SHARE NOWAIT"), orElse: () => sql.literal("") })

  /** The current epoch of each process of `batch` whose appends carry one (0 for a process never claimed). */
  const currentEpochs = (batch: ReadonlyArray<Append>) => {
    const fenced = Array.from(new Set(batch.flatMap((a) => (a.epoch === undefined ? [] : [a.assignment.processId]))))
    if (fenced.length === 0) return Effect.succeed(new Map<string, number>())
    fenced.sort()
    return Effect.map(
      sql<{ process_id: string; epoch: Int }>`SELECT process_id, epoch FROM process_epochs
        WHERE ${sql.in("process_id", fenced)} ORDER BY process_id ${lockShared}`,
      (rows) => new Map(fenced.map((p) => [p, Number(rows.find((r) => r.process_id === p)?.epoch ?? 0)]))
    )
  }

  /**
   * The chain rule (`AppendOptions.previous`): which of the written appends (`ok`) must be taken back because the
   * slot before them does not hold their `previous`: neither among this batch's written rows (`present`, less
   * those taken back, in batch order) nor among the rows committed before (one read for all of them).
   */
  const brokenLinks = (batch: ReadonlyArray<Append>, ok: ReadonlyArray<boolean>, present: ReadonlySet<string>) =>
    Effect.gen(function* () {
      const linkOf = ({ assignment: a, previous }: Append) =>
        previous === undefined || a.slot === 0 ? undefined : keyOf(a.processId, a.slot - 1, previous)
      const outside = batch.filter((append, i) => {
        const link = linkOf(append)
        return ok[i] && link !== undefined && !present.has(link)
      })
      const committed = new Set<string>()
      if (outside.length > 0) {
        const rows = yield* sql<{ process_id: string; slot: Int; assignment_id: string }>`
          SELECT process_id, slot, assignment_id FROM assignments WHERE ${sql.or(
            outside.map(({ assignment: a }) => sql`(process_id = ${a.processId} AND slot = ${a.slot - 1})`)
          )}`
        for (const r of rows) committed.add(keyOf(r.process_id, r.slot, r.assignment_id))
      }
      const taken = new Set<string>()
      return batch.map((append, i) => {
        const link = linkOf(append)
        if (!ok[i] || link === undefined) return false
        if ((present.has(link) && !taken.has(link)) || committed.has(link)) return false
        taken.add(keyOf(append.assignment.processId, append.assignment.slot, append.assignment.id))
        return true
      })
    })

  const write = (all: ReadonlyArray<Append>): Effect.Effect<Array<Exit.Exit<void, StoreConflict | Fenced>>, SqlError> =>
    Effect.gen(function* () {
      const epochs = yield* currentEpochs(all)
      const fencedOf = ({ assignment: a, epoch }: Append): Fenced | undefined => {
        const current = epochs.get(a.processId) ?? 0
        return epoch === undefined || epoch === current
          ? undefined
          : new Fenced({ processId: a.processId, epoch, current })
      }
      const fenced = all.map(fencedOf)
      const batch = all.filter((_, i) => fenced[i] === undefined)
      const inserted = new Set<string>()
      for (const rows of statements(batch)) {
        for (const r of yield* insertRows(rows)) inserted.add(keyOf(r.process_id, r.slot, r.assignment_id))
      }
      const present = new Set(inserted)
      // `delete`: of two identical appends in one batch, the first was written and the second conflicts.
      const ok = batch.map(({ assignment: a }) => inserted.delete(keyOf(a.processId, a.slot, a.id)))
      const broken = yield* brokenLinks(batch, ok, present)
      const takenBack = batch.filter((_, i) => broken[i]).map(({ assignment: a }) => a.id)
      if (takenBack.length > 0) yield* sql`DELETE FROM assignments WHERE ${sql.in("assignment_id", takenBack)}`
      const written = batch.filter((_, i) => ok[i] && !broken[i])
      yield* insertProcesses(written)
      yield* insertOutbox(written)
      const results = yield* Effect.forEach(
        batch,
        (append, i): Effect.Effect<Exit.Exit<void, StoreConflict>, SqlError> =>
          broken[i]
            ? Effect.succeed(Exit.fail(linkConflict(append)))
            : ok[i]
              ? Effect.succeed(Exit.void)
              : Effect.map(conflictOf(append), (conflict) => Exit.fail(conflict))
      )
      return fenced.map((f) => (f === undefined ? results.shift()! : Exit.fail(f)))
    })

  const failAll = (batch: ReadonlyArray<Append>, reason: string) =>
    batch.map(() => Exit.fail(new StoreError({ operation: "append", reason })))

  const run = (
    batch: ReadonlyArray<Append>
  ): Effect.Effect<ReadonlyArray<Exit.Exit<void, StoreConflict | StoreError | Fenced>>> =>
    Effect.flatMap(Effect.exit(sql.withTransaction(write(batch))), (exit) => {
      if (Exit.isSuccess(exit)) return Effect.as(Metric.update(batchSize, batch.length), exit.value)
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure) && !Cause.isDie(exit.cause)) {
        return batch.length > 1
          ? Effect.map(
              Effect.forEach(batch, (one) => run([one])),
              (results) => results.flat()
            )
          : Effect.succeed(failAll(batch, reasonOf(failure.value)))
      }
      return Effect.succeed(failAll(batch, `commit failed, outcome unknown: ${Cause.pretty(exit.cause)}`))
    })

  return run
}
