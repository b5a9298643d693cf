/**
 * ProcessId: normalising raw 32-byte ids and their 43-character base64url text at the boundary
 * (`docs/behaviours.md` behaviour 10), with a typed `InvalidProcessId` naming what is wrong.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Schema } from "effect"
import type { InvalidProcessId } from "../src/errors.js"
import * as ProcessId from "../src/ProcessId.js"

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 })

/** Strings over the base64url alphabet, of any length but 43. */
const base64urlOtherLength = fc
  .array(fc.constantFrom(...ALPHABET), { maxLength: 100 })
  .map((chars) => chars.join(""))
  .filter((s) => s.length !== 43)

/** Arbitrary strings (any UTF-16 units), of any length but 43. */
const anyOtherLength = fc.string({ unit: "binary", maxLength: 100 }).filter((s) => s.length !== 43)

/** 43 characters over the base64url alphabet. */
const base64url43 = fc
  .array(fc.constantFrom(...ALPHABET), { minLength: 43, maxLength: 43 })
  .map((chars) => chars.join(""))

const leftOf = (input: unknown): InvalidProcessId => {
  const result = ProcessId.parseEither(input)
  if (Either.isRight(result)) throw new Error(`expected ${String(input)} to be rejected, got ${result.right}`)
  return result.left
}

const ZERO_ID = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
const SAMPLE_BYTES = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff)
const SAMPLE_ID = Buffer.from(SAMPLE_BYTES).toString("base64url")

