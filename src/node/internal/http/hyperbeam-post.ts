/**
 * `POST /{process}/~scheduler@1.0/schedule`: the route the MU's HyperBEAM-mode client posts to
 * (`permaweb/ao servers/mu/src/domain/clients/scheduler.js`; HyperBEAM's `~scheduler@1.0` `schedule` key,
 * `permaweb/HyperBEAM src/dev_scheduler.erl`). The body is the same ANS-104 data item as on the legacy `POST /`,
 * verified, checked and scheduled by the same code (`Ingest.submitDataItem`), so the errors and the idempotent
 * retry are the legacy POST's; the process the path names must be the item's (its target, or its own id for a
 * Process). The reply carries `slot`, `timestamp` and `process` as response headers, the only part the MU reads.
 */
import { type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { hbScheduledJson } from "../../../internal/wire-format.js"
import type { ProcessId } from "../../../ProcessId.js"
import type { SchedulerRegistry } from "../../../SchedulerRegistry.js"
import { BadRequest, type PayloadTooLarge } from "../../Api.js"
import * as Body from "./body.js"
import { type HttpError, type Submitted, submitDataItem } from "./ingest.js"

/** The only `codec-device` served: the MU sends `codec-device: ans104@1.0` with an ANS-104 body. */
export const CODEC_DEVICE = "ans104@1.0"

/** The response headers the MU's HyperBEAM-mode client reads (`slot`, `timestamp` in ms, `process`). */
export const READ_HEADERS = ["slot", "timestamp", "process"] as const

/** `slot`, `timestamp` and `process` of a scheduled item, as decimal strings and the process id. */
export const scheduleHeaders = (submitted: Submitted): Record<(typeof READ_HEADERS)[number], string> => ({
  slot: String(submitted.assignment.slot),
  timestamp: String(submitted.assignment.timestamp),
  process: submitted.processId
})

/**
 * Reads the body (at most `bodyLimit` bytes, else 413), schedules it for `processId` and answers 200 with the
 * assignment as JSON (`WireFormat.HbScheduled`) and the `slot`, `timestamp` and `process` headers, exposed to
 * browsers through CORS. A `codec-device` other than `ans104@1.0` is refused (400): only ANS-104 is decoded.
 */
export const post = (
  registry: SchedulerRegistry["Type"],
  request: HttpServerRequest.HttpServerRequest,
  processId: ProcessId,
  bodyLimit: number
): Effect.Effect<HttpServerResponse.HttpServerResponse, HttpError | PayloadTooLarge> =>
  Effect.gen(function* () {
    const codec = request.headers["codec-device"]
    if (codec !== undefined && codec !== CODEC_DEVICE) {
      return yield* new BadRequest({
        error: `codec-device ${JSON.stringify(codec)} is not supported: post a signed ANS-104 data item with codec-device ${CODEC_DEVICE}`
      })
    }
    const body = yield* Body.read(request, bodyLimit)
    if (body.byteLength === 0) {
      return yield* new BadRequest({
        error: "The body is empty: POST /{process}/~scheduler@1.0/schedule takes a signed ANS-104 data item"
      })
    }
    const submitted = yield* submitDataItem(registry, body, processId)
    return HttpServerResponse.unsafeJson(hbScheduledJson(submitted.assignment), {
      headers: { ...scheduleHeaders(submitted), "access-control-expose-headers": READ_HEADERS.join(", ") }
    })
  })
