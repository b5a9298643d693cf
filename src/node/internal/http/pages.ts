/**
 * Schedule reads: the legacy SU page (`docs/behaviours.md` §4.4) and HyperBEAM's slot range (§4.7), both as bounded
 * `AssignmentStore.range` reads, never a whole schedule.
 */
import { Effect } from "effect"
import type { AssignmentStore, Entry } from "../../../AssignmentStore.js"
import type { StoreError } from "../../../errors.js"
import { hbAssignmentJson, nodeJson, nodeJsonText } from "../../../internal/wire-format.js"
import type { ProcessId } from "../../../ProcessId.js"
import type { Aos2Schedule, HttpSchedule } from "../../../WireFormat.js"

/** Default page size of `GET /{id}` (upstream's default). */
export const DEFAULT_LIMIT = 100

/** Largest page of `GET /{id}`; larger `limit`s are capped (the CU asks for 1000). */
export const MAX_LIMIT = 1000

/** Largest span `to - from` of a HyperBEAM schedule read; a wider range is cut to `from + 1000`. */
export const MAX_SPAN = 1000

/** The decoded query of a legacy page read. Timestamps in ms. */
export interface PageQuery {
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly limit?: number | undefined
  readonly fromNonce?: number | undefined
  readonly toNonce?: number | undefined
  readonly showAnchor?: boolean | undefined
}

/**
 * One page of `processId`'s schedule. Timestamp mode: `from` exclusive, `to` inclusive, cursor = timestamp; the
 * Process (nonce 0) is on the first page only, i.e. when `from` is absent (K13). Nonce mode (`fromNonce` or
 * `toNonce` given): `fromNonce` exclusive (-1 or absent = from the Process), `toNonce` inclusive, cursor = nonce.
 * Reads `limit + 1` entries to learn `has_next_page`, so a page that says there is more always has edges.
 * Returns the page as UTF-8 JSON (`Api.Page`'s encoded form): each edge's stored node JSON (`Entry.nodeJson`,
 * the read model the SQL stores write at append) or, where there is none, the node rendered now (`nodeJsonText`).
 */
export const legacyPage = (
  store: AssignmentStore["Type"],
  processId: ProcessId,
  query: PageQuery
): Effect.Effect<Uint8Array, StoreError> => {
  const limit = Math.min(query.limit ?? DEFAULT_LIMIT, MAX_LIMIT)
  // the stored node JSON is the page, unless a binary anchor must be shown (it renders that from the bytes)
  const nodeJsonOnly = query.showAnchor !== true
  const byNonce = query.fromNonce !== undefined || query.toNonce !== undefined
  const read: Effect.Effect<ReadonlyArray<Entry>, StoreError> = byNonce
    ? store.range(processId, {
        by: "slot",
        from: query.fromNonce === undefined || query.fromNonce < 0 ? undefined : query.fromNonce,
        to: query.toNonce,
        limit: limit + 1,
        nodeJsonOnly
      })
    : query.from === undefined
      ? store.range(processId, { by: "timestamp", to: query.to, limit: limit + 1, nodeJsonOnly })
      : // one extra row in case the Process falls in the range: upstream never returns it once `from` is given
        Effect.map(
          store.range(processId, { by: "timestamp", from: query.from, to: query.to, limit: limit + 2, nodeJsonOnly }),
          (rows) => rows.filter((e) => e.assignment.slot !== 0).slice(0, limit + 1)
        )
  return Effect.map(read, (rows) => {
    const count = Math.min(rows.length, limit)
    const parts: Array<Uint8Array> = [utf8(`{"page_info":{"has_next_page":${rows.length > limit}},"edges":[`)]
    const options = { showAnchor: query.showAnchor }
    for (let i = 0; i < count; i++) {
      const entry = rows[i]!
      const cursor = byNonce ? entry.assignment.slot : entry.assignment.timestamp
      parts.push(utf8(`${i === 0 ? "" : ","}{"cursor":"${cursor}","node":`))
      const stored = nodeJsonOnly ? entry.nodeJson : undefined
      parts.push(stored ?? utf8(nodeJsonText(entry, options)), CLOSE)
    }
    parts.push(utf8("]}"))
    return Buffer.concat(parts)
  })
}

const utf8 = (text: string): Buffer => Buffer.from(text, "utf8")
const CLOSE = utf8("}")

/** The decoded query of a HyperBEAM schedule read, slots inclusive; `latest` is the process's last slot. */
export interface SlotRange {
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly latest: number
}

/** The entries of a slot range and whether the schedule continues past it. */
export interface SlotRead {
  readonly entries: ReadonlyArray<Entry>
  readonly continues: boolean
}

/**
 * Slots `from..to` inclusive (behaviours 35–38): `from` defaults to 0 and a negative one is clamped to 0 after
 * parsing; `to` defaults to `latest`; a span over 1000 is cut to `from + 1000`; `to < from` is empty.
 * `continues` is true only when the range was cut and slots remain after it ([FIX]: HyperBEAM also says true
 * for a cut range past the end, which would make a client loop on empty pages).
 */
export const slotRange = (
  store: AssignmentStore["Type"],
  processId: ProcessId,
  range: SlotRange
): Effect.Effect<SlotRead, StoreError> => {
  const from = Math.max(0, range.from ?? 0)
  const wanted = range.to ?? range.latest
  const to = Math.min(wanted, from + MAX_SPAN)
  const continues = to < wanted && range.latest > to
  if (to < from) return Effect.succeed({ entries: [], continues: false })
  return Effect.map(
    store.range(processId, { by: "slot", from: from === 0 ? undefined : from - 1, to, limit: to - from + 1 }),
    (entries) => ({ entries, continues })
  )
}

/** Time info stamped on HyperBEAM responses: now (ms) and the gateway's current block height and hash. */
export interface TimeInfo {
  readonly timestamp: number
  readonly blockHeight: number
  readonly blockHash: string
}

/** A slot read as the `application/aos-2` page (behaviour 39). */
export const aos2Schedule = (processId: ProcessId, read: SlotRead, time: TimeInfo): typeof Aos2Schedule.Type => ({
  page_info: {
    process: processId,
    has_next_page: read.continues,
    timestamp: String(time.timestamp),
    "block-height": String(time.blockHeight),
    "block-hash": time.blockHash
  },
  edges: read.entries.map((entry) => ({ cursor: entry.assignment.slot, node: nodeJson(entry) }))
})

/** A slot read as the `application/http`-shaped schedule, in JSON (behaviours 35–36). */
export const httpSchedule = (processId: ProcessId, read: SlotRead, time: TimeInfo): typeof HttpSchedule.Type => ({
  type: "schedule",
  process: processId,
  continues: read.continues,
  timestamp: time.timestamp,
  "block-height": time.blockHeight,
  "block-hash": time.blockHash,
  assignments: Object.fromEntries(read.entries.map((entry) => [String(entry.assignment.slot), hbAssignmentJson(entry)]))
})
