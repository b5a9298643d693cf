/**
 * Schedule reads: the legacy SU page (`docs/behaviours.md` §4.4) and HyperBEAM's slot range (§4.7), both as
 * `AssignmentStore.page` reads bounded by count and by bytes, never a whole schedule.
 */
import { Effect } from "effect"
import type { AssignmentStore, Entry, NodeJsonEdge, NodeJsonPage, PageQuery } from "../../../AssignmentStore.js"
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

/** The decoded query of a legacy page read. Timestamps in ms; `maxBytes` bounds the page (`PageQuery.maxBytes`). */
export interface LegacyQuery {
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly limit?: number | undefined
  readonly fromNonce?: number | undefined
  readonly toNonce?: number | undefined
  readonly showAnchor?: boolean | undefined
  readonly maxBytes?: number | undefined
}

/**
 * One page of `processId`'s schedule. Timestamp mode: `from` exclusive, `to` inclusive, cursor = timestamp; the
 * Process (nonce 0) is on the first page only, i.e. when `from` is absent (K13). Nonce mode (`fromNonce` or
 * `toNonce` given): `fromNonce` exclusive (-1 or absent = from the Process), `toNonce` inclusive, cursor = nonce.
 * The page holds at most `limit` edges and `maxBytes` bytes of entries (one edge at least); `has_next_page` is
 * true when it was cut by either, so a page that says there is more always has edges.
 * Returns the page as UTF-8 JSON (`Api.Page`'s encoded form) in chunks, to be written as they are: each edge's stored node JSON
 * (`Entry.nodeJson`, the read model the SQL stores write at append, read with `AssignmentStore.nodeJsonPage`
 * where the store has it) or, where there is none, the node rendered now (`nodeJsonText`).
 */
export const legacyPage = (
  store: AssignmentStore["Type"],
  processId: ProcessId,
  query: LegacyQuery
): Effect.Effect<PageBody, StoreError> => {
  const limit = Math.min(query.limit ?? DEFAULT_LIMIT, MAX_LIMIT)
  // the stored node JSON is the page, unless a binary anchor must be shown (it renders that from the bytes)
  const nodeJsonOnly = query.showAnchor !== true
  const byNonce = query.fromNonce !== undefined || query.toNonce !== undefined
  const bounds = { limit, nodeJsonOnly, maxBytes: query.maxBytes }
  const read = (pageQuery: PageQuery): Effect.Effect<NodeJsonPage, StoreError> =>
    nodeJsonOnly && store.nodeJsonPage !== undefined
      ? store.nodeJsonPage(processId, pageQuery)
      : Effect.map(store.page(processId, pageQuery), ({ entries, more }) => ({
          edges: entries.map(edgeOf(nodeJsonOnly)),
          more
        }))
  // upstream never returns the Process once `from` is given: one extra row in case it falls in the range, and a
  // second read past it when it was all the byte bound let through
  const afterFrom = (from: number): Effect.Effect<NodeJsonPage, StoreError> =>
    Effect.flatMap(read({ ...bounds, by: "timestamp", from, to: query.to, limit: limit + 1 }), ({ edges, more }) => {
      const messages = edges.filter((e) => e.slot !== 0)
      const last = edges.at(-1)
      if (messages.length === 0 && more && last !== undefined) return afterFrom(last.timestamp)
      return Effect.succeed({ edges: messages.slice(0, limit), more: more || messages.length > limit })
    })
  const page: Effect.Effect<NodeJsonPage, StoreError> = byNonce
    ? read({
        ...bounds,
        by: "slot",
        from: query.fromNonce === undefined || query.fromNonce < 0 ? undefined : query.fromNonce,
        to: query.toNonce
      })
    : query.from === undefined
      ? read({ ...bounds, by: "timestamp", to: query.to })
      : afterFrom(query.from)
  const options = { showAnchor: query.showAnchor }
  return Effect.map(page, ({ edges, more }) => {
    // the page as the nodes' own bytes between ASCII openings: nothing is copied before the socket's writev
    const chunks: Array<Uint8Array> = []
    let byteLength = 0
    let text = `{"page_info":{"has_next_page":${more}},"edges":[`
    for (let i = 0; i < edges.length; i++) {
      const edge = edges[i]!
      text += `${i === 0 ? "" : "},"}{"cursor":"${byNonce ? edge.slot : edge.timestamp}","node":`
      const node = edge.nodeJson ?? Buffer.from(nodeJsonText(edge.entry, options), "utf8")
      const opening = Buffer.from(text, "latin1")
      chunks.push(opening, node)
      byteLength += opening.byteLength + node.byteLength
      text = ""
    }
    const end = Buffer.from(edges.length === 0 ? `${text}]}` : "}]}", "latin1")
    chunks.push(end)
    return { chunks, byteLength: byteLength + end.byteLength }
  })
}

/** A page's body: its bytes are the concatenation of `chunks`, `byteLength` in all. */
export interface PageBody {
  readonly chunks: ReadonlyArray<Uint8Array>
  readonly byteLength: number
}

/** The body as one buffer (tests). */
export const pageBytes = (body: PageBody): Uint8Array => Buffer.concat(body.chunks, body.byteLength)

/** An entry of `page` as an edge: its stored node JSON when `nodeJsonOnly` and it has one, else the entry. */
const edgeOf =
  (nodeJsonOnly: boolean) =>
  (entry: Entry): NodeJsonEdge => {
    const { slot, timestamp } = entry.assignment
    return nodeJsonOnly && entry.nodeJson !== undefined
      ? { slot, timestamp, nodeJson: entry.nodeJson }
      : { slot, timestamp, entry }
  }

/**
 * The decoded query of a HyperBEAM schedule read, slots inclusive; `latest` is the process's last slot;
 * `maxBytes` bounds the read (`PageQuery.maxBytes`).
 */
export interface SlotRange {
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly latest: number
  readonly maxBytes?: number | undefined
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
 * for a cut range past the end, which would make a client loop on empty pages). A read cut by `maxBytes` ends
 * early (one slot at least) and continues.
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
    store.page(processId, {
      by: "slot",
      from: from === 0 ? undefined : from - 1,
      to,
      limit: to - from + 1,
      maxBytes: range.maxBytes
    }),
    ({ entries, more }) => ({ entries, continues: continues || more })
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
