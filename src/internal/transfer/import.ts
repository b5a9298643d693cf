/**
 * `Transfer.import`: reads an export line by line, verifies each row (its place in the hash chain from slot 0,
 * the assignment's signature, id, signer and tags, the message's signature and id) and only then appends it.
 * Rows are appended in slot order, a chunk of `inFlight` at a time, so the group-commit writer fills its
 * batches, and a chunk is written while the next one is verified; a row the target store already holds is
 * compared and skipped (resume), a different one is a fork.
 */
import { Effect, Fiber, Option, Stream } from "effect"
import { initialHashChain, Message, nextHashChain, tags } from "../../Assignment.js"
import type { AssignmentStore, Entry } from "../../AssignmentStore.js"
import * as DataItem from "../../DataItem.js"
import { ImportFork, ImportGap, ImportInvalid, StoreError, TransferFormatError } from "../../errors.js"
import type { Header, ImportOptions, ImportSummary, Row } from "../../Transfer.js"
import { decodeHeader, decodeLine } from "./format.js"

/** Appends in flight at once. */
export const DEFAULT_IN_FLIGHT = 512

/** Target rows read per `range` call when comparing a resumed process. */
const PAGE = 1_000

type Failure = TransferFormatError | ImportGap | ImportFork | ImportInvalid | StoreError

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a === undefined || b === undefined ? a === b : Buffer.compare(a, b) === 0

/** One process being read: the slot and hash chain the next row must have, and the target's rows to compare. */
interface Current {
  readonly processId: Row["assignment"]["processId"]
  next: number
  hashChain: string
  /** The target's highest slot when the process started, -1 for none: rows up to it are compared, not appended. */
  readonly head: number
  /** Target rows with slots in (from, to], by slot. */
  window: { from: number; to: number; rows: Map<number, Entry> }
}