describe("ProcessId", () => {
  describe("accepted forms", () => {
    it.effect("a raw 32-byte id normalises to its 43-character base64url text", () =>
      Effect.gen(function* () {
        expect(yield* ProcessId.parse(new Uint8Array(32))).toBe(ZERO_ID)
        const id = yield* ProcessId.parse(SAMPLE_BYTES)
        expect(id).toBe(SAMPLE_ID)
        expect(id).toHaveLength(43)
        expect(yield* ProcessId.parse(Buffer.from(SAMPLE_BYTES))).toBe(SAMPLE_ID)
        expect(ProcessId.toBytes(id).equals(Buffer.from(SAMPLE_BYTES))).toBe(true)
      })
    )

    it.effect("a canonical 43-character id passes unchanged, and both forms give the same id", () =>
      Effect.gen(function* () {
        expect(yield* ProcessId.parse(SAMPLE_ID)).toBe(SAMPLE_ID)
        expect(yield* ProcessId.parse(ZERO_ID)).toBe(ZERO_ID)
        expect(yield* ProcessId.parse("__________________________________________8")).toBe(
          "__________________________________________8"
        )
        expect(yield* ProcessId.parse(SAMPLE_BYTES)).toBe(yield* ProcessId.parse(SAMPLE_ID))
        expect(ProcessId.unsafeMake(SAMPLE_BYTES)).toBe(SAMPLE_ID)
      })
    )

    it("ProcessIdFromInput decodes both forms and fails with the reason for anything else", () => {
      const decode = Schema.decodeUnknownEither(ProcessId.ProcessIdFromInput)
      expect(decode(SAMPLE_BYTES)).toEqual(Either.right(SAMPLE_ID))
      expect(decode(SAMPLE_ID)).toEqual(Either.right(SAMPLE_ID))
      const failure = decode(SAMPLE_ID.slice(1))
      expect(Either.isLeft(failure)).toBe(true)
      if (Either.isLeft(failure)) expect(failure.left.message).toMatch(/expected 43 base64url characters, got 42/)
      expect(Schema.is(ProcessId.ProcessId)(SAMPLE_ID)).toBe(true)
      expect(Schema.is(ProcessId.ProcessId)(`${SAMPLE_ID}A`)).toBe(false)
      expect(Schema.is(ProcessId.MessageId)(SAMPLE_ID)).toBe(true)
    })
  })

  describe("rejected forms give InvalidProcessId naming the problem", () => {
    it.effect("wrong length names the length", () =>
      Effect.gen(function* () {
        for (const input of ["", SAMPLE_ID.slice(0, 42), `${SAMPLE_ID}A`, `${SAMPLE_ID}=`]) {
          const error = yield* Effect.flip(ProcessId.parse(input))
          expect(error._tag).toBe("InvalidProcessId")
          expect(error.input).toBe(input)
          expect(error.reason).toBe(`expected 43 base64url characters, got ${input.length}`)
          expect(error.message).toContain(error.reason)
        }
      })
    )

    it.effect("a raw byte array of the wrong length names the length", () =>
      Effect.gen(function* () {
        for (const length of [0, 31, 33, 64]) {
          const error = yield* Effect.flip(ProcessId.parse(new Uint8Array(length)))
          expect(error._tag).toBe("InvalidProcessId")
          expect(error.reason).toBe(`expected 32 raw bytes, got ${length}`)
        }
      })
    )

    it.effect("characters outside the base64url alphabet ('+', '/', '=', space) name the alphabet", () =>
      Effect.gen(function* () {
        for (const bad of ["+", "/", "=", " ", "é"]) {
          const input = `${bad}${SAMPLE_ID.slice(1)}`
          expect(input).toHaveLength(43)
          const error = yield* Effect.flip(ProcessId.parse(input))
          expect(error._tag).toBe("InvalidProcessId")
          expect(error.input).toBe(input)
          expect(error.reason).toMatch(/outside the base64url alphabet/)
        }
      })
    )

    it.effect("a non-canonical last character (non-zero padding bits) names the canonical encoding", () =>
      Effect.gen(function* () {
        // "B", "C", "D" leave one of the 2 spare bits set; they decode to the same bytes as "A".
        for (const last of ["B", "C", "D", "9", "_"]) {
          const input = `${ZERO_ID.slice(0, 42)}${last}`
          const error = yield* Effect.flip(ProcessId.parse(input))
          expect(error._tag).toBe("InvalidProcessId")
          expect(error.reason).toMatch(/not the canonical encoding of 32 bytes/)
        }
        expect(yield* ProcessId.parse(`${ZERO_ID.slice(0, 42)}E`)).toBe(`${ZERO_ID.slice(0, 42)}E`)
      })
    )

    it("a non-string, non-byte input names its type", () => {
      for (const [input, type] of [
        [42, "number"],
        [undefined, "undefined"],
        [null, "object"],
        [{}, "object"],
        [[1, 2, 3], "object"],
        [true, "boolean"],
        [10n, "bigint"]
      ] as const) {
        const error = leftOf(input)
        expect(error._tag).toBe("InvalidProcessId")
        expect(error.reason).toBe(`expected a string, got ${type}`)
      }
    })

    it("an input that cannot be turned into text is still a typed InvalidProcessId, not a thrown TypeError", () => {
      const noPrototype = Object.create(null) as object
      const throwingToString = {
        toString: () => {
          throw new Error("boom")
        }
      }
      for (const input of [noPrototype, throwingToString, Symbol("id")]) {
        const error = leftOf(input)
        expect(error._tag).toBe("InvalidProcessId")
        expect(error.reason).toMatch(/^expected a string, got (object|symbol)$/)
        expect(typeof error.input).toBe("string")
      }
    })
  })

  describe("properties", () => {
    it.prop("parse(bytes) then toBytes round-trips every 32-byte array", [bytes32], ([bytes]) => {
      const id = Either.getOrThrow(ProcessId.parseEither(bytes))
      expect(id).toHaveLength(43)
      expect(ProcessId.toBytes(id).equals(Buffer.from(bytes))).toBe(true)
      expect(Either.getOrThrow(ProcessId.parseEither(id))).toBe(id)
    })

    it.prop(
      "every string of a length other than 43 is rejected with its length",
      [fc.oneof(base64urlOtherLength, anyOtherLength)],
      ([input]) => {
        const error = leftOf(input)
        expect(error._tag).toBe("InvalidProcessId")
        expect(error.reason).toBe(`expected 43 base64url characters, got ${input.length}`)
      }
    )

    it.prop(
      "a 43-character base64url string is accepted exactly when its last character has zero spare bits",
      [base64url43],
      ([input]) => {
        const canonical = ALPHABET.indexOf(input.at(-1)!) % 4 === 0
        const result = ProcessId.parseEither(input)
        expect(Either.isRight(result)).toBe(canonical)
        if (Either.isLeft(result)) expect(result.left.reason).toMatch(/not the canonical encoding of 32 bytes/)
      }
    )
  })
})
