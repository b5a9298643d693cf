/**
 * `POST /`: what the legacy SU's `write_item` and `assign` flows do, on the registry. Each posted item is
 * verified, routed by its `Type` tag to the scheduler of its process, and assigned the next nonce there.
 */
import { Effect, Either, Metric, Option } from "effect"
import { type Assignment, Message } from "../../../Assignment.js"
import type { AssignmentStore } from "../../../AssignmentStore.js"
import * as DataItem from "../../../DataItem.js"
import type { HostError, InvalidDataItem, ScheduleError, StoreError, SubmitError } from "../../../errors.js"
import * as Metrics from "../../../Metrics.js"
import type * as Gateway from "../../../network/Gateway.js"
import type { MessageId, ProcessId } from "../../../ProcessId.js"
import type { Scheduler } from "../../../Scheduler.js"
import type { SchedulerRegistry } from "../../../SchedulerRegistry.js"
import { BadRequest, InternalError, OutcomeUnknownReply, Unavailable } from "../../Api.js"
import { NotHosted } from "./redirect.js"

/** The HTTP errors a library failure maps to; `NotHosted` is answered by `Redirect.settle` (307, or 400). */
export type HttpError = BadRequest | Unavailable | OutcomeUnknownReply | InternalError | NotHosted

/**
 * Maps a library failure to its HTTP error: a process hosted elsewhere or not at all to `NotHosted` (a redirect
 * where its scheduler's location resolves, else 400), the caller's other mistakes to 400, overload, shutdown, a
 * process whose scheduler keeps failing (`RestartLimitExceeded`) and an upload the bundler has not confirmed in
 * time (`UploadPending`, `remote_confirmation`) to 503, an unknown outcome (`OutcomeUnknown`) to 504, a store
 * that did not answer in time (`StoreError` with `retryable`: a cluster runner whose store hangs) to 503 with
 * its message ("…; retry, another node may answer"), other store failures to 500 (logged, with a generic body).
 */
export const httpError = (
  error: HostError | ScheduleError | StoreError | InvalidDataItem | Gateway.LookupError
): Effect.Effect<HttpError> => {
  switch (error._tag) {
    case "TransactionNotFound":
    case "GatewayOffline":
      return Effect.succeed(new BadRequest({ error: error.message }))
    case "GatewayUnavailable":
      return Effect.succeed(new Unavailable({ error: error.message }))
    case "InvalidProcessId":
    case "InvalidDataItem":
      return Effect.succeed(new BadRequest({ error: error.message }))
    case "NotFound":
      return Effect.succeed(
        new NotHosted({
          processId: error.processId,
          error: `Process ${error.processId} is not hosted by this scheduler unit`
        })
      )
    case "HostedElsewhere":
      return Effect.succeed(
        new NotHosted({
          processId: error.processId,
          scheduler: error.scheduler,
          error: `${error.message} and does not host it`
        })
      )
    case "StoreConflict":
      // a duplicate message is the client's doing; a slot or id taken by another writer is the server's (503)
      return Effect.succeed(
        error.reason === "message already scheduled" || error.reason === "a different message has this id"
          ? new BadRequest({ error: `Cannot schedule for process ${error.processId}: ${error.reason}` })
          : new Unavailable({
              error: `Process ${error.processId} has another writer (${error.reason}); its scheduler restarts, retry`
            })
      )
    case "OutcomeUnknown":
      // the write may have committed: never "did not assign"; the retry is idempotent (`original` in hosting.ts)
      return Effect.succeed(new OutcomeUnknownReply({ error: error.message }))
    case "UploadPending":
      // stored and still uploading: the caller retries and gets the same assignment
      return Effect.succeed(new Unavailable({ error: error.message }))
    case "MailboxFull":
    case "SchedulerTimeout":
    case "SchedulerStopped":
    case "RegistryClosed":
    case "SchedulingDisabled":
      return Effect.succeed(new Unavailable({ error: error.message }))
    case "StoreError":
      // a store that did not answer in time (a hung connection): nothing is wrong, the client retries
      if (error.retryable === true) return Effect.succeed(new Unavailable({ error: error.message }))
      return Effect.as(
        Effect.logError("request failed", error),
        new InternalError({ error: "Internal error: the assignment store failed (see the node's log)" })
      )
    default:
      // RestartLimitExceeded, and any failure the registry may add later: the node cannot serve this now
      return Effect.succeed(new Unavailable({ error: (error as { message: string }).message }))
  }
}

