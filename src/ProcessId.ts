/**
 * Process and message ids: 32-byte values written as 43-character unpadded base64url text.
 *
 * HyperBEAM keys its registry by whatever form an id arrived in, so a raw 32-byte id and its 43-character
 * form named two different schedulers (`docs/behaviours.md` §2, race 5). We normalise at the boundary:
 * every id inside the library is the canonical 43-character form.
 *
 * @since 0.1.0
 */
import { type Effect, Either, type FastCheck, ParseResult, Schema } from "effect"
import { InvalidProcessId } from "./errors.js"

const ALPHABET = /^[A-Za-z0-9_-]*$/
/** Characters whose 6-bit value has its low 2 bits clear: the only ones that may end the text of 32 bytes. */
const LAST = /[AEIMQUYcgkosw048]$/

/**
 * Why `input` is not a canonical 43-character base64url id of 32 bytes, or `undefined` when it is one.
 *
 * @since 0.1.0
 * @category utils
 */
export const invalidReason = (input: string): string | undefined => {
  if (input.length !== 43) return `expected 43 base64url characters, got ${input.length}`
  if (!ALPHABET.test(input)) return "contains characters outside the base64url alphabet [A-Za-z0-9_-]"
  // 43 characters carry 258 bits; the last 2 must be zero for the text to be the canonical form of 32 bytes.
  if (!LAST.test(input)) return "is not the canonical encoding of 32 bytes (its last character carries stray bits)"
  return undefined
}

/** Generates ids for property tests (`Arbitrary.make(ProcessId)`): 32 random bytes as their 43-character text. */
const arbitrary = () => (fc: typeof FastCheck) =>
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString("base64url"))

/**
 * The id of an ao process: 43 characters of unpadded base64url, the canonical text of 32 bytes.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProcessId = Schema.String.pipe(
  Schema.filter((s) => invalidReason(s) ?? true, { identifier: "ProcessId", arbitrary }),
  Schema.brand("ProcessId")
)

/**
 * @since 0.1.0
 */
export type ProcessId = typeof ProcessId.Type

/**
 * The id of a message, an assignment or a data item: the same 43-character form as a process id.
 *
 * @since 0.1.0
 * @category schemas
 */
export const MessageId = Schema.String.pipe(
  Schema.filter((s) => invalidReason(s) ?? true, { identifier: "MessageId", arbitrary }),
  Schema.brand("MessageId")
)

/**
 * @since 0.1.0
 */
export type MessageId = typeof MessageId.Type

/** Text of a non-string input for the error; never throws (`String` does for `Object.create(null)`). */
const inputText = (input: unknown): string => {
  try {
    return String(input)
  } catch {
    return Object.prototype.toString.call(input)
  }
}

/**
 * Normalises a raw 32-byte id or its 43-character text to a `ProcessId`, synchronously.
 * Returns `Either.left(InvalidProcessId)` naming what was wrong (length, alphabet, type).
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseEither = (input: unknown): Either.Either<ProcessId, InvalidProcessId> => {
  if (input instanceof Uint8Array) {
    if (input.length === 32) return Either.right(Buffer.from(input).toString("base64url") as ProcessId)
    return Either.left(
      new InvalidProcessId({ input: `<${input.length} bytes>`, reason: `expected 32 raw bytes, got ${input.length}` })
    )
  }
  if (typeof input !== "string") {
    return Either.left(
      new InvalidProcessId({ input: inputText(input), reason: `expected a string, got ${typeof input}` })
    )
  }
  const reason = invalidReason(input)
  return reason === undefined ? Either.right(input as ProcessId) : Either.left(new InvalidProcessId({ input, reason }))
}

/**
 * Normalises a raw 32-byte id or its 43-character text to a `ProcessId`.
 * Fails with `InvalidProcessId` for anything else.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (input: string | Uint8Array): Effect.Effect<ProcessId, InvalidProcessId> => parseEither(input)

/**
 * Makes a `ProcessId` from text already known to be valid, throwing a defect otherwise. For tests and constants.
 *
 * @since 0.1.0
 * @category constructors
 */
export const unsafeMake = (input: string | Uint8Array): ProcessId => Either.getOrThrow(parseEither(input))

/**
 * The 32 raw bytes of an id.
 *
 * @since 0.1.0
 * @category utils
 */
export const toBytes = (id: ProcessId | MessageId | string): Buffer => Buffer.from(id, "base64url")

/**
 * A Schema from `string | Uint8Array` input to a `ProcessId`, normalising raw 32-byte ids; for decoding at
 * an edge (HTTP, CLI) with a `ParseError` that carries the `InvalidProcessId` reason.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProcessIdFromInput = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.Uint8ArrayFromSelf),
  Schema.typeSchema(ProcessId),
  {
    strict: true,
    decode: (input, _, ast) => Either.mapLeft(parseEither(input), (e) => new ParseResult.Type(ast, input, e.message)),
    encode: (id) => ParseResult.succeed(id)
  }
)
