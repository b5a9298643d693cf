/**
 * The SU's HTTP API as an `@effect/platform` `HttpApi`: every route, its inputs, its JSON shapes and its errors.
 * `Http.ts` implements it; `/openapi.json` and the Swagger page at `/docs` are generated from it.
 *
 * Mirrors the legacy ao SU (ao.TN.1, `permaweb/ao servers/su`, `docs/behaviours.md` §4.2–§4.6) that the CU, the MU and
 * aoconnect call, plus the HyperBEAM `~scheduler@1.0` reads `status`, `slot` and `schedule` and the `schedule` POST
 * of the MU's HyperBEAM mode (§4.7). Field names and value types are the wire format those clients parse:
 * snake_case pages, string cursors, 12-digit zero-padded block heights, every tag value a string.
 *
 * Every error body is `{"error": "<message>"}` (§4.3).
 *
 * Size: about 350 lines, of which about 197 are code; the rest is the docstrings and `@example`s every
 * export carries. The code alone stays under 300 lines, so the module is kept whole.
 *
 * @since 0.1.0
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { invalidReason, MessageId, ProcessId } from "../ProcessId.js"
import {
  Aos2Schedule,
  AssignmentJson,
  HbAssignment,
  HbScheduled,
  HttpSchedule,
  Info,
  MessageJson,
  MessageNode,
  Owner,
  Page,
  ProcessJson,
  Scheduled,
  SchedulerSlot,
  SchedulerStatus,
  TagJson,
  Timestamp
} from "../WireFormat.js"

/**
 * The wire shapes, re-exported from `WireFormat` so that the API module names every shape it serves.
 *
 * @since 0.1.0
 * @category wire format
 */
export {
  Aos2Schedule,
  AssignmentJson,
  HbAssignment,
  HbScheduled,
  HttpSchedule,
  Info,
  MessageJson,
  MessageNode,
  Owner,
  Page,
  ProcessJson,
  Scheduled,
  SchedulerSlot,
  SchedulerStatus,
  TagJson,
  Timestamp
}

// ---------------------------------------------------------------------------------------------------------------
// Errors: `{"error": string}` on the wire
// ---------------------------------------------------------------------------------------------------------------

const ErrorBody = Schema.Struct({ error: Schema.String }).annotations({ identifier: "ErrorBody" })

/** A TaggedError class whose only field is `error`, encoded on the wire as `{"error": …}` with `status`. */
const wire = <A extends { readonly error: string }, I, R>(
  error: Schema.Schema<A, I, R> & (new (props: { readonly error: string }) => A),
  status: number
): Schema.Schema<A, { readonly error: string }> =>
  Schema.transform(ErrorBody, Schema.typeSchema(error), {
    strict: true,
    decode: (body) => new error(body),
    encode: (e) => ({ error: e.error })
  }).annotations(HttpApiSchema.annotations({ status }))

/**
 * 400: the request cannot be served as sent: a malformed id or query parameter, an invalid data item, a
 * process this SU does not host, a duplicate message. Upstream answers 400 for all of these, e.g.
 * `"Message or Process not found"` (§4.3).
 *
 * @since 0.1.0
 * @category errors
 */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", { error: Schema.String }) {}

/**
 * 413: the request body is larger than the node's body limit (`--body-limit`, bytes).
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  error: Schema.String
}) {}

/**
 * 503: the node cannot take the request now (a full mailbox, a scheduler timeout, a stopping node, an upload the
 * bundler has not confirmed yet in `remote_confirmation`); retry later.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", { error: Schema.String }) {}

/**
 * 504: the outcome of a `POST /` is unknown: its assignment was being written when the deadline passed (or the
 * store stopped answering mid-write), so it may be stored. The body says to send the same item again: a re-post of
 * a message already scheduled answers 200 with its original assignment, one that was not stored is scheduled then.
 * The reply to the library's `OutcomeUnknown`.
 *
 * @since 0.3.0
 * @category errors
 */
export class OutcomeUnknownReply extends Schema.TaggedError<OutcomeUnknownReply>()("OutcomeUnknownReply", {
  error: Schema.String
}) {}

/**
 * 500: the store failed or a bug was hit; the details are logged, not sent.
 *
 * @since 0.1.0
 * @category errors
 */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", { error: Schema.String }) {}

// ---------------------------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------------------------

const idParam = <S extends typeof ProcessId | typeof MessageId>(schema: S): S =>
  schema.annotations({
    message: (issue) => ({
      message: `${JSON.stringify(issue.actual)} is not a valid id (${
        typeof issue.actual === "string" ? invalidReason(issue.actual) : "expected a string"
      })`,
      override: true
    })
  }) as S