export const importStream = <E>(
  store: AssignmentStore["Type"],
  input: Stream.Stream<Uint8Array, E>,
  options: ImportOptions
): Effect.Effect<ImportSummary, E | Failure> =>
  // the background writes live in this scope: not in the stream's fibers, which end with the input
  Effect.scopeWith((scope) => {
    const inFlight = Math.max(1, options.inFlight ?? DEFAULT_IN_FLIGHT)
    let header: Header | undefined
    let ended = false
    let lastLine = 0
    let current: Current | undefined
    const seen = new Set<string>()
    const summary = { processes: 0, assignments: 0, appended: 0, skipped: 0 }
    let pending: Array<Row> = []

    /** Appends `batch` in order; the store's writer batches them into transactions. */
    const write = (batch: ReadonlyArray<Row>) =>
      Effect.forEach(
        batch,
        (row) =>
          store
            .append(
              row.assignment,
              new Message({ id: row.assignment.messageId, raw: row.message }, { disableValidation: true })
            )
            .pipe(
              Effect.catchTag("StoreConflict", (c) =>
                Effect.fail(new ImportFork({ processId: c.processId, slot: c.slot, reason: c.reason }))
              ),
              // appends without an epoch are never fenced; a writer that claimed the process fences nothing here
              Effect.catchTag("Fenced", (f) => Effect.fail(new StoreError({ operation: "append", reason: f.message })))
            ),
        { concurrency: "unbounded", discard: true }
      ).pipe(Effect.tap(() => Effect.sync(() => (summary.appended += batch.length))))

    // One chunk is written in the background while the next is verified; a chunk's appends start only once the
    // previous chunk's are committed, so rows reach the store in order. A chunk's write is uninterruptible:
    // interrupting the import waits for it, so the store is settled when the interrupted import returns.
    let writing: Fiber.RuntimeFiber<void, ImportFork | StoreError> | undefined
    const awaitWrites = Effect.suspend(() => {
      const fiber = writing
      writing = undefined
      return fiber === undefined ? Effect.void : Fiber.join(fiber)
    })
    const flush = Effect.gen(function* () {
      yield* awaitWrites
      const batch = pending
      pending = []
      if (batch.length > 0) writing = yield* Effect.forkIn(Effect.uninterruptible(write(batch)), scope)
    })
    const drain = Effect.zipRight(flush, awaitWrites)

    const formatError = (line: number, reason: string) => Effect.fail(new TransferFormatError({ line, reason }))

    const targetRow = (c: Current, slot: number) =>
      Effect.gen(function* () {
        if (!(slot > c.window.from && slot <= c.window.to)) {
          const page = yield* store.range(c.processId, { by: "slot", from: slot - 1, limit: PAGE })
          const last = page.at(-1)?.assignment.slot
          c.window = {
            from: slot - 1,
            to: page.length < PAGE || last === undefined ? Number.POSITIVE_INFINITY : last,
            rows: new Map(page.map((e) => [e.assignment.slot, e]))
          }
        }
        return c.window.rows.get(slot)
      })

    const start = (processId: Current["processId"], line: number) =>
      Effect.gen(function* () {
        if (seen.has(processId)) {
          return yield* formatError(line, `process ${processId} appears again after another process`)
        }
        seen.add(processId)
        summary.processes++
        const head = yield* store.latest(processId)
        const c: Current = {
          processId,
          next: 0,
          hashChain: initialHashChain(processId),
          head: Option.match(head, { onNone: () => -1, onSome: (h) => h.slot }),
          window: { from: 0, to: 0, rows: new Map() }
        }
        return c
      })

    const verifyRow = (row: Row, line: number) =>
      Effect.gen(function* () {
        const a = row.assignment
        const c = current?.processId === a.processId ? current : yield* start(a.processId, line)
        current = c
        const invalid = (check: ImportInvalid["check"], reason: string) =>
          Effect.fail(new ImportInvalid({ processId: a.processId, slot: a.slot, check, reason }))
        if (a.slot > c.next)
          return yield* Effect.fail(new ImportGap({ processId: a.processId, slot: c.next, found: a.slot }))
        if (a.slot < c.next)
          return yield* formatError(line, `process ${a.processId}: slot ${a.slot} repeats or is out of order`)
        if (a.hashChain !== c.hashChain) {
          return yield* invalid(
            "hash-chain",
            `the row's Hash-Chain ${a.hashChain} is not ${c.hashChain}, the chain from slot 0`
          )
        }
        const item = yield* Effect.catchAll(DataItem.verify(a.raw), (e) => invalid("signature", e.reason))
        if (item.id !== a.id) return yield* invalid("signature", `the data item's id is ${item.id}, not ${a.id}`)
        if (header?.su != null && item.ownerAddress !== header.su) {
          return yield* invalid("signer", `signed by ${item.ownerAddress}, not by the exporting SU ${header.su}`)
        }
        if (JSON.stringify(item.tags) !== JSON.stringify(tags(a))) {
          return yield* invalid("tags", "the assignment's tags do not match the row's columns")
        }
        if (row.message !== undefined) {
          const message = yield* Effect.catchAll(DataItem.verify(row.message), (e) => invalid("message", e.reason))
          if (message.id !== a.messageId) {
            return yield* invalid("message", `the message data item's id is ${message.id}, not ${a.messageId}`)
          }
        }
        c.next++
        c.hashChain = nextHashChain(a.id, a.hashChain)
        summary.assignments++
        const existing = a.slot <= c.head ? yield* targetRow(c, a.slot) : undefined
        if (existing !== undefined) {
          if (
            existing.assignment.id !== a.id ||
            !sameBytes(existing.assignment.raw, a.raw) ||
            !sameBytes(existing.message, row.message)
          ) {
            return yield* Effect.fail(
              new ImportFork({
                processId: a.processId,
                slot: a.slot,
                reason: `the store holds assignment ${existing.assignment.id} at this slot, the input ${a.id}`
              })
            )
          }
          summary.skipped++
          return
        }
        pending.push(row)
        if (pending.length >= inFlight) yield* flush
      })

    const step = ([text, index]: readonly [string, number]): Effect.Effect<void, Failure> => {
      const line = index + 1
      lastLine = line
      if (header === undefined) {
        const decoded = decodeHeader(text)
        if (decoded._tag === "Left") return formatError(line, decoded.left)
        header = decoded.right
        return Effect.void
      }
      if (text === "") return Effect.void
      if (ended) return formatError(line, "a line follows the end line")
      const decoded = decodeLine(text)
      if (decoded._tag === "Left") return formatError(line, decoded.left)
      const value = decoded.right
      if (value._tag === "Row") return verifyRow(value.row, line)
      ended = true
      if (value.processes !== summary.processes || value.assignments !== summary.assignments) {
        return formatError(
          line,
          `the end line counts ${value.processes} processes and ${value.assignments} assignments, the input has ` +
            `${summary.processes} and ${summary.assignments}`
        )
      }
      return Effect.void
    }

    // complete lines only: an input that fails mid-line fails with its own error, not with a garbled last line
    let rest = ""
    const lines = input.pipe(
      Stream.decodeText(),
      Stream.mapConcat((text) => {
        const parts = (rest + text).split("\n")
        rest = parts.pop() ?? ""
        return parts
      }),
      Stream.concat(Stream.suspend(() => (rest === "" ? Stream.empty : Stream.make(rest)))),
      Stream.map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line))
    )

    return lines.pipe(
      Stream.zipWithIndex,
      Stream.runForEach(step),
      Effect.zipRight(
        Effect.suspend(() =>
          header === undefined
            ? formatError(1, "the input is empty: no header line")
            : ended
              ? Effect.void
              : formatError(lastLine + 1, "the input ends without its end line (truncated)")
        )
      ),
      // rows verified before a failure are still written: what the store holds stays a verified prefix
      Effect.catchAll((e: E | Failure) => Effect.zipRight(drain, Effect.fail(e))),
      Effect.zipRight(drain),
      Effect.as(summary)
    )
  }).pipe(Effect.scoped)