/** Fails with the HTTP error of a library failure (see `httpError`). */
export const failHttp = (
  error: HostError | ScheduleError | StoreError | InvalidDataItem | Gateway.LookupError
): Effect.Effect<never, HttpError> => Effect.flip(httpError(error))

const badRequest = (error: string) => Effect.fail(new BadRequest({ error }))

/** The reply of `POST /`: the assignment's timestamp (ms) and the id the client asked about. */
export interface Posted {
  readonly timestamp: number
  readonly id: string
}

/** A data item scheduled by `submitDataItem`: its assignment (the original one for a retry) and its process. */
export interface Submitted {
  readonly assignment: Assignment
  /** The process the item went to: its own id for a `Process`, its `target` for a `Message`. */
  readonly processId: ProcessId
  /** The data item's id. */
  readonly id: MessageId
}

/**
 * Decodes and verifies the item, checks the ao.TN.1 tags, then hands it to the registry, which hosts the process
 * and schedules it (idempotently: a retry gets the original assignment). With `expected` (the process a route's
 * path names), an item for another process is refused before anything is scheduled.
 */
export const submitDataItem = (
  registry: SchedulerRegistry["Type"],
  raw: Uint8Array,
  expected?: ProcessId | undefined
): Effect.Effect<Submitted, HttpError> =>
  Effect.gen(function* () {
    const item = yield* Effect.catchAll(DataItem.verify(raw), failHttp)
    const protocol = DataItem.tagValue(item, "Data-Protocol")
    if (protocol === undefined) return yield* badRequest("Data-Protocol tag not present")
    if (protocol !== "ao") return yield* badRequest(`Data-Protocol tag must be "ao", got ${JSON.stringify(protocol)}`)
    const types = item.tags.filter((t) => t.name === "Type")
    if (types.length > 1) return yield* badRequest(`Type tag must appear once, found ${types.length}`)
    const type = DataItem.tagValue(item, "Type")
    if (type === undefined) return yield* badRequest("Type tag not present")
    if (type !== "Process" && type !== "Message") {
      return yield* badRequest(`Type tag must be Process or Message, got ${JSON.stringify(type)}`)
    }
    const message = new Message({ id: item.id, raw: item.raw })
    let scheduled: Effect.Effect<Assignment, SubmitError>
    let processId: ProcessId
    if (type === "Process") {
      const scheduler = DataItem.tagValue(item, "Scheduler")
      if (DataItem.tagValue(item, "Module") === undefined || scheduler === undefined) {
        return yield* badRequest("Required Module and Scheduler tags for Process type not present")
      }
      processId = item.id as string as ProcessId
      if (expected !== undefined && expected !== processId) {
        return yield* badRequest(`The path names process ${expected}, but this Process data item's id is ${processId}`)
      }
      scheduled = registry.spawn(message, scheduler)
    } else {
      if (item.target === undefined) return yield* badRequest("A Message data item needs a target (the process id)")
      processId = item.target as string as ProcessId
      if (expected !== undefined && expected !== processId) {
        return yield* badRequest(`The path names process ${expected}, but the data item's target is ${processId}`)
      }
      scheduled = registry.schedule(item.target, message)
    }
    const assignment = yield* scheduled.pipe(
      Effect.catchAll(failHttp),
      Effect.tap(() => Metric.increment(Metric.tagged(Metrics.httpAssignments, "type", type.toLowerCase())))
    )
    return { assignment, processId, id: item.id }
  })

/** `POST /`: `submitDataItem`, answered with the assignment's timestamp and the item's id. */
export const postDataItem = (registry: SchedulerRegistry["Type"], raw: Uint8Array): Effect.Effect<Posted, HttpError> =>
  Effect.map(submitDataItem(registry, raw), ({ assignment, id }) => ({ timestamp: assignment.timestamp, id }))

/** What `POST /?process-id&assign` reads and verifies through. */
export interface AssignDeps {
  readonly registry: SchedulerRegistry["Type"]
  readonly store: AssignmentStore["Type"]
  readonly gateway: Gateway.Gateway["Type"]
}

/** The optional parameters of an assignment: the raw `exclude` value (AOP-1) and `base-layer` (AOP-2). */
export interface AssignOptions {
  readonly exclude?: string | undefined
  readonly baseLayer?: boolean | undefined
}