const integerFromString = (min: number, what: string) =>
  Schema.transform(
    Schema.String.pipe(
      Schema.filter(
        (s) => (/^-?[0-9]{1,15}$/.test(s) && Number(s) >= min) || `expected ${what}, got ${JSON.stringify(s)}`
      )
    ),
    Schema.Int,
    { strict: true, decode: (s) => Number(s), encode: (n) => String(n) }
  )

/**
 * A query parameter holding a non-negative integer (a timestamp in ms, a nonce or a count), as decimal digits.
 *
 * @since 0.1.0
 * @category schemas
 */
export const NonNegativeIntParam = integerFromString(0, "a non-negative integer")

/**
 * A query parameter holding a positive integer (a `limit`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const PositiveIntParam = integerFromString(1, "a positive integer")

/**
 * A query parameter holding any integer; HyperBEAM clamps a negative `from` to 0 after parsing (behaviour 38).
 *
 * @since 0.1.0
 * @category schemas
 */
export const IntParam = integerFromString(Number.MIN_SAFE_INTEGER, "an integer")

/**
 * The query of `GET /{id}`. `process-id` is optional and defaults to the path id: aoconnect's
 * `getMessagesByRange` leaves it out (§4.2, "compatibility trap"). `from` is exclusive and `to` inclusive,
 * timestamps in ms; `from-nonce` (exclusive, -1 = from the start) and `to-nonce` (inclusive) switch to nonce
 * mode; `limit` defaults to 100 and is capped at 1000. `show-anchor` renders non-UTF-8 anchors as base64url.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ReadParams = Schema.Struct({
  "process-id": Schema.optional(idParam(ProcessId)),
  from: Schema.optional(NonNegativeIntParam),
  to: Schema.optional(NonNegativeIntParam),
  limit: Schema.optional(PositiveIntParam),
  "from-nonce": Schema.optional(integerFromString(-1, "an integer of at least -1")),
  "to-nonce": Schema.optional(NonNegativeIntParam),
  "show-anchor": Schema.optional(Schema.String)
})

/**
 * The query of `POST /`: both `process-id` and `assign` to assign an existing transaction (AOP-1/2), or
 * neither to schedule the data item in the body. `exclude` (AOP-1): comma-separated values, one `Exclude` tag
 * each on the assignment; `base-layer` (AOP-2): `assign` is an L1 transaction, checked by its confirmations.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ScheduleParams = Schema.Struct({
  "process-id": Schema.optional(idParam(ProcessId)),
  assign: Schema.optional(idParam(MessageId)),
  "base-layer": Schema.optional(Schema.String),
  exclude: Schema.optional(Schema.String)
})

// ---------------------------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------------------------

const ProcessIdPath = Schema.Struct({ processId: idParam(ProcessId) })

/**
 * The legacy ao SU routes (ao.TN.1), as the CU, the MU and aoconnect call them (§4.2).
 *
 * @since 0.1.0
 * @category models
 */
export class SuGroup extends HttpApiGroup.make("su", { topLevel: true })
  .add(HttpApiEndpoint.get("info", "/").addSuccess(Info).annotate(OpenApi.Summary, "The SU's wallet address and clock"))
  .add(
    HttpApiEndpoint.post("schedule", "/")
      .setUrlParams(ScheduleParams)
      .setPayload(HttpApiSchema.Uint8Array({ contentType: "application/octet-stream" }))
      .addSuccess(Scheduled)
      .annotate(
        OpenApi.Summary,
        "Schedule a signed ANS-104 data item (Type Process or Message), or assign a tx with ?process-id&assign"
      )
  )
  .add(
    HttpApiEndpoint.get("timestamp", "/timestamp")
      .setUrlParams(Schema.Struct({ "process-id": Schema.optional(idParam(ProcessId)) }))
      .addSuccess(Timestamp)
      .annotate(OpenApi.Summary, "The current time (ms) and block height")
  )
  .add(
    HttpApiEndpoint.get("process", "/processes/:processId")
      .setPath(ProcessIdPath)
      .addSuccess(ProcessJson)
      .annotate(OpenApi.Summary, "A hosted process")
  )
  .add(
    HttpApiEndpoint.get("latest", "/:processId/latest")
      .setPath(ProcessIdPath)
      .addSuccess(MessageNode)
      .annotate(OpenApi.Summary, "The latest scheduled message of a process")
  )
  .add(
    HttpApiEndpoint.get("read", "/:id")
      .setPath(Schema.Struct({ id: idParam(MessageId) }))
      .setUrlParams(ReadParams)
      .addSuccess(Schema.Union(Page, MessageNode))
      .annotate(OpenApi.Summary, "A page of a process's schedule (id = process) or one scheduled message")
  ) {}

