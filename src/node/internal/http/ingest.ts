/**
 * `POST /`: what the legacy SU's `write_item` and `assign` flows do, on the registry. Each posted item is
 * verified, routed by its `Type` tag to the scheduler of its process, and assigned the next nonce there.
 */
import { Effect, Either, Metric, Option } from "effect"
import { type Assignment, Message } from "../../../Assignment.js"
import type { AssignmentStore } from "../../../AssignmentStore.js"
import * as DataItem from "../../../DataItem.js"
import type { InvalidDataItem, ScheduleError, StoreError } from "../../../errors.js"
import * as Metrics from "../../../Metrics.js"
import type { MessageId, ProcessId } from "../../../ProcessId.js"
import type { Scheduler } from "../../../Scheduler.js"
import type { FindError, SchedulerRegistry } from "../../../SchedulerRegistry.js"
import { BadRequest, InternalError, Unavailable } from "../../Api.js"

/** The HTTP errors a library failure maps to. */
export type HttpError = BadRequest | Unavailable | InternalError

/**
 * Maps a library failure to its HTTP error: the caller's mistakes to 400, overload, shutdown and a process whose
 * scheduler keeps failing (`RestartLimitExceeded`) to 503, store failures to 500 (logged, with a generic body).
 */
export const httpError = (
  error: FindError | ScheduleError | StoreError | InvalidDataItem
): Effect.Effect<HttpError> => {
  switch (error._tag) {
    case "InvalidProcessId":
    case "InvalidDataItem":
      return Effect.succeed(new BadRequest({ error: error.message }))
    case "NotFound":
      return Effect.succeed(
        new BadRequest({ error: `Process ${error.processId} is not hosted by this scheduler unit` })
      )
    case "StoreConflict":
      // a duplicate message is the client's doing; a slot or id taken by another writer is the server's (503)
      return Effect.succeed(
        error.reason === "message already scheduled"
          ? new BadRequest({ error: `Cannot schedule for process ${error.processId}: ${error.reason}` })
          : new Unavailable({
              error: `Process ${error.processId} has another writer (${error.reason}); its scheduler restarts, retry`
            })
      )
    case "MailboxFull":
    case "SchedulerTimeout":
    case "SchedulerStopped":
    case "RegistryClosed":
    case "SchedulingDisabled":
      return Effect.succeed(new Unavailable({ error: error.message }))
    case "StoreError":
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
  error: FindError | ScheduleError | StoreError | InvalidDataItem
): Effect.Effect<never, HttpError> => Effect.flip(httpError(error))

const badRequest = (error: string) => Effect.fail(new BadRequest({ error }))

/** The reply of `POST /`: the assignment's timestamp (ms) and the id the client asked about. */
export interface Posted {
  readonly timestamp: number
  readonly id: string
}

/** The ingest flows, bound to one registry and store. */
export interface Ingest {
  /** Schedules a raw data item: `Type: Process` (nonce 0, here only if its `Scheduler` is this node) or `Message`. */
  readonly postDataItem: (raw: Uint8Array) => Effect.Effect<Posted, HttpError>
  /** Assigns the existing transaction `txId` to `processId` (`?process-id&assign`); replies the assignment id. */
  readonly assign: (processId: ProcessId, txId: MessageId) => Effect.Effect<Posted, HttpError>
  /** The scheduler of a process hosted here (slot 0 stored), started if needed; `None` if not hosted. */
  readonly hostedScheduler: (processId: ProcessId) => Effect.Effect<Option.Option<Scheduler>, HttpError>
}

export const make = (
  registry: SchedulerRegistry["Type"],
  store: AssignmentStore["Type"],
  address: string
): Effect.Effect<Ingest> =>
  Effect.gen(function* () {
    // Process creation is rare: one at a time, so a duplicate Process can never take a nonce after 0.
    const creating = yield* Effect.makeSemaphore(1)

    const hostedScheduler = (processId: ProcessId): Effect.Effect<Option.Option<Scheduler>, HttpError> =>
      registry.find(processId).pipe(
        // a live scheduler whose slot 0 is not assigned yet is still creating its process: not hosted yet
        Effect.flatMap((scheduler) =>
          Effect.map(scheduler.info, (info) => (info.slot >= 0 ? Option.some(scheduler) : Option.none<Scheduler>()))
        ),
        Effect.catchTag("NotFound", () =>
          Effect.flatMap(store.getProcess(processId), (stored) =>
            Option.isNone(stored)
              ? Effect.succeed(Option.none<Scheduler>())
              : Effect.flatMap(identityOf(stored.value.message), (wallet) =>
                  Effect.asSome(registry.find(processId, true, wallet === undefined ? undefined : { wallet }))
                )
          )
        ),
        Effect.catchAll(failHttp)
      )

    /**
     * The identity a stored process is hosted under: the node identity its `Scheduler` tag names, or `undefined`
     * for the default wallet (a process is stored here only if its tag named one of the node's identities).
     */
    const identityOf = (raw: Uint8Array | undefined) =>
      Effect.suspend(() => {
        const decoded = raw === undefined ? undefined : Either.getOrUndefined(DataItem.decode(raw))
        const named = decoded === undefined ? undefined : DataItem.tagValue(decoded, "Scheduler")
        if (named === undefined || named === address) return Effect.succeed(undefined)
        return Effect.map(registry.walletFor(named), Option.getOrUndefined)
      })

    const requireHosted = (processId: ProcessId) =>
      Effect.flatMap(hostedScheduler(processId), (found) =>
        Option.isSome(found)
          ? Effect.succeed(found.value)
          : badRequest(`Process ${processId} is not hosted by this scheduler unit`)
      )

    const scheduleOn = (scheduler: Scheduler, message: Message, type: "process" | "message" | "assign") =>
      scheduler.schedule(message).pipe(
        Effect.catchAll(failHttp),
        Effect.tap(() => Metric.increment(Metric.tagged(Metrics.httpAssignments, "type", type)))
      )

    const postProcess = (item: DataItem.DataItem): Effect.Effect<Assignment, HttpError> => {
      const scheduler = DataItem.tagValue(item, "Scheduler")
      if (DataItem.tagValue(item, "Module") === undefined || scheduler === undefined) {
        return badRequest("Required Module and Scheduler tags for Process type not present")
      }
      return creating.withPermits(1)(
        Effect.gen(function* () {
          // hosted here if its Scheduler tag names any identity the node holds; signed by that identity
          const identity = yield* registry.walletFor(scheduler)
          if (Option.isNone(identity)) {
            return yield* badRequest(
              `Process ${item.id} names scheduler ${scheduler}; this scheduler unit is ${address} and does not host it`
            )
          }
          const options = identity.value.address === address ? undefined : { wallet: identity.value }
          const found = yield* Effect.catchAll(registry.find(item.id, true, options), failHttp)
          const info = yield* Effect.catchAll(found.info, failHttp)
          if (info.slot >= 0) return yield* badRequest(`Process ${item.id} already exists`)
          return yield* scheduleOn(found, new Message({ id: item.id, raw: item.raw }), "process")
        })
      )
    }

    /** Refuses a message already in the schedule before it reaches the scheduler (a client's retry). */
    const refuseDuplicate = (processId: ProcessId, messageId: string) =>
      Effect.flatMap(Effect.catchAll(store.getMessage(messageId, processId), failHttp), (found) =>
        Option.isSome(found)
          ? badRequest(`Message ${messageId} is already scheduled for process ${processId}`)
          : Effect.void
      )

    const postMessage = (item: DataItem.DataItem): Effect.Effect<Assignment, HttpError> => {
      if (item.target === undefined) return badRequest("A Message data item needs a target (the process id)")
      const processId = item.target as ProcessId
      return Effect.flatMap(requireHosted(processId), (scheduler) =>
        Effect.zipRight(
          refuseDuplicate(processId, item.id),
          scheduleOn(scheduler, new Message({ id: item.id, raw: item.raw }), "message")
        )
      )
    }

    const postDataItem = (raw: Uint8Array): Effect.Effect<Posted, HttpError> =>
      Effect.gen(function* () {
        const item = yield* Effect.catchAll(DataItem.verify(raw), failHttp)
        const protocol = DataItem.tagValue(item, "Data-Protocol")
        if (protocol === undefined) return yield* badRequest("Data-Protocol tag not present")
        if (protocol !== "ao")
          return yield* badRequest(`Data-Protocol tag must be "ao", got ${JSON.stringify(protocol)}`)
        const types = item.tags.filter((t) => t.name === "Type")
        if (types.length > 1) return yield* badRequest(`Type tag must appear once, found ${types.length}`)
        const type = DataItem.tagValue(item, "Type")
        if (type === undefined) return yield* badRequest("Type tag not present")
        if (type !== "Process" && type !== "Message") {
          return yield* badRequest(`Type tag must be Process or Message, got ${JSON.stringify(type)}`)
        }
        const assignment = yield* type === "Process" ? postProcess(item) : postMessage(item)
        return { timestamp: assignment.timestamp, id: item.id }
      })

    const assign = (processId: ProcessId, txId: MessageId): Effect.Effect<Posted, HttpError> =>
      Effect.flatMap(requireHosted(processId), (scheduler) =>
        Effect.zipRight(
          refuseDuplicate(processId, txId),
          Effect.map(scheduleOn(scheduler, new Message({ id: txId }), "assign"), (assignment) => ({
            timestamp: assignment.timestamp,
            id: assignment.id
          }))
        )
      )

    return { postDataItem, assign, hostedScheduler }
  })