/**
 * The `Exclude` values of an `exclude` parameter: split on `,`, in order, untrimmed (the legacy SU's
 * `builder.rs`); an empty parameter or an empty value is an error.
 */
export const parseExclude = (raw: string | undefined): Either.Either<ReadonlyArray<string> | undefined, string> => {
  if (raw === undefined) return Either.right(undefined)
  if (raw.length === 0) return Either.left("exclude must list at least one value (comma-separated)")
  const values = raw.split(",")
  if (values.some((v) => v.length === 0)) {
    return Either.left(`exclude has an empty value: ${JSON.stringify(raw)} (comma-separated, no empty entries)`)
  }
  return Either.right(values)
}

/** The legacy SU's default `Settlement-Depth` (confirmations an L1 transaction needs to be assigned). */
export const DEFAULT_SETTLEMENT_DEPTH = 20

/** The process's `Settlement-Depth` tag as an integer; missing or unparseable: 20 (`flows.rs`). */
const settlementDepthOf = (process: Option.Option<{ readonly message: Uint8Array | undefined }>): number => {
  if (Option.isNone(process) || process.value.message === undefined) return DEFAULT_SETTLEMENT_DEPTH
  const item = DataItem.decode(process.value.message)
  if (Either.isLeft(item)) return DEFAULT_SETTLEMENT_DEPTH
  const value = DataItem.tagValue(item.right, "Settlement-Depth")
  return value !== undefined && /^-?[0-9]{1,9}$/.test(value) ? Number(value) : DEFAULT_SETTLEMENT_DEPTH
}

/**
 * `POST /?process-id&assign`: assigns the existing transaction `txId` to `processId`; replies the assignment id.
 *
 * Verified first, so an id that does not exist never takes a slot (the legacy SU's `verify_assignment`):
 * - the process must be hosted here;
 * - `base-layer` (AOP-2): `txId` is an L1 transaction, assigned once it has the process's `Settlement-Depth`
 *   confirmations (default 20); pending or too few: 400 "Not enough confirmations to assign"; unknown: 400;
 * - otherwise `txId` must be a message this SU holds, or a transaction the gateway's GraphQL knows (400
 *   "Transaction … not found"; offline: 400, it cannot verify); a gateway that cannot answer gives 503.
 * A transaction already scheduled for the process gets its original assignment (the registry's `schedule`).
 */
export const assign = (
  deps: AssignDeps,
  processId: ProcessId,
  txId: MessageId,
  options: AssignOptions = {}
): Effect.Effect<Posted, HttpError> =>
  Effect.gen(function* () {
    const exclude = parseExclude(options.exclude)
    if (Either.isLeft(exclude)) return yield* badRequest(exclude.left)
    yield* requireHosted(deps.registry, processId)
    if (options.baseLayer === true) {
      const process = yield* Effect.catchAll(deps.store.getProcess(processId), failHttp)
      const depth = settlementDepthOf(process)
      const status = yield* Effect.catchAll(deps.gateway.txStatus(txId), failHttp)
      if (status._tag === "NotFound") return yield* badRequest(`Transaction ${txId} not found`)
      const confirmations = status._tag === "Pending" ? 0 : status.confirmations
      if (confirmations < depth) {
        return yield* badRequest(
          `Not enough confirmations to assign: ${txId} has ${confirmations}, process ${processId} needs ${depth}`
        )
      }
    } else {
      const held = yield* Effect.catchAll(deps.store.getMessage(txId), failHttp)
      if (Option.isNone(held)) yield* Effect.catchAll(deps.gateway.transaction(txId), failHttp)
    }
    const message = new Message(exclude.right === undefined ? { id: txId } : { id: txId, exclude: exclude.right })
    const assignment = yield* deps.registry.schedule(processId, message).pipe(
      Effect.catchAll(failHttp),
      Effect.tap(() => Metric.increment(Metric.tagged(Metrics.httpAssignments, "type", "assign")))
    )
    return { timestamp: assignment.timestamp, id: assignment.id }
  })

/** The scheduler that hosts `processId` here (`SchedulerRegistry.host`), or the HTTP error of why not. */
export const requireHosted = (
  registry: SchedulerRegistry["Type"],
  processId: ProcessId
): Effect.Effect<Scheduler, HttpError> => Effect.catchAll(registry.host(processId), failHttp)