/**
 * The HyperBEAM `~scheduler@1.0` reads (§4.7) and, since 0.3.0, `POST /{processId}/~scheduler@1.0/schedule`, the
 * route the MU's HyperBEAM-mode client posts a data item to (`permaweb/ao servers/mu/src/domain/clients/scheduler.js`):
 * body the raw ANS-104 item (`Content-Type: application/ans104`, `codec-device: ans104@1.0`), 200 with the response
 * headers `slot`, `timestamp` (ms) and `process` and the assignment as `HbScheduled`; the legacy `POST /`'s errors
 * (400, 413, 503, 500), plus 400 when the path's process is not the item's target (or own id, for a Process).
 *
 * @since 0.1.0
 * @category models
 */
export class HyperBeamGroup extends HttpApiGroup.make("hyperbeam", { topLevel: true })
  .add(
    HttpApiEndpoint.post("post", "/:processId/~scheduler@1.0/schedule")
      .setPath(ProcessIdPath)
      .setPayload(HttpApiSchema.Uint8Array({ contentType: "application/ans104" }))
      .addSuccess(HbScheduled)
      .annotate(
        OpenApi.Summary,
        "Schedule a signed ANS-104 data item for the process (the MU's HyperBEAM mode); slot, timestamp, process headers"
      )
  )
  .add(
    HttpApiEndpoint.get("status", "/~scheduler@1.0/status")
      .addSuccess(SchedulerStatus)
      .annotate(OpenApi.Summary, "The node address and its live schedulers")
  )
  .add(
    HttpApiEndpoint.get("slot", "/~scheduler@1.0/slot")
      .setUrlParams(Schema.Struct({ target: idParam(ProcessId) }))
      .addSuccess(SchedulerSlot)
      .annotate(OpenApi.Summary, "The current slot of a hosted process (starts its scheduler)")
  )
  .add(
    HttpApiEndpoint.get("schedule", "/~scheduler@1.0/schedule")
      .setUrlParams(
        Schema.Struct({ target: idParam(ProcessId), from: Schema.optional(IntParam), to: Schema.optional(IntParam) })
      )
      .setHeaders(Schema.Struct({ accept: Schema.optional(Schema.String) }))
      .addSuccess(Schema.Union(Aos2Schedule, HttpSchedule))
      .annotate(OpenApi.Summary, "Assignments from..to (inclusive slots); accept: application/aos-2 for AOS2 JSON")
  ) {}

/**
 * `GET /health` (since 0.2.0): always 200 while the node serves, with the gateway's state (`Gateway.Status`):
 * `online`, `unreachable` (the last block is served; `lastError` says why) or `offline` (no gateway), its URL
 * (null offline), the served block's height and hash, and its age in ms (null when no block was fetched).
 *
 * @since 0.2.0
 * @category wire format
 */
export const Health = Schema.Struct({
  status: Schema.Literal("ok"),
  gateway: Schema.Struct({
    state: Schema.Literal("online", "offline", "unreachable"),
    url: Schema.NullOr(Schema.String),
    height: Schema.Number,
    hash: Schema.String,
    blockAgeMs: Schema.NullOr(Schema.Number),
    lastError: Schema.optional(Schema.String)
  })
}).annotations({ identifier: "Health" })

/**
 * Operations: liveness (with the gateway's state) and metrics.
 *
 * @since 0.1.0
 * @category models
 */
export class OpsGroup extends HttpApiGroup.make("ops", { topLevel: true })
  .add(
    HttpApiEndpoint.get("health", "/health")
      .addSuccess(Health)
      .annotate(OpenApi.Summary, "Liveness, with the gateway's state and the served block's age")
  )
  .add(
    HttpApiEndpoint.get("metrics", "/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
      .annotate(OpenApi.Summary, "Prometheus text exposition of the node's metrics")
  ) {}

/**
 * The whole SU API. Every endpoint may fail with `BadRequest` (400), `PayloadTooLarge` (413), `Unavailable`
 * (503), `OutcomeUnknownReply` (504) or `InternalError` (500), each as `{"error": string}`.
 *
 * @since 0.1.0
 * @category models
 */
export class Api extends HttpApi.make("ao-su")
  .add(SuGroup)
  .add(HyperBeamGroup)
  .add(OpsGroup)
  .addError(wire(BadRequest, 400))
  .addError(wire(PayloadTooLarge, 413))
  .addError(wire(Unavailable, 503))
  .addError(wire(OutcomeUnknownReply, 504))
  .addError(wire(InternalError, 500))
  .annotate(OpenApi.Title, "effect-scheduler-registry: AO Scheduler Unit")
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(
    OpenApi.Description,
    "The legacy ao SU API (ao.TN.1) that the CU, MU and aoconnect call, plus HyperBEAM ~scheduler@1.0 reads and the MU's HyperBEAM-mode schedule POST."
  ) {}
