/**
 * The schedule export format (docs/export-format.md): NDJSON, one JSON object a line. A header line, then per
 * process its rows in slot order (the columns of the SQL stores' `assignments` table, data items in base64url),
 * then an end line with the counts. Encoding is plain string building (one row a line, 100,000 rows a run);
 * decoding checks every field and says which one is wrong.
 */
import { Either } from "effect"
import { Assignment } from "../../Assignment.js"
import type { Entry } from "../../AssignmentStore.js"
import { invalidReason, type MessageId, type ProcessId } from "../../ProcessId.js"
import type { Header, Row } from "../../Transfer.js"

/** The `format` value of a header line. */
export const FORMAT = "ao-su-schedule"

/** The version this module writes and reads. */
export const VERSION = 1

const BASE64URL = /^[A-Za-z0-9_-]*$/

const b64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url")

/** The header line (without its newline). */
export const headerLine = (su: string | null): string => JSON.stringify({ format: FORMAT, version: VERSION, su })

/** The end line (without its newline). */
export const endLine = (processes: number, assignments: number): string =>
  JSON.stringify({ end: true, processes, assignments })

/** One stored entry as a row line (without its newline); key order is fixed, so equal rows give equal bytes. */
export const rowLine = (entry: Entry): string => {
  const a = entry.assignment
  return JSON.stringify({
    process_id: a.processId,
    slot: a.slot,
    epoch: a.epoch,
    timestamp: a.timestamp,
    block_height: a.blockHeight,
    hash_chain: a.hashChain,
    assignment_id: a.id,
    message_id: a.messageId,
    exclude: a.exclude ?? null,
    assignment: b64(a.raw),
    message: entry.message === undefined ? null : b64(entry.message)
  })
}

/** A decoded line. */
export type Line =
  | { readonly _tag: "Row"; readonly row: Row }
  | { readonly _tag: "End"; readonly processes: number; readonly assignments: number }

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0

const object = (text: string): Either.Either<Record<string, unknown>, string> => {
  const parsed = Either.try(() => JSON.parse(text) as unknown)
  if (Either.isLeft(parsed)) return Either.left("not JSON (a garbled or truncated line)")
  const value = parsed.right
  if (typeof value !== "object" || value === null || Array.isArray(value)) return Either.left("not a JSON object")
  return Either.right(value as Record<string, unknown>)
}

/** Decodes the header line: fails with the reason when it is not this format's header at this version. */
export const decodeHeader = (text: string): Either.Either<Header, string> =>
  Either.flatMap(object(text), (o): Either.Either<Header, string> => {
    if (o.format !== FORMAT)
      return Either.left(`not an ${FORMAT} export: the first line has format ${JSON.stringify(o.format)}`)
    if (o.version !== VERSION)
      return Either.left(`version ${JSON.stringify(o.version)} is not supported (this reader reads ${VERSION})`)
    if (o.su !== null && (typeof o.su !== "string" || invalidReason(o.su) !== undefined)) {
      return Either.left("su is neither null nor a 43-character address")
    }
    return Either.right({ format: FORMAT, version: VERSION, su: o.su })
  })

const bytes = (o: Record<string, unknown>, name: string): Either.Either<Uint8Array, string> => {
  const v = o[name]
  if (typeof v !== "string" || !BASE64URL.test(v)) return Either.left(`${name} is not base64url text`)
  return Either.right(new Uint8Array(Buffer.from(v, "base64url")))
}

/** Decodes a row or end line: fails with the first field that is missing or of the wrong kind. */
export const decodeLine = (text: string): Either.Either<Line, string> =>
  Either.flatMap(object(text), (o): Either.Either<Line, string> => {
    if (o.end === true) {
      if (!isCount(o.processes) || !isCount(o.assignments)) return Either.left("the end line's counts are not integers")
      return Either.right({ _tag: "End", processes: o.processes, assignments: o.assignments })
    }
    for (const name of ["process_id", "assignment_id", "message_id"]) {
      const v = o[name]
      const reason = typeof v === "string" ? invalidReason(v) : "is missing or not text"
      if (reason !== undefined) return Either.left(`${name} ${reason}`)
    }
    for (const name of ["slot", "epoch", "timestamp", "block_height"]) {
      if (!isCount(o[name])) return Either.left(`${name} is missing or not a non-negative integer`)
    }
    if (typeof o.hash_chain !== "string") return Either.left("hash_chain is missing or not text")
    const exclude = o.exclude
    if (exclude !== null && !(Array.isArray(exclude) && exclude.every((v) => typeof v === "string"))) {
      return Either.left("exclude is neither null nor a list of strings")
    }
    const raw = bytes(o, "assignment")
    if (Either.isLeft(raw)) return Either.left(raw.left)
    const message = o.message === null ? Either.right(undefined) : bytes(o, "message")
    if (Either.isLeft(message)) return Either.left(message.left)
    const fields = {
      id: o.assignment_id as MessageId,
      processId: o.process_id as ProcessId,
      messageId: o.message_id as MessageId,
      slot: o.slot as number,
      epoch: o.epoch as number,
      timestamp: o.timestamp as number,
      blockHeight: o.block_height as number,
      hashChain: o.hash_chain,
      raw: raw.right
    }
    const assignment = new Assignment(exclude === null ? fields : { ...fields, exclude: exclude as Array<string> }, {
      disableValidation: true
    })
    return Either.right({ _tag: "Row", row: { assignment, message: message.right } })
  })
