/**
 * Every typed failure of the library, as `Schema.TaggedError` classes, so that each one can be encoded,
 * matched with `Effect.catchTag` and carried over HTTP or RPC.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A process or message id that is neither a 43-character base64url id nor 32 raw bytes.
 * `reason` says what was wrong (length, alphabet, type). Mirrors `hb_util:human_id`'s input rules.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidProcessId extends Schema.TaggedError<InvalidProcessId>()("InvalidProcessId", {
  input: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid id ${JSON.stringify(this.input)}: ${this.reason}`
  }
}

/**
 * `NameService.register` found a live holder under the name. Mirrors `hb_name:register/2` returning `error`.
 *
 * @since 0.1.0
 * @category errors
 */
export class AlreadyRegistered extends Schema.TaggedError<AlreadyRegistered>()("AlreadyRegistered", {
  name: Schema.String
}) {
  override get message(): string {
    return `A live fiber is already registered under ${this.name}`
  }
}

/**
 * `SchedulerRegistry.find(p)` without `genIfNotHosted` found no live scheduler.
 * Mirrors `dev_scheduler_registry:find/1` returning `not_found`.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  processId: Schema.String
}) {
  override get message(): string {
    return `No scheduler is hosted for process ${this.processId}`
  }
}

/**
 * The registry's Layer is closing or closed: nothing is found and nothing starts.
 *
 * @since 0.1.0
 * @category errors
 */
export class RegistryClosed extends Schema.TaggedError<RegistryClosed>()("RegistryClosed", {}) {
  override get message(): string {
    return "The scheduler registry is closed"
  }
}

/**
 * The scheduling mode is `disabled`: `find(p, true)` starts nothing. HyperBEAM throws inside the linked
 * spawn and kills the caller (behaviour 16); we fail with this error and register nothing.
 *
 * @since 0.1.0
 * @category errors
 */
export class SchedulingDisabled extends Schema.TaggedError<SchedulingDisabled>()("SchedulingDisabled", {
  processId: Schema.String
}) {
  override get message(): string {
    return `Scheduling is disabled on this node (process ${this.processId})`
  }
}

/**
 * A `schedule` call did not get its assignment within its deadline (`timeoutMs`, 10,000 ms by default).
 * The server drops a request whose deadline passed before it was assigned, so no slot was consumed for it.
 * Mirrors later `dev_scheduler_server`'s `scheduler_timeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class SchedulerTimeout extends Schema.TaggedError<SchedulerTimeout>()("SchedulerTimeout", {
  processId: Schema.String,
  timeoutMs: Schema.Number
}) {
  override get message(): string {
    return `Scheduler for ${this.processId} did not assign within ${this.timeoutMs} ms`
  }
}

/**
 * The scheduler fiber is no longer running (it stopped, failed, was passivated or its registry closed) while
 * the request was queued or in flight. The slot was not consumed.
 *
 * @since 0.1.0
 * @category errors
 */
export class SchedulerStopped extends Schema.TaggedError<SchedulerStopped>()("SchedulerStopped", {
  processId: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Scheduler for ${this.processId} stopped: ${this.reason}`
  }
}

/**
 * The scheduler's bounded mailbox is full (`capacity` requests); the request was not queued.
 *
 * @since 0.1.0
 * @category errors
 */
export class MailboxFull extends Schema.TaggedError<MailboxFull>()("MailboxFull", {
  processId: Schema.String,
  capacity: Schema.Number
}) {
  override get message(): string {
    return `Mailbox of the scheduler for ${this.processId} is full (${this.capacity} requests)`
  }
}

/**
 * A service (e.g. a process's scheduler) failed `failures` times within `windowMs` and is not started again
 * until `retryAfterMs` (ms) have passed: a process that keeps crashing cannot spin the node. See
 * `ServiceRegistry.RestartPolicy`. Mirrors an OTP supervisor's restart intensity (`MaxR` in `MaxT`).
 *
 * @since 0.1.0
 * @category errors
 */
export class RestartLimitExceeded extends Schema.TaggedError<RestartLimitExceeded>()("RestartLimitExceeded", {
  name: Schema.String,
  failures: Schema.Number,
  windowMs: Schema.Number,
  retryAfterMs: Schema.Number
}) {
  override get message(): string {
    return `${this.name} failed ${this.failures} times within ${this.windowMs} ms; retry in ${this.retryAfterMs} ms`
  }
}

/**
 * A data item that cannot be scheduled as it was sent: it does not parse as ANS-104, its signature does not
 * verify (unsigned, tampered or truncated), or it lacks what the ao.TN.1 protocol requires (a `Type` tag, a
 * `target` for a `Message`, …). `reason` says which, in words fit for an HTTP 400 body. Mirrors the legacy ao
 * SU's `write_item` rejections ("Type tag not present", …).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidDataItem extends Schema.TaggedError<InvalidDataItem>()("InvalidDataItem", {
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid data item: ${this.reason}`
  }
}

