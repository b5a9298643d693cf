/**
 * `httpError`: the HTTP answer of each library failure that issue 13 added or changed. An unknown outcome is
 * its own answer (504, "send the same message again"), never the 503 "did not assign" of a timeout; a fenced
 * writer's stop is a retryable 503.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { OutcomeUnknown, SchedulerStopped, SchedulerTimeout } from "../../../src/errors.js"
import { OutcomeUnknownReply, Unavailable } from "../../../src/node/Api.js"
import { httpError } from "../../../src/node/internal/http/ingest.js"

const P = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
const M = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

describe("httpError", () => {
  it.effect("OutcomeUnknown is a 504 OutcomeUnknownReply telling the client to send the same message again", () =>
    Effect.gen(function* () {
      const reply = yield* httpError(new OutcomeUnknown({ processId: P, messageId: M, timeoutMs: 10_000 }))
      expect(reply).toBeInstanceOf(OutcomeUnknownReply)
      expect(reply.error).toBe(
        `The outcome of message ${M} for process ${P} is unknown (no answer from the store within 10000 ms): ` +
          "send the same message again, a retry is idempotent"
      )
    })
  )

  it.effect("a timeout before the write stays a 503 'did not assign'; a fenced server's stop is a 503 to retry", () =>
    Effect.gen(function* () {
      const timeout = yield* httpError(new SchedulerTimeout({ processId: P, timeoutMs: 10_000 }))
      expect(timeout).toEqual(new Unavailable({ error: `Scheduler for ${P} did not assign within 10000 ms` }))
      const fenced = yield* httpError(new SchedulerStopped({ processId: P, reason: "fenced: newer writer; retry" }))
      expect(fenced).toEqual(new Unavailable({ error: `Scheduler for ${P} stopped: fenced: newer writer; retry` }))
    })
  )
})
