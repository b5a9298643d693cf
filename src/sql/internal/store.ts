/**
 * The durable `AssignmentStore` on any `@effect/sql` client: the same SQL for SQLite and PostgreSQL, appends
 * through the group-commit writer, reads straight from the client. Layout and reasons: docs/storage.md.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Effect, Either, Layer, Option, Schedule, type Scope } from "effect"
import { Assignment, type Message } from "../../Assignment.js"
import type {
  AppendOptions,
  AssignmentStore,
  Entry,
  Latest,
  NodeJsonEdge,
  PageQuery,
  RangeQuery
} from "../../AssignmentStore.js"
import { type Fenced, type StoreConflict, StoreError } from "../../errors.js"
import { fitting } from "../../internal/store/fitting.js"
import { invalidReason, type MessageId, type ProcessId } from "../../ProcessId.js"
import { type Append, batchSize, type Int, makeRun, reasonOf } from "./append.js"
import { CommitFlush } from "./commit-flush.js"
import * as Outbox from "./outbox.js"
import { migrate } from "./schema.js"
import * as Writer from "./writer.js"

interface Row {
  readonly process_id: string
  readonly slot: Int
  readonly epoch: Int
  readonly timestamp: Int
  readonly block_height: Int
  readonly hash_chain: string
  readonly assignment_id: string
  readonly message_id: string
  readonly assignment: Uint8Array | null
  readonly message: Uint8Array | null
  readonly node_json: Uint8Array | null
  readonly exclude: string | null
}

/** A row of `nodeJsonPage`. */
interface JsonRow {
  readonly slot: Int
  readonly timestamp: Int
  readonly node_json: Uint8Array | null
}

interface LatestRow {
  readonly slot: Int
  readonly hash_chain: string
  readonly assignment_id: string
  readonly timestamp: Int
}

export { batchSize }

/** Default for `batchSize` (most appends per transaction). */
export const DEFAULT_BATCH_SIZE = 128

const COLUMNS =
  "process_id, slot, epoch, timestamp, block_height, hash_chain, assignment_id, message_id, assignment, message, node_json, exclude"

/** COLUMNS, with the data item bytes left out of rows that have their node JSON (`RangeQuery.nodeJsonOnly`). */
const JSON_ONLY_COLUMNS =
  "process_id, slot, epoch, timestamp, block_height, hash_chain, assignment_id, message_id, " +
  "CASE WHEN node_json IS NULL THEN assignment END AS assignment, " +
  "CASE WHEN node_json IS NULL THEN message END AS message, node_json, exclude"

/** PostgreSQL's `lock_not_available` (SQLSTATE 55P03): `lock_timeout` passed, or `NOWAIT` found the row locked. */
const isLockTimeout = (error: SqlError): boolean =>
  typeof error.cause === "object" && error.cause !== null && (error.cause as { code?: unknown }).code === "55P03"

/** The bytes a row counts for in `PageQuery.maxBytes`, from column lengths (neither engine loads the bytes). */
const STORED_BYTES = "length(assignment) + COALESCE(length(message), 0)"
const NODE_JSON_BYTES = `COALESCE(length(node_json), ${STORED_BYTES})`

const storeError = (operation: string) => (error: { readonly message: string; readonly cause?: unknown }) =>
  new StoreError({ operation, reason: reasonOf(error) })

/** Turns any failure or defect of building a client layer into `StoreError` for `operation` (e.g. "open"). */
export const layerOrStoreError =
  (operation: string) =>
  <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, StoreError, R> =>
    Layer.catchAllCause(layer, (cause) => {
      const error = Cause.squash(cause)
      return Layer.fail(new StoreError({ operation, reason: error instanceof Error ? reasonOf(error) : String(error) }))
    })

/** A plain Uint8Array view of a driver's Buffer, so callers see the same type from every layer. */
const bytes = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

const EMPTY = new Uint8Array(0)

const isCount = (n: number): boolean => Number.isSafeInteger(n) && n >= 0