/**
 * Loading or creating a wallet failed (signing never fails). `path` names the key file where there is one;
 * `reason` says what is wrong. It never carries key material.
 *
 * @since 0.1.0
 * @category errors
 */
export class WalletError extends Schema.TaggedError<WalletError>()("WalletError", {
  path: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    return this.path === undefined ? `Wallet error: ${this.reason}` : `Wallet ${this.path}: ${this.reason}`
  }
}

/**
 * The signer threads (`SignerPool`) could not start: a thread failed to start or to read the key. `reason` says
 * why; it never carries key material.
 *
 * @since 0.4.0
 * @category errors
 */
export class SignerPoolError extends Schema.TaggedError<SignerPoolError>()("SignerPoolError", {
  reason: Schema.String
}) {
  override get message(): string {
    return `Signer threads did not start: ${this.reason}`
  }
}

/**
 * The input is not a well-formed export: a wrong or missing header, a line that is not JSON or lacks a field (a
 * garbled or truncated line), a process split in two, a repeated slot, no end line (a truncated file) or end
 * counts that do not match. `line` is 1-based.
 *
 * @since 0.3.0
 * @category errors
 */
export class TransferFormatError extends Schema.TaggedError<TransferFormatError>()("TransferFormatError", {
  line: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `Import refused at line ${this.line}: ${this.reason}`
  }
}

/**
 * A process's rows skip a slot: `slot` is missing, the input goes on at `found`. Nothing from `slot` on is
 * imported.
 *
 * @since 0.3.0
 * @category errors
 */
export class ImportGap extends Schema.TaggedError<ImportGap>()("ImportGap", {
  processId: Schema.String,
  slot: Schema.Number,
  found: Schema.Number
}) {
  override get message(): string {
    return `Import refused: process ${this.processId} has a gap, slot ${this.slot} is missing (the input goes on at ${this.found})`
  }
}

/**
 * The target store holds a different assignment at `slot` of the process (or the store refused the row with a
 * `StoreConflict`): two schedules disagree. Nothing from `slot` on is imported.
 *
 * @since 0.3.0
 * @category errors
 */
export class ImportFork extends Schema.TaggedError<ImportFork>()("ImportFork", {
  processId: Schema.String,
  slot: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `Import refused: process ${this.processId} forks at slot ${this.slot}: ${this.reason}`
  }
}

/**
 * A row does not verify. `check`: `hash-chain` (not the chain from slot 0), `signature` (the assignment data item
 * does not verify or its id is not its signature's hash), `signer` (not signed by the header's SU), `tags` (its
 * tags disagree with the row's columns) or `message` (the message data item does not verify or has another id).
 *
 * @since 0.3.0
 * @category errors
 */
export class ImportInvalid extends Schema.TaggedError<ImportInvalid>()("ImportInvalid", {
  processId: Schema.String,
  slot: Schema.Number,
  check: Schema.Literal("hash-chain", "signature", "signer", "tags", "message"),
  reason: Schema.String
}) {
  override get message(): string {
    return `Import refused: process ${this.processId} slot ${this.slot} fails its ${this.check} check: ${this.reason}`
  }
}

/**
 * `export` of one process the store has no row of.
 *
 * @since 0.3.0
 * @category errors
 */
export class UnknownProcess extends Schema.TaggedError<UnknownProcess>()("UnknownProcess", {
  processId: Schema.String
}) {
  override get message(): string {
    return `The store has no assignment of process ${this.processId}`
  }
}

