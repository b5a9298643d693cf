/**
 * The scheduler entity's wire protocol: its Rpcs and their schemas. Public through `SchedulerEntity`.
 */
import { Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Schema } from "effect"
import { Assignment, Message } from "../../Assignment.js"
import {
  MailboxFull,
  OutcomeUnknown,
  SchedulerStopped,
  SchedulerTimeout,
  StoreConflict,
  StoreError,
  UploadPending
} from "../../errors.js"
import { ProcessId } from "../../ProcessId.js"
import type * as Scheduler from "../../Scheduler.js"

export const ENTITY_TYPE = "Scheduler"

/** The classes of `ScheduleError`: a `Schedule` call's own failures, decoded as instances of these. */
export const scheduleErrorClasses = [
  SchedulerTimeout,
  SchedulerStopped,
  MailboxFull,
  StoreConflict,
  StoreError,
  OutcomeUnknown,
  UploadPending
] as const

export const ScheduleError = Schema.Union(...scheduleErrorClasses)

/** `undefined` in the type, `null` on the wire (msgpack and JSON both keep `null`). */
const UndefinedFromNull = <A, I>(schema: Schema.Schema<A, I>): Schema.Schema<A | undefined, I | null> =>
  Schema.transform(Schema.NullOr(schema), Schema.UndefinedOr(Schema.typeSchema(schema)), {
    strict: true,
    decode: (value) => (value === null ? undefined : value),
    encode: (value) => (value === undefined ? null : value)
  })

export interface InfoEncoded {
  readonly processId: string
  readonly slot: number
  readonly hashChain: string | null
  readonly assignmentId: string | null
  readonly timestamp: number | null
  readonly address: string
  readonly mode: Scheduler.Mode
  readonly mailboxDepth: number
}

export const Info: Schema.Schema<Scheduler.Info, InfoEncoded> = Schema.Struct({
  processId: ProcessId,
  slot: Schema.Int,
  hashChain: UndefinedFromNull(Schema.String),
  assignmentId: UndefinedFromNull(Schema.String),
  timestamp: UndefinedFromNull(Schema.Number),
  address: Schema.String,
  mode: Schema.Literal("aggressive", "local_confirmation", "remote_confirmation", "disabled"),
  mailboxDepth: Schema.Number
})

export const Schedule = Rpc.make("Schedule", {
  payload: { message: Message, timeoutMs: Schema.optional(Schema.Number) },
  success: Assignment,
  error: ScheduleError
})

export const InfoRpc = Rpc.make("Info", {
  success: Info,
  error: Schema.Union(SchedulerStopped, StoreError)
})

export const SchedulerEntity = Entity.make(ENTITY_TYPE, [Schedule, InfoRpc])
