/**
 * Hosting policy, shared by every `SchedulerRegistry` (local and cluster): which scheduler hosts a process, how
 * a process is created, and how a message is submitted, idempotently. Built only on the registry's own `find`
 * and `walletFor` and on the store, so it knows nothing of HTTP.
 */
import { Effect, Option } from "effect"
import type { Assignment, Message } from "../Assignment.js"
import type { AssignmentStore } from "../AssignmentStore.js"
import * as DataItem from "../DataItem.js"
import {
  type HostError,
  HostedElsewhere,
  NotFound,
  StoreConflict,
  type SubmitError,
  type UploadPending
} from "../errors.js"
import type { ProcessId } from "../ProcessId.js"
import type { Scheduler } from "../Scheduler.js"
import type { SchedulerRegistry } from "../SchedulerRegistry.js"

type Registry = Pick<SchedulerRegistry["Type"], "find" | "walletFor" | "getWallet">

/** The registry calls that this module adds, given the registry's `find` and the store. */
export interface Hosting {
  readonly host: SchedulerRegistry["Type"]["host"]
  readonly spawn: SchedulerRegistry["Type"]["spawn"]
  readonly schedule: SchedulerRegistry["Type"]["schedule"]
}

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a === undefined || b === undefined ? a === b : Buffer.from(a).equals(b)

/**
 * `remote_confirmation`'s wait for the bundler (`Scheduler.Upload.confirmed`, bounded by the deadline), applied
 * to a retry's stored assignment too, so that a 200 always means the items are uploaded.
 */
export type Confirm = (assignment: Assignment, ids: ReadonlyArray<string>) => Effect.Effect<void, UploadPending>

export const make = (
  registry: Registry,
  store: AssignmentStore["Type"],
  schedulerOf: ((processId: ProcessId) => Effect.Effect<Option.Option<string>>) | undefined,
  confirm?: Confirm | undefined
): Effect.Effect<Hosting> =>
  Effect.gen(function* () {
    const own = yield* registry.getWallet()
    // Process creation is rare: one at a time, so a duplicate Process can never take a slot after 0.
    const creating = yield* Effect.makeSemaphore(1)

    /**
     * The identity a stored process is hosted under: the one its `Scheduler` tag names, else the default. A tag
     * naming an address the node holds no wallet for is `HostedElsewhere`: the node never signs another SU's
     * schedule (a store imported from another SU, or a data directory given a new wallet).
     */
    const identityOf = (processId: ProcessId, raw: Uint8Array | undefined) => {
      const decoded = raw === undefined ? undefined : DataItem.decode(raw)
      const named = decoded?._tag === "Right" ? DataItem.tagValue(decoded.right, "Scheduler") : undefined
      return named === undefined || named === own.address
        ? Effect.succeed(undefined)
        : Effect.flatMap(registry.walletFor(named), (wallet) =>
            Option.isSome(wallet)
              ? Effect.succeed(wallet.value)
              : Effect.fail(new HostedElsewhere({ processId, scheduler: named }))
          )
    }

    const notHosted = (processId: ProcessId): Effect.Effect<never, NotFound | HostedElsewhere> =>
      schedulerOf === undefined
        ? Effect.fail(new NotFound({ processId }))
        : Effect.flatMap(schedulerOf(processId), (named) =>
            Option.isSome(named) && named.value !== own.address
              ? Effect.flatMap(
                  registry.walletFor(named.value),
                  (mine): Effect.Effect<never, NotFound | HostedElsewhere> =>
                    Option.isSome(mine)
                      ? Effect.fail(new NotFound({ processId }))
                      : Effect.fail(new HostedElsewhere({ processId, scheduler: named.value }))
                )
              : Effect.fail(new NotFound({ processId }))
          )

    const host: Hosting["host"] = (input) =>
      registry.find(input).pipe(
        // a live scheduler whose slot 0 is not assigned yet is still creating its process: not hosted yet
        Effect.flatMap((scheduler) =>
          Effect.flatMap(scheduler.info, (info) =>
            info.slot >= 0 ? Effect.succeed(scheduler) : Effect.fail(new NotFound({ processId: info.processId }))
          )
        ),
        Effect.catchTag("NotFound", ({ processId }) =>
          Effect.flatMap(
            store.getProcess(processId as ProcessId),
            (stored): Effect.Effect<Scheduler, HostError> =>
              Option.isNone(stored)
                ? notHosted(processId as ProcessId)
                : Effect.flatMap(identityOf(processId as ProcessId, stored.value.message), (wallet) =>
                    registry.find(processId, true, wallet === undefined ? undefined : { wallet })
                  )
          )
        )
      )

    /**
     * A message the store already holds for the process: the stored assignment when it is the same message (a
     * client's retry, idempotent; in `remote_confirmation` once its items are uploaded), else a `StoreConflict`
     * (another message with the same id).
     */
    const original = (processId: ProcessId, message: Message, conflict: StoreConflict) =>
      Effect.flatMap(
        store.getMessage(message.id, processId),
        (stored): Effect.Effect<Assignment, StoreConflict | UploadPending> =>
          Option.isSome(stored) &&
          stored.value.assignment.messageId === message.id &&
          // an assign (no bytes) names the item by its id, which is the hash of its signature: the same item
          (message.raw === undefined || sameBytes(stored.value.message, message.raw))
            ? confirm === undefined
              ? Effect.succeed(stored.value.assignment)
              : Effect.as(
                  confirm(
                    stored.value.assignment,
                    stored.value.message === undefined
                      ? [stored.value.assignment.id]
                      : [message.id, stored.value.assignment.id]
                  ),
                  stored.value.assignment
                )
            : Effect.fail(
                Option.isSome(stored)
                  ? new StoreConflict({ ...conflict, reason: "a different message has this id" })
                  : conflict
              )
      )

    const scheduleOn = (scheduler: Scheduler, message: Message): Effect.Effect<Assignment, SubmitError> =>
      scheduler.schedule(message).pipe(
        Effect.catchIf(
          (e): e is StoreConflict => e._tag === "StoreConflict" && e.reason === "message already scheduled",
          (conflict) => original(scheduler.processId, message, conflict)
        )
      )

    const schedule: Hosting["schedule"] = (processId, message) =>
      Effect.flatMap(host(processId), (scheduler) => scheduleOn(scheduler, message))

    const spawn: Hosting["spawn"] = (process, scheduler) =>
      creating.withPermits(1)(
        Effect.gen(function* () {
          // hosted here if its Scheduler tag names any identity the node holds; signed by that identity
          const identity = yield* registry.walletFor(scheduler)
          if (Option.isNone(identity)) {
            return yield* new HostedElsewhere({ processId: process.id, scheduler })
          }
          const options = identity.value.address === own.address ? undefined : { wallet: identity.value }
          const found = yield* registry.find(process.id, true, options)
          const info = yield* found.info
          if (info.slot >= 0) {
            return yield* original(
              found.processId,
              process,
              new StoreConflict({ processId: process.id, slot: 0, reason: "message already scheduled" })
            )
          }
          return yield* scheduleOn(found, process)
        })
      )

    return { host, spawn, schedule }
  })