/**
 * A write would overwrite an existing slot or assignment id. Never a silent success (behaviour 29).
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreConflict extends Schema.TaggedError<StoreConflict>()("StoreConflict", {
  processId: Schema.String,
  slot: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `Store conflict for ${this.processId} at slot ${this.slot}: ${this.reason}`
  }
}

/**
 * The assignment store failed (I/O, SQL, a corrupt row). `operation` names the call.
 *
 * `retryable` (since 0.3.0) is `true` when the store did not fail but did not answer in time: a cluster runner
 * whose store connection hangs answers its reads with it once its store watch has lost the store
 * (`ClusterRegistry.ClusterOptions.storeTimeoutMs`). Nothing is wrong with the call or the data: the same call
 * may succeed later, or on another node. The HTTP API answers it 503 (a plain `StoreError` is a 500).
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  reason: Schema.String,
  retryable: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    return `Assignment store ${this.operation} failed: ${this.reason}`
  }
}

/**
 * The store refused an append from a writer that no longer owns the process: another writer claimed it since
 * (`AssignmentStore.claim`), so the append's fencing token `epoch` is older than the process's current one
 * (`current`, or -1 when the store could not tell). Nothing was written. The server that got it stops; the next
 * request is served by the current owner. A fencing token in the sense of Kleppmann's "How to do distributed
 * locking" (a lease epoch checked by the storage on every write).
 *
 * @since 0.3.0
 * @category errors
 */
export class Fenced extends Schema.TaggedError<Fenced>()("Fenced", {
  processId: Schema.String,
  epoch: Schema.Number,
  current: Schema.Number
}) {
  override get message(): string {
    return `Process ${this.processId} has a newer writer (epoch ${this.current} > ${this.epoch}): this write was refused`
  }
}

/**
 * The outcome of a `schedule` call is unknown: its assignment was being written when the deadline passed (or the
 * store failed mid-write, or the node's link to the process's runner timed out), so it may or may not be stored.
 * Send the same message again: a re-post of a message already scheduled returns its original assignment, and one
 * that was not stored is scheduled then. `timeoutMs` is the call's deadline (ms). The HTTP API answers 504.
 *
 * @since 0.3.0
 * @category errors
 */
export class OutcomeUnknown extends Schema.TaggedError<OutcomeUnknown>()("OutcomeUnknown", {
  processId: Schema.String,
  messageId: Schema.String,
  timeoutMs: Schema.Number
}) {
  override get message(): string {
    return (
      `The outcome of message ${this.messageId} for process ${this.processId} is unknown ` +
      `(no answer from the store within ${this.timeoutMs} ms): send the same message again, a retry is idempotent`
    )
  }
}

/**
 * `remote_confirmation`: the assignment is stored (its slot is taken and stays assigned), but the ANS-104 bundler
 * did not acknowledge both of its items (the message's data item and the signed assignment) within the call's
 * deadline (`timeoutMs`, ms). The items stay in the store's outbox and keep uploading in the background; a retry
 * of the same message returns the stored assignment. Served as HTTP 503.
 *
 * Source: HyperBEAM `dev_scheduler_server` `remote_confirmation`, which replies after `hb_client:upload/1`.
 *
 * @since 0.3.0
 * @category errors
 */
export class UploadPending extends Schema.TaggedError<UploadPending>()("UploadPending", {
  processId: Schema.String,
  slot: Schema.Number,
  assignmentId: Schema.String,
  timeoutMs: Schema.Number
}) {
  override get message(): string {
    return (
      `Slot ${this.slot} of ${this.processId} is assigned (${this.assignmentId}) but the bundler did not confirm ` +
      `its upload within ${this.timeoutMs} ms; it keeps uploading, retry later`
    )
  }
}

/**
 * Who holds a store's writer lock, as far as it is known: the node's process id `pid`, its `host` name, and
 * `since`, when it took the lock (ISO 8601). Any of them may be missing (an older or foreign holder).
 *
 * @since 0.3.0
 * @category models
 */
export const LockHolder = Schema.Struct({
  pid: Schema.optional(Schema.Number),
  host: Schema.optional(Schema.String),
  since: Schema.optional(Schema.String)
})