/** Why a row is not a well-formed assignment, or `undefined` (the checks `Assignment`'s schema makes). */
const corruption = (
  a: Readonly<
    Record<"id" | "processId" | "messageId", string> &
      Record<"slot" | "epoch" | "timestamp" | "blockHeight", number> &
      Record<"hashChain" | "raw", unknown>
  >
): string | undefined => {
  for (const [name, id] of [
    ["assignment_id", a.id],
    ["process_id", a.processId],
    ["message_id", a.messageId]
  ] as const) {
    const reason = typeof id === "string" ? invalidReason(id) : "not text"
    if (reason !== undefined) return `${name} ${reason}`
  }
  for (const [name, n] of [
    ["slot", a.slot],
    ["epoch", a.epoch],
    ["timestamp", a.timestamp],
    ["block_height", a.blockHeight]
  ] as const) {
    if (!isCount(n)) return `${name} is not a non-negative integer`
  }
  if (typeof a.hashChain !== "string") return "hash_chain is not text"
  if (!(a.raw instanceof Uint8Array)) return "assignment is not bytes"
  return undefined
}

/**
 * A row as an entry. Checked field by field rather than through `Schema.decodeUnknown(Assignment)`, which cost
 * as much as the read itself on a 1,000-row page; the checks are the schema's.
 */
const toEntry = (operation: string, row: Row): Either.Either<Entry, StoreError> => {
  const fields = {
    id: row.assignment_id as MessageId,
    processId: row.process_id as ProcessId,
    messageId: row.message_id as MessageId,
    slot: Number(row.slot),
    epoch: Number(row.epoch),
    timestamp: Number(row.timestamp),
    blockHeight: Number(row.block_height),
    hashChain: row.hash_chain,
    raw:
      row.assignment instanceof Uint8Array
        ? bytes(row.assignment)
        : row.assignment === null && row.node_json !== null
          ? EMPTY // left out by `nodeJsonOnly`
          : row.assignment
  } as const
  const reason = corruption(fields)
  if (reason !== undefined) {
    return Either.left(new StoreError({ operation, reason: `corrupt row ${row.process_id}/${row.slot}: ${reason}` }))
  }
  let exclude: ReadonlyArray<string> | undefined
  if (row.exclude !== null && row.exclude !== undefined) {
    const parsed: unknown = Either.getOrUndefined(Either.try(() => JSON.parse(row.exclude as string)))
    if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === "string")) {
      return Either.left(
        new StoreError({ operation, reason: `corrupt row ${row.process_id}/${row.slot}: exclude is not a JSON list` })
      )
    }
    exclude = parsed
  }
  const assignment = new Assignment(
    exclude === undefined
      ? { ...fields, raw: fields.raw as Uint8Array }
      : { ...fields, raw: fields.raw as Uint8Array, exclude },
    { disableValidation: true }
  )
  return Either.right({
    assignment,
    message: row.message === null ? undefined : bytes(row.message),
    nodeJson: row.node_json === null ? undefined : bytes(row.node_json)
  })
}

/** Decodes every row, in a plain loop (a page is up to 1,000 rows); the first corrupt row fails the read. */
const toEntries = (operation: string, rows: ReadonlyArray<Row>): Either.Either<Array<Entry>, StoreError> => {
  const out: Array<Entry> = []
  for (const row of rows) {
    const entry = toEntry(operation, row)
    if (Either.isLeft(entry)) return Either.left(entry.left)
    out.push(entry.right)
  }
  return Either.right(out)
}

/**
 * Builds the store on the `SqlClient` in context: runs the migrations, then starts the group-commit writer in
 * the current scope. Fails with `StoreError` (operation `migrate`) if the schema cannot be brought up to date.
 */
