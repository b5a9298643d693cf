/**
 * Where assignments live: the storage contract every scheduler writes through, and the in-memory store. The
 * durable stores are in their own entry points: `effect-scheduler-registry/sqlite` (`SqliteStore`) and
 * `effect-scheduler-registry/pg` (`PgStore`), both on the SQL store of `SqlStore`.
 *
 * Mirrors `dev_scheduler_cache` (write / read / list / latest) and the legacy ao SU's `messages` and
 * `processes` tables, with their failures fixed: (process, slot) and the assignment id are unique, so a second
 * write to a slot is a loud `StoreConflict` (behaviour 29), and `latest` is chosen by slot, not timestamp (K12).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, type Option } from "effect"
import type { Assignment, Message } from "./Assignment.js"
import type { Fenced, StoreConflict, StoreError } from "./errors.js"
import * as Memory from "./internal/store/memory.js"
import type { ProcessId } from "./ProcessId.js"

/**
 * The head of a process's schedule: its max slot with that slot's hash chain, assignment id and timestamp
 * (ms). Chosen by slot, never by timestamp (K12).
 *
 * @since 0.1.0
 * @category models
 */
export interface Latest {
  readonly slot: number
  readonly hashChain: string
  readonly assignmentId: string
  readonly timestamp: number
}

/**
 * One stored schedule entry: the assignment, and the scheduled message's data item bytes when the SU has them
 * (`undefined` for an assignment of an existing Arweave transaction).
 *
 * `nodeJson`: the entry as the legacy SU's `{message, assignment}` JSON, UTF-8 bytes, as the SQL stores write
 * it next to the row at append time (a read model, so that a 1,000-edge page is a read and a concatenation).
 * Absent from the memory store, for rows written before it existed, and for messages over
 * `NODE_JSON_MAX_BYTES`; readers render those from the bytes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly assignment: Assignment
  readonly message: Uint8Array | undefined
  readonly nodeJson?: Uint8Array | undefined
}

/**
 * The largest message (bytes) whose node JSON the SQL stores keep next to the row; larger ones are rendered
 * when read, so a 10 MiB body is not stored twice. 64 KiB. Our read model: the legacy ao SU renders every page
 * from its rows (`json.rs`), HyperBEAM has no page JSON.
 *
 * @since 0.1.0
 * @category constants
 */
export const NODE_JSON_MAX_BYTES = 64 * 1024

/**
 * A range read of one process's schedule, ordered by slot.
 *
 * - `by: "slot"`: `from` and `to` are slots; `by: "timestamp"`: they are timestamps in ms.
 * - `from` is **exclusive** and `to` **inclusive** (`docs/behaviours.md` §4.4); either may be absent.
 * - `limit`: the most entries returned (1 or more). Callers read `limit + 1` to learn whether a next page exists.
 * - `nodeJsonOnly`: for readers that need only `Entry.nodeJson` (pages). An entry that has it comes back
 *   without its data item bytes (`assignment.raw` empty, `message` undefined), so the read does not move them;
 *   entries without it come back whole. Ignored by the memory store, which keeps no node JSON.
 *
 * In timestamp mode the SQL stores walk the (process, timestamp, slot) index, so ties are broken by slot; that is
 * slot order because a process's timestamps never fall as its slots rise (the scheduler bumps them, K14).
 *
 * @since 0.1.0
 * @category models
 */
export interface RangeQuery {
  readonly by: "slot" | "timestamp"
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly limit: number
  readonly nodeJsonOnly?: boolean | undefined
}

/**
 * Options of one `append`.
 *
 * - `outbox` [false]: also queue the entry's items for upload to an ANS-104 bundler, in the same transaction as
 *   the assignment: the scheduled message's data item when the store holds its bytes (an assigned Arweave
 *   transaction needs only its assignment), and the signed assignment. Idempotent by data item id: an item
 *   already queued (or uploaded) is not queued again.
 * - `epoch` [none]: the writer's fencing token for the process (`claim`): the append is written only if it is
 *   still the process's current epoch, else it fails with `Fenced`. Unchecked when absent.
 * - `previous` [none] (since 0.4.0): the assignment id the writer expects at `slot - 1` (absent for slot 0): the
 *   append is written only if that slot holds it, in the same transaction (an earlier append of the same group
 *   commit counts, one that failed does not), else it fails with `StoreConflict` ("the previous slot does not
 *   hold the expected assignment") and writes nothing. A scheduler that sends slots k, k+1, … together without
 *   waiting for each write so never leaves a gap: once one append fails, the later ones fail too.
 *
 * @since 0.3.0
 * @category models
 */
export interface AppendOptions {
  readonly outbox?: boolean | undefined
  readonly epoch?: number | undefined
  readonly previous?: string | undefined
}

/**
 * One outbox item due for upload: its data item `id`, what it is (`message` or `assignment`), the process and
 * slot of its assignment, its signed ANS-104 `bytes`, `createdAt` (ms, the assignment's timestamp) and the
 * failed `attempts` so far.
 *
 * @since 0.3.0
 * @category models
 */