/**
 * Another node holds the store's writer lock (`StoreLock`): `store` names the store (the SQLite file, or the
 * PostgreSQL schema) and `holder` who holds it, where known. Only one node writes a store at a time outside a
 * cluster; the second one is refused at start instead of racing the first one for slots.
 *
 * @since 0.3.0
 * @category errors
 */
export class StoreLocked extends Schema.TaggedError<StoreLocked>()("StoreLocked", {
  store: Schema.String,
  holder: LockHolder
}) {
  override get message(): string {
    const { host, pid, since } = this.holder
    const who = [
      pid === undefined ? undefined : `pid ${pid}`,
      host === undefined ? undefined : `on host ${host}`,
      since === undefined ? undefined : `since ${since}`
    ].filter((part) => part !== undefined)
    return `${this.store} is in use by another node${who.length === 0 ? "" : ` (${who.join(" ")})`}`
  }
}

/**
 * Every way a `Scheduler.schedule` call can fail:
 * - `SchedulerTimeout`: no assignment within the deadline; the request was dropped unassigned;
 * - `SchedulerStopped`: the server stopped (or its write failed in `aggressive` mode) before replying;
 * - `MailboxFull`: the request was not queued;
 * - `StoreConflict`: the store refused the append: the message is already scheduled for the process (a
 *   duplicate, reason `message already scheduled`) or another writer holds the slot or assignment id;
 * - `StoreError`: the append failed;
 * - `OutcomeUnknown`: the deadline passed (or the store failed) while the assignment was being written, so it may
 *   be stored; a retry of the same message is idempotent (since 0.3.0);
 * - `UploadPending` (since 0.3.0, `remote_confirmation` only): stored, but the bundler did not confirm in time.
 *
 * Signing cannot fail: a wallet's or a `SignerPool`'s `sign` has no error channel (`WalletError` only comes
 * from loading a key, before any scheduler runs).
 *
 * @since 0.1.0
 * @category errors
 */
export type ScheduleError =
  | SchedulerTimeout
  | SchedulerStopped
  | MailboxFull
  | StoreConflict
  | StoreError
  | OutcomeUnknown
  | UploadPending

/**
 * Every way `SchedulerRegistry.find` can fail:
 * - `InvalidProcessId`: the id is neither 43 base64url characters nor 32 bytes;
 * - `NotFound`: `find(p)` without `genIfNotHosted` found no live scheduler (the cluster registry also looks in
 *   the store);
 * - `RegistryClosed`: the registry's Layer is closing or closed;
 * - `SchedulingDisabled`: `find(p, true)` in `disabled` mode;
 * - `RestartLimitExceeded`: the process's scheduler failed too often lately (`ServiceRegistry.RestartPolicy`);
 * - `StoreError`: a new server could not recover its slot and chain from the store;
 * - `SchedulerStopped`: a new server stopped before it was ready.
 *
 * @since 0.1.0
 * @category errors
 */
export type FindError =
  | NotFound
  | RegistryClosed
  | SchedulingDisabled
  | StoreError
  | SchedulerStopped
  | RestartLimitExceeded
  | InvalidProcessId

/**
 * The process is scheduled by another scheduler unit: its `Scheduler` tag names `scheduler`, an address this
 * node holds no wallet for. The node answers it with a redirect to that SU's location when it knows it
 * (HyperBEAM's `find_server`, the legacy SU router's 307), else with 400.
 *
 * @since 0.2.0
 * @category errors
 */
export class HostedElsewhere extends Schema.TaggedError<HostedElsewhere>()("HostedElsewhere", {
  processId: Schema.String,
  scheduler: Schema.String
}) {
  override get message(): string {
    return `Process ${this.processId} is scheduled by ${this.scheduler}, not by this scheduler unit`
  }
}

/**
 * Every way `SchedulerRegistry.host` can fail: `find`'s errors, and `HostedElsewhere` for a process another
 * scheduler unit schedules.
 *
 * @since 0.2.0
 * @category errors
 */
export type HostError = FindError | HostedElsewhere

/**
 * Every way `SchedulerRegistry.schedule` and `SchedulerRegistry.spawn` can fail: hosting the process, then
 * scheduling on it.
 *
 * @since 0.2.0
 * @category errors
 */
export type SubmitError = HostError | ScheduleError