export const make = (options: {
  readonly batchSize?: number | undefined
}): Effect.Effect<AssignmentStore["Type"], StoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* Effect.mapError(migrate, storeError("migrate"))

    const flush = Option.getOrUndefined(yield* Effect.serviceOption(CommitFlush))?.flush
    const flushFailed = (operation: string) => (reason: string) =>
      new StoreError({ operation, reason: `the commit may not be durable: ${reason}` })
    const submit = yield* Writer.make<Append, StoreConflict | StoreError | Fenced>({
      maxBatch: options.batchSize ?? DEFAULT_BATCH_SIZE,
      run: makeRun(sql),
      closed: new StoreError({ operation: "append", reason: "the store is closed" }),
      flush: flush === undefined ? undefined : { effect: flush, failure: flushFailed("append") }
    })
    /** `effect`, then the commit flush (a claim is durable before the server that claimed recovers). */
    const flushed = <A>(effect: Effect.Effect<A, StoreError>) =>
      flush === undefined ? effect : Effect.tap(effect, () => Effect.mapError(flush, flushFailed("claim")))

    const entries = (operation: string, rows: Effect.Effect<ReadonlyArray<Row>, SqlError>) =>
      Effect.flatMap(Effect.mapError(rows, storeError(operation)), (rs) => toEntries(operation, rs))

    const first = (operation: string, rows: Effect.Effect<ReadonlyArray<Row>, SqlError>) =>
      Effect.map(entries(operation, rows), (es) => Option.fromNullable(es[0]))

    const append = (assignment: Assignment, message: Message, options?: AppendOptions | undefined) =>
      submit({
        assignment,
        message,
        outbox: options?.outbox === true,
        epoch: options?.epoch,
        previous: options?.previous
      })

    // after any append of an older epoch still in progress (its FOR SHARE lock), never during one
    const claim = (processId: ProcessId) =>
      sql<{ epoch: Int }>`INSERT INTO process_epochs (process_id, epoch) VALUES (${processId}, 1)
        ON CONFLICT (process_id) DO UPDATE SET epoch = process_epochs.epoch + 1 RETURNING epoch`.pipe(
        // a stale writer's append in flight holds the row: wait for it in turns of the session's lock_timeout
        Effect.retry({ while: isLockTimeout, schedule: Schedule.spaced("100 millis"), times: 50 }),
        Effect.mapError(storeError("claim")),
        Effect.flatMap((rows) =>
          rows[0] === undefined
            ? Effect.fail(new StoreError({ operation: "claim", reason: "no epoch returned" }))
            : Effect.succeed(Number(rows[0].epoch))
        ),
        flushed
      )

    const latest = (processId: ProcessId) =>
      sql<LatestRow>`SELECT slot, hash_chain, assignment_id, timestamp FROM assignments
        WHERE process_id = ${processId} ORDER BY slot DESC LIMIT 1`.pipe(
        Effect.mapError(storeError("latest")),
        Effect.map((rows) =>
          Option.map(
            Option.fromNullable(rows[0]),
            (r): Latest => ({
              slot: Number(r.slot),
              hashChain: r.hash_chain,
              assignmentId: r.assignment_id,
              timestamp: Number(r.timestamp)
            })
          )
        )
      )

    /** The WHERE and ORDER BY of a range read. */
    const rangeSql = (processId: ProcessId, query: RangeQuery) => {
      const column = sql.literal(query.by === "slot" ? "slot" : "timestamp")
      const where = [sql`process_id = ${processId}`]
      if (query.from !== undefined) where.push(sql`${column} > ${query.from}`)
      if (query.to !== undefined) where.push(sql`${column} <= ${query.to}`)
      // Timestamps rise with slot (K14), so (timestamp, slot) order is slot order and walks the timestamp index.
      return { where: sql.and(where), order: sql.literal(query.by === "slot" ? "slot" : "timestamp, slot") }
    }

    const range = (processId: ProcessId, query: RangeQuery) => {
      const { order, where } = rangeSql(processId, query)
      return entries(
        "range",
        sql<Row>`SELECT ${sql.literal(query.nodeJsonOnly === true ? JSON_ONLY_COLUMNS : COLUMNS)} FROM assignments WHERE ${where}
          ORDER BY ${order} LIMIT ${Math.max(0, Math.floor(query.limit))}`
      )
    }

    // Sizes first (column lengths over at most limit + 1 rows), then only the rows that fit: rows are never
    // rewritten and new ones sort after every existing one, so the second read is a prefix of the first.
    const fitted = (operation: string, processId: ProcessId, query: PageQuery) =>
      Effect.gen(function* () {
        const limit = Math.max(0, Math.floor(query.limit))
        const { order, where } = rangeSql(processId, query)
        const bytes = sql.literal(query.nodeJsonOnly === true ? NODE_JSON_BYTES : STORED_BYTES)
        const sizes = yield* Effect.mapError(
          sql<{ bytes: Int }>`SELECT ${bytes} AS bytes FROM assignments WHERE ${where}
            ORDER BY ${order} LIMIT ${limit + 1}`,
          storeError(operation)
        )
        const wanted = sizes.slice(0, limit).map((r) => Number(r.bytes))
        const count = query.maxBytes === undefined ? wanted.length : fitting(wanted, query.maxBytes)
        return { count, more: sizes.length > count, order, where }
      })

    const page = (processId: ProcessId, query: PageQuery) =>
      Effect.gen(function* () {
        const { count, more } = yield* fitted("page", processId, query)
        const read = count === 0 ? [] : yield* range(processId, { ...query, limit: count })
        return { entries: read, more }
      })

    // `page` with `nodeJsonOnly`, three columns a row and no `Assignment`; a page with a row stored without node
    // JSON (rare: a message over NODE_JSON_MAX_BYTES, a row older than migration 2) is read as `page` reads it
    const nodeJsonPage = (processId: ProcessId, query: PageQuery) =>
      Effect.gen(function* () {
        const jsonQuery = { ...query, nodeJsonOnly: true }
        const { count, more, order, where } = yield* fitted("page", processId, jsonQuery)
        if (count === 0) return { edges: [], more }
        const rows = yield* Effect.mapError(
          sql<JsonRow>`SELECT slot, timestamp, node_json FROM assignments WHERE ${where}
            ORDER BY ${order} LIMIT ${count}`,
          storeError("page")
        )
        const edges: Array<NodeJsonEdge> = []
        for (const row of rows) {
          const slot = Number(row.slot)
          const timestamp = Number(row.timestamp)
          if (!isCount(slot) || !isCount(timestamp)) {
            const reason = `corrupt row ${processId}/${row.slot}: slot or timestamp is not a non-negative integer`
            return yield* Effect.fail(new StoreError({ operation: "page", reason }))
          }
          if (!(row.node_json instanceof Uint8Array))
            return { edges: yield* edgesOfRange(processId, jsonQuery, count), more }
          edges.push({ slot, timestamp, nodeJson: row.node_json })
        }
        return { edges, more }
      })

    const edgesOfRange = (processId: ProcessId, query: PageQuery, count: number) =>
      Effect.map(range(processId, { ...query, limit: count }), (entries) =>
        entries.map(
          (entry): NodeJsonEdge =>
            entry.nodeJson === undefined
              ? { slot: entry.assignment.slot, timestamp: entry.assignment.timestamp, entry }
              : { slot: entry.assignment.slot, timestamp: entry.assignment.timestamp, nodeJson: entry.nodeJson }
        )
      )

    // Two index lookups (assignment id, then message id or (process, message id)), earliest first.
    const getMessage = (id: string, processId?: ProcessId | undefined) => {
      const inProcess = processId === undefined ? sql.literal("") : sql`AND process_id = ${processId}`
      return first(
        "getMessage",
        sql<Row>`SELECT ${sql.literal(COLUMNS)} FROM assignments WHERE assignment_id = ${id} ${inProcess}
          UNION ALL
          SELECT ${sql.literal(COLUMNS)} FROM assignments WHERE message_id = ${id} ${inProcess}
          ORDER BY timestamp, slot LIMIT 1`
      )
    }

    const getProcess = (processId: ProcessId) =>
      first(
        "getProcess",
        sql<Row>`SELECT ${sql.literal(COLUMNS)} FROM assignments WHERE process_id = ${processId} ORDER BY slot LIMIT 1`
      )

    const listProcesses = () =>
      sql<{ process_id: ProcessId }>`SELECT process_id FROM processes ORDER BY process_id`.pipe(
        Effect.mapError(storeError("listProcesses")),
        Effect.map((rows) => rows.map((r) => r.process_id))
      )

    // MAX over the block_height index (migration 3): one index step, not a scan of the table
    const maxBlockHeight = () =>
      sql<{ max_height: Int | null }>`SELECT MAX(block_height) AS max_height FROM assignments`.pipe(
        Effect.mapError(storeError("maxBlockHeight")),
        Effect.map((rows) => {
          const max = rows[0]?.max_height
          return max === null || max === undefined ? Option.none() : Option.some(Number(max))
        })
      )

    const outbox = Outbox.make(sql)

    return {
      append,
      claim,
      latest,
      range,
      page,
      nodeJsonPage,
      getMessage,
      getProcess,
      listProcesses,
      maxBlockHeight,
      outbox
    }
  })