export interface OutboxItem {
  readonly id: string
  readonly kind: "message" | "assignment"
  readonly processId: string
  readonly slot: number
  readonly bytes: Uint8Array
  readonly createdAt: number
  readonly attempts: number
}

/**
 * The outbox's state: `pending` (never tried), `retrying` (failed at least once, waiting for its next attempt)
 * and `uploaded` items; `oldestPendingAt` (ms) the `createdAt` of the oldest item not yet uploaded and
 * `nextAttemptAt` (ms) the earliest next attempt, both `undefined` when nothing waits. `uploaded` is counted only
 * when asked for (`status({ uploaded: true })`), since it counts every item ever queued.
 *
 * @since 0.3.0
 * @category models
 */
export interface OutboxStatus {
  readonly pending: number
  readonly retrying: number
  readonly uploaded: number | undefined
  readonly oldestPendingAt: number | undefined
  readonly nextAttemptAt: number | undefined
}

/**
 * The upload queue kept in the store beside the assignments (written by `append` with `outbox: true`):
 *
 * - `due(now, limit)`: at most `limit` items not yet uploaded whose next attempt is at or before `now` (ms),
 *   oldest first;
 * - `markUploaded(ids, at)`: the bundler acknowledged these items (at `at`, ms);
 * - `markFailed(id, attempts, nextAttemptAt, error)`: an attempt failed; the next one is due at `nextAttemptAt`;
 * - `uploaded(ids)`: which of `ids` are uploaded;
 * - `status(options)`: see `OutboxStatus`;
 * - `redrive()`: makes every item that failed due now, its attempts reset to 0; returns how many.
 *
 * Every call fails with `StoreError` only. Source: the legacy ao SU uploads after its commit with no durable
 * queue (`servers/su/src/domain/clients/uploader.rs`); this queue makes those uploads survive a crash.
 *
 * @since 0.3.0
 * @category models
 */
export interface Outbox {
  readonly due: (now: number, limit: number) => Effect.Effect<ReadonlyArray<OutboxItem>, StoreError>
  readonly markUploaded: (ids: ReadonlyArray<string>, at: number) => Effect.Effect<void, StoreError>
  readonly markFailed: (
    id: string,
    attempts: number,
    nextAttemptAt: number,
    error: string
  ) => Effect.Effect<void, StoreError>
  readonly uploaded: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlySet<string>, StoreError>
  readonly status: (
    options?: { readonly uploaded?: boolean | undefined } | undefined
  ) => Effect.Effect<OutboxStatus, StoreError>
  readonly redrive: () => Effect.Effect<number, StoreError>
}

/**
 * A page read (`AssignmentStore.page`): a `RangeQuery` bounded by bytes as well as by count.
 *
 * - `maxBytes`: the most bytes the page's entries may hold, counted as stored: an entry's node JSON when
 *   `nodeJsonOnly` is set and the entry has one, else its assignment and message bytes. The read stops before
 *   the first entry that would take the total past `maxBytes`, except that the first entry always comes back,
 *   however large (so a single message larger than the cap is still served, alone). Absent: no byte bound.
 *
 * Our bound, as the legacy ao SU bounds a message list by `MAX_READ_MEMORY` (`servers/su`, default 1 GB).
 *
 * @since 0.3.0
 * @category models
 */
export interface PageQuery extends RangeQuery {
  readonly maxBytes?: number | undefined
}

/**
 * One page of a schedule: its entries, ascending by slot, and `more`: whether entries of the range follow the last
 * one (the page was cut by `limit` or by `maxBytes`).
 *
 * @since 0.3.0
 * @category models
 */
export interface Page {
  readonly entries: ReadonlyArray<Entry>
  readonly more: boolean
}

/**
 * One edge of a node JSON page (`AssignmentStore.nodeJsonPage`): the entry's `slot` and `timestamp` (ms) and
 * either its stored node JSON (`Entry.nodeJson`, UTF-8 bytes), or, for an entry stored without one, the whole
 * `entry` for the reader to render.
 *
 * @since 0.3.0
 * @category models
 */
export type NodeJsonEdge =
  | {
      readonly slot: number
      readonly timestamp: number
      readonly nodeJson: Uint8Array
      readonly entry?: undefined
    }
  | {
      readonly slot: number
      readonly timestamp: number
      readonly nodeJson?: undefined
      readonly entry: Entry
    }

/**
 * A page of a schedule as its stored node JSON (`AssignmentStore.nodeJsonPage`): `edges` ascending by slot and
 * `more` as in `Page`.
 *
 * @since 0.3.0
 * @category models
 */
export interface NodeJsonPage {
  readonly edges: ReadonlyArray<NodeJsonEdge>
  readonly more: boolean
}

