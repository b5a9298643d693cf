/**
 * The SU's wire format: the JSON shapes the CU, the MU, aoconnect and HyperBEAM clients parse, as Schemas. The
 * HTTP API (`node/Api`), the SQL stores' read model (the node JSON kept next to each row) and clients share them.
 *
 * Mirrors the legacy ao SU's `json.rs` (ao.TN.1, `permaweb/ao@ff178d51 servers/su/src/domain/core/json.rs`) and
 * HyperBEAM's `dev_scheduler_formats` (`permaweb/HyperBEAM@b2743e4a`). Field names and value types are exact:
 * snake_case pages, string cursors, 12-digit zero-padded block heights, every tag value a string.
 *
 * @since 0.2.0
 */
import { Schema } from "effect"
// ---------------------------------------------------------------------------------------------------------------
// Outputs (legacy ao SU, ao.TN.1)
// ---------------------------------------------------------------------------------------------------------------

/**
 * `{address, key}`: the signer's address (base64url(sha256(key))) and public key (base64url).
 *
 * @since 0.1.0
 * @category wire format
 */
export const Owner = Schema.Struct({ address: Schema.String, key: Schema.String }).annotations({ identifier: "Owner" })

/**
 * `{name, value}`, both strings.
 *
 * @since 0.1.0
 * @category wire format
 */
export const TagJson = Schema.Struct({ name: Schema.String, value: Schema.String }).annotations({ identifier: "Tag" })

/** The fields every signed data item shares in the legacy JSON, in upstream's order. */
const signedItemFields = {
  id: Schema.String,
  owner: Owner,
  tags: Schema.Array(TagJson),
  signature: Schema.String,
  anchor: Schema.NullOr(Schema.String),
  target: Schema.NullOr(Schema.String)
}

/**
 * A scheduled message as the legacy SU renders it (`MessageInner` in `json.rs`): `data` is the data item's
 * payload as UTF-8 text (invalid sequences replaced, as upstream's `from_utf8_lossy`; the CU reads it as text),
 * `anchor` its anchor as text (null when empty), `target` the 43-character target or null, `signature` base64url.
 *
 * @since 0.1.0
 * @category wire format
 */
export const MessageJson = Schema.Struct({ ...signedItemFields, data: Schema.NullOr(Schema.String) }).annotations({
  identifier: "Message"
})

/**
 * An assignment as the legacy SU renders it (`AssignmentInner`): the SU-signed data item with the ao.TN.1 tags
 * Process, Epoch, Nonce, Hash-Chain, Block-Height, Timestamp, Data-Protocol, Type, Variant, Message. Its `anchor`
 * and `target` are null: the assignment data item carries neither (the `Process` tag names the process).
 *
 * @since 0.1.0
 * @category wire format
 */
export const AssignmentJson = Schema.Struct(signedItemFields).annotations({ identifier: "Assignment" })

/**
 * `{message, assignment}`: one schedule entry (`Message` in `json.rs`). `message` is null for an assignment of an
 * existing on-chain transaction; the CU then loads it from the gateway by the `Message` tag.
 *
 * @since 0.1.0
 * @category wire format
 */
export const MessageNode = Schema.Struct({
  message: Schema.NullOr(MessageJson),
  assignment: AssignmentJson
}).annotations({ identifier: "MessageNode" })

/**
 * A page of a process's schedule (docs/behaviours.md §4.4): `{page_info: {has_next_page}, edges: [{cursor, node}]}`. `cursor` is the
 * entry's timestamp in ms as a string (or its nonce in nonce mode); pass the last one as the next `from`.
 * `has_next_page` is never true on a page without edges.
 *
 * @since 0.1.0
 * @category wire format
 */
export const Page = Schema.Struct({
  page_info: Schema.Struct({ has_next_page: Schema.Boolean }),
  edges: Schema.Array(Schema.Struct({ cursor: Schema.String, node: MessageNode }))
}).annotations({ identifier: "Page" })

/**
 * `GET /processes/{id}` (docs/behaviours.md §4.6): the Process data item, with `block` the 12-digit Block-Height string of its
 * nonce-0 assignment (the CU `parseInt`s it) and `timestamp` that assignment's timestamp as a JSON number (ms).
 * `data` is the payload as text, or null when it is not valid UTF-8 (upstream's `data_if_string`).
 *
 * @since 0.1.0
 * @category wire format
 */
export const ProcessJson = Schema.Struct({
  process_id: Schema.String,
  block: Schema.String,
  owner: Owner,
  tags: Schema.Array(TagJson),
  timestamp: Schema.Number,
  data: Schema.NullOr(Schema.String),
  anchor: Schema.NullOr(Schema.String),
  signature: Schema.String,
  target: Schema.NullOr(Schema.String)
}).annotations({ identifier: "Process" })

/**
 * `GET /`: `{timestamp: "<ms>", address: "<SU wallet address>"}` (upstream's `health` flow).
 *
 * @since 0.1.0
 * @category wire format
 */
export const Info = Schema.Struct({ timestamp: Schema.String, address: Schema.String }).annotations({
  identifier: "Info"
})

