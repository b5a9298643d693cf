/**
 * `POST /`: what the legacy SU's `write_item` and `assign` flows do, on the registry. Each posted item is
 * verified, routed by its `Type` tag to the scheduler of its process, and assigned the next nonce there.
 */
import { Effect, Metric } from "effect"
import { type Assignment, Message } from "../../../Assignment.js"
import * as DataItem from "../../../DataItem.js"
import type { HostError, InvalidDataItem, ScheduleError, StoreError, SubmitError } from "../../../errors.js"
import * as Metrics from "../../../Metrics.js"
import type { MessageId, ProcessId } from "../../../ProcessId.js"
import type { Scheduler } from "../../../Scheduler.js"
import type { SchedulerRegistry } from "../../../SchedulerRegistry.js"
import { BadRequest, InternalError, Unavailable } from "../../Api.js"

/** The HTTP errors a library failure maps to. */
export type HttpError = BadRequest | Unavailable | InternalError

/**
 * Maps a library failure to its HTTP error: the caller's mistakes to 400, overload, shutdown and a process whose
 * scheduler keeps failing (`RestartLimitExceeded`) to 503, store failures to 500 (logged, with a generic body).
 */
export const httpError = (
  error: HostError | ScheduleError | StoreError | InvalidDataItem
): Effect.Effect<HttpError> => {
  switch (error._tag) {
    case "InvalidProcessId":
    case "InvalidDataItem":
      return Effect.succeed(new BadRequest({ error: error.message }))
    case "NotFound":
      return Effect.succeed(
        new BadRequest({ error: `Process ${error.processId} is not hosted by this scheduler unit` })
      )
    case "HostedElsewhere":
      return Effect.succeed(new BadRequest({ error: `${error.message} and does not host it` }))
    case "StoreConflict":
      // a duplicate message is the client's doing; a slot or id taken by another writer is the server's (503)
      return Effect.succeed(
        error.reason === "message already scheduled" || error.reason === "a different message has this id"
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
  error: HostError | ScheduleError | StoreError | InvalidDataItem
): Effect.Effect<never, HttpError> => Effect.flip(httpError(error))

const badRequest = (error: string) => Effect.fail(new BadRequest({ error }))

/** The reply of `POST /`: the assignment's timestamp (ms) and the id the client asked about. */
export interface Posted {
  readonly timestamp: number
  readonly id: string
}

/**
 * `POST /`: decodes and verifies the item, checks the ao.TN.1 tags, then hands it to the registry, which hosts
 * the process and schedules it (idempotently: a retry gets the original answer).
 */
export const postDataItem = (registry: SchedulerRegistry["Type"], raw: Uint8Array): Effect.Effect<Posted, HttpError> =>
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
    if (type === "Process") {
      const scheduler = DataItem.tagValue(item, "Scheduler")
      if (DataItem.tagValue(item, "Module") === undefined || scheduler === undefined) {
        return yield* badRequest("Required Module and Scheduler tags for Process type not present")
      }
      scheduled = registry.spawn(message, scheduler)
    } else {
      if (item.target === undefined) return yield* badRequest("A Message data item needs a target (the process id)")
      scheduled = registry.schedule(item.target, message)
    }
    const assignment = yield* scheduled.pipe(
      Effect.catchAll(failHttp),
      Effect.tap(() => Metric.increment(Metric.tagged(Metrics.httpAssignments, "type", type.toLowerCase())))
    )
    return { timestamp: assignment.timestamp, id: item.id }
  })

/** `POST /?process-id&assign`: assigns the existing transaction `txId` to `processId`; replies the assignment id. */
export const assign = (
  registry: SchedulerRegistry["Type"],
  processId: ProcessId,
  txId: MessageId
): Effect.Effect<Posted, HttpError> =>
  registry.schedule(processId, new Message({ id: txId })).pipe(
    Effect.catchAll(failHttp),
    Effect.tap(() => Metric.increment(Metric.tagged(Metrics.httpAssignments, "type", "assign"))),
    Effect.map((assignment) => ({ timestamp: assignment.timestamp, id: assignment.id }))
  )

/** The scheduler that hosts `processId` here (`SchedulerRegistry.host`), or the HTTP error of why not. */
export const requireHosted = (
  registry: SchedulerRegistry["Type"],
  processId: ProcessId
): Effect.Effect<Scheduler, HttpError> => Effect.catchAll(registry.host(processId), failHttp)