/**
 * The storage contract.
 *
 * - `append(assignment, message, options)`: atomic and durable when it succeeds; with `options.outbox` (since
 *   0.3.0) the entry's items are queued in `outbox` in the same transaction. Fails with `StoreConflict` if the slot,
 *   the assignment id or the (process, message id) pair already exists; with `StoreError` on I/O failure. With
 *   `options.epoch` (a fencing token from `claim`, since 0.3.0), the store checks in the same transaction that it
 *   is still the process's current epoch, and fails with `Fenced`, writing nothing, if another writer claimed it.
 * - `claim(process)`: makes the caller the process's only writer: advances and returns the process's epoch (1,
 *   2, …), after any append of an earlier epoch still in progress has ended. From then on an append with an
 *   older epoch fails with `Fenced`. A scheduler server claims before it reads `latest`, so what it recovers
 *   includes every write of the previous owner. Since 0.3.0.
 * - `latest(process)`: `Option<Latest>`, the max slot.
 * - `range(process, query)`: at most `query.limit` entries, ascending by slot; never the whole schedule.
 * - `page(process, query)` (since 0.3.0): `range` bounded by `query.maxBytes` too (`PageQuery`), with `more` set
 *   when entries follow. The SQL stores read the entries' sizes first (column lengths, not the bytes) and then
 *   only the entries that fit, so a page never loads more than it returns.
 * - `getMessage(id)`: the entry whose message id or assignment id is `id`.
 * - `getProcess(process)`: the process's slot-0 entry.
 * - `listProcesses()`: every process with at least one assignment.
 * - `maxBlockHeight()`: the highest `Block-Height` of any stored assignment (`None` when the store is empty), so
 *   that a node never stamps a lower height after a restart (`Gateway`'s floor). Since 0.2.0. The SQL stores
 *   answer it from the `assignments_block_height` index, one index step on any number of rows.
 * - `nodeJsonPage(process, query)` (since 0.3.0, optional): `page` with `nodeJsonOnly`, as each entry's slot,
 *   timestamp and stored node JSON only (`NodeJsonPage`), for the read path of `GET /{process}`: no `Assignment`
 *   is built per row. Entries without stored node JSON come whole. The SQL stores have it; a reader falls back
 *   to `page` where it is absent.
 * - `outbox` (since 0.3.0): the upload queue (`Outbox`); every store of this package has one (absent only from
 *   stores written elsewhere, which then cannot queue uploads).
 *
 * @since 0.1.0
 * @category models
 */
export class AssignmentStore extends Context.Tag("effect-scheduler-registry/AssignmentStore")<
  AssignmentStore,
  {
    readonly append: (
      assignment: Assignment,
      message: Message,
      options?: AppendOptions | undefined
    ) => Effect.Effect<void, StoreConflict | StoreError | Fenced>
    readonly claim: (processId: ProcessId) => Effect.Effect<number, StoreError>
    readonly latest: (processId: ProcessId) => Effect.Effect<Option.Option<Latest>, StoreError>
    readonly range: (processId: ProcessId, query: RangeQuery) => Effect.Effect<ReadonlyArray<Entry>, StoreError>
    readonly page: (processId: ProcessId, query: PageQuery) => Effect.Effect<Page, StoreError>
    readonly getMessage: (
      id: string,
      processId?: ProcessId | undefined
    ) => Effect.Effect<Option.Option<Entry>, StoreError>
    readonly getProcess: (processId: ProcessId) => Effect.Effect<Option.Option<Entry>, StoreError>
    readonly listProcesses: () => Effect.Effect<ReadonlyArray<ProcessId>, StoreError>
    readonly maxBlockHeight: () => Effect.Effect<Option.Option<number>, StoreError>
    readonly nodeJsonPage?:
      | ((processId: ProcessId, query: PageQuery) => Effect.Effect<NodeJsonPage, StoreError>)
      | undefined
    readonly outbox?: Outbox | undefined
  }
>() {}

/**
 * An in-memory store, for tests and for the library's default. Its writes are atomic but do not survive the
 * process. Each process's entries live in a slot-indexed array, so `range` by slot is a slice.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AssignmentStore, ProcessId } from "effect-scheduler-registry"
 *
 * const program = Effect.gen(function* () {
 *   const store = yield* AssignmentStore.makeMemory
 *   return yield* store.latest(ProcessId.unsafeMake("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")) // Option.none()
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<AssignmentStore["Type"]> = Effect.sync(Memory.make)

/**
 * The in-memory store as a Layer; each build is a fresh, empty store.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AssignmentStore, NameService, SchedulerRegistry, Wallet } from "effect-scheduler-registry"
 *
 * // nothing survives a restart: tests and demos
 * const RegistryLive = SchedulerRegistry.layer().pipe(
 *   Layer.provide(
 *     Layer.mergeAll(NameService.layer, Wallet.layerFile("./data/wallet.json"), AssignmentStore.layerMemory)
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<AssignmentStore> = Layer.effect(AssignmentStore, makeMemory)