/**
 * `POST /`: `{timestamp: <ms number>, id}`; `id` is the data item id, or the assignment id for `?assign=`.
 * `timestamp` is the assignment's `Timestamp`.
 *
 * @since 0.1.0
 * @category wire format
 */
export const Scheduled = Schema.Struct({ timestamp: Schema.Number, id: Schema.String }).annotations({
  identifier: "Scheduled"
})

/**
 * `GET /timestamp`: `{timestamp: "<ms>", block_height: "<12 digits>"}`; the CU `parseInt`s both.
 *
 * @since 0.1.0
 * @category wire format
 */
export const Timestamp = Schema.Struct({ timestamp: Schema.String, block_height: Schema.String }).annotations({
  identifier: "Timestamp"
})

// ---------------------------------------------------------------------------------------------------------------
// Outputs (HyperBEAM ~scheduler@1.0)
// ---------------------------------------------------------------------------------------------------------------

/**
 * `GET /~scheduler@1.0/status` (behaviour 41): the node address and the ids of its live schedulers.
 *
 * @since 0.1.0
 * @category wire format
 */
export const SchedulerStatus = Schema.Struct({
  address: Schema.String,
  processes: Schema.Array(Schema.String),
  "cache-control": Schema.Literal("no-store")
}).annotations({ identifier: "SchedulerStatus" })

/**
 * `GET /~scheduler@1.0/slot` (behaviour 40): `current` is the last assigned slot (-1 if none); `timestamp` (ms),
 * `block-height` and `block-hash` (base64url of 32 zero bytes) are the node's current time info. Height and
 * hash are not swapped (HyperBEAM swaps them).
 *
 * @since 0.1.0
 * @category wire format
 */
export const SchedulerSlot = Schema.Struct({
  process: Schema.String,
  current: Schema.Number,
  timestamp: Schema.Number,
  "block-height": Schema.Number,
  "block-hash": Schema.String,
  "cache-control": Schema.Literal("no-store"),
  "wallet-address": Schema.String
}).annotations({ identifier: "SchedulerSlot" })

/**
 * `GET /~scheduler@1.0/schedule` with `accept: application/aos-2` (behaviour 39): an AOS2 page whose cursors are
 * slots (numbers) and whose `page_info` numbers are decimal strings.
 *
 * @since 0.1.0
 * @category wire format
 */
export const Aos2Schedule = Schema.Struct({
  page_info: Schema.Struct({
    process: Schema.String,
    has_next_page: Schema.Boolean,
    timestamp: Schema.String,
    "block-height": Schema.String,
    "block-hash": Schema.String
  }),
  edges: Schema.Array(Schema.Struct({ cursor: Schema.Number, node: MessageNode }))
}).annotations({ identifier: "Aos2Schedule" })

/**
 * One assignment in the `application/http`-shaped schedule: the assignment's ao.TN.1 tags as HyperBEAM keys
 * (lower-case, numbers as numbers), its `id`, and `body`, the scheduled message (null for an assigned tx).
 *
 * @since 0.1.0
 * @category wire format
 */
export const HbAssignment = Schema.Struct({
  id: Schema.String,
  "data-protocol": Schema.String,
  variant: Schema.String,
  type: Schema.String,
  process: Schema.String,
  epoch: Schema.Number,
  slot: Schema.Number,
  timestamp: Schema.Number,
  "block-height": Schema.Number,
  "block-hash": Schema.String,
  "hash-chain": Schema.String,
  message: Schema.String,
  body: Schema.NullOr(MessageJson)
}).annotations({ identifier: "HbAssignment" })

/**
 * `POST /{process}/~scheduler@1.0/schedule` (since 0.3.0): the assignment the posted item got, as HyperBEAM's
 * `schedule` POST replies with the committed assignment (`permaweb/HyperBEAM src/dev_scheduler.erl`
 * `post_schedule`): `HbAssignment` without `body` (the client sent the message). The MU's HyperBEAM-mode client
 * reads none of it: it reads the response headers `slot`, `timestamp` (ms) and `process`, which carry the same
 * values (`permaweb/ao servers/mu/src/domain/clients/scheduler.js`).
 *
 * @since 0.3.0
 * @category wire format
 */
export const HbScheduled = HbAssignment.omit("body").annotations({ identifier: "HbScheduled" })

/**
 * `GET /~scheduler@1.0/schedule` without the aos-2 accept (behaviours 35–38): `{type: "schedule", process,
 * continues, timestamp, block-height, block-hash, assignments: {<slot>: assignment}}`, as JSON.
 *
 * @since 0.1.0
 * @category wire format
 */
export const HttpSchedule = Schema.Struct({
  type: Schema.Literal("schedule"),
  process: Schema.String,
  continues: Schema.Boolean,
  timestamp: Schema.Number,
  "block-height": Schema.Number,
  "block-hash": Schema.String,
  assignments: Schema.Record({ key: Schema.String, value: HbAssignment })
}).annotations({ identifier: "HttpSchedule" })
