/**
 * One process's scheduler server: a fiber with a bounded mailbox that gives each message the next slot,
 * links it into the hash chain, signs the assignment and stores it.
 *
 * Mirrors HyperBEAM's `dev_scheduler_server` ("a deliberate bottleneck": one server per process, assignment
 * serialised through its mailbox; `docs/behaviours.md` §3), with its failures fixed:
 * - slots are strictly sequential from 0 with no gap and no duplicate (behaviours 19–20, K11);
 * - in the sync modes the slot and chain advance only after the store write succeeded, so a failed write
 *   consumes no slot and the caller gets the typed error (behaviour 27);
 * - every call has a deadline (10,000 ms by default) and the server drops requests whose deadline passed
 *   before they were assigned (behaviour 28);
 * - timestamps strictly increase within a process: last + 1 ms when the clock has not moved (K14);
 * - the hash chain is the legacy ao SU/CU chain, identical before and after a restart (§6).
 *
 * @since 0.1.0
 */
import type { Effect, Fiber } from "effect"
import type { Assignment, AssignmentSigner, Message } from "./Assignment.js"
import type { ScheduleError, SchedulerStopped } from "./errors.js"
import * as Internal from "./internal/scheduler.js"
import type { ProcessId } from "./ProcessId.js"
import type { Wallet } from "./Wallet.js"

/**
 * When `schedule` replies (`scheduling_mode` in HyperBEAM, behaviour 24):
 * - `aggressive`: after signing, before the store write. The write still happens before the next slot is
 *   assigned; if it fails the scheduler stops, so no later slot is built on an unstored one. An assignment
 *   acknowledged this way can be lost if the node crashes before the write commits, and its slot then reissued.
 * - `local_confirmation` (default): after the assignment is committed to the store.
 * - `remote_confirmation`: after the store write and the bundler's acknowledgement of the entry's items (the
 *   message's data item when held, and the assignment), through `Options.upload`; past the call's deadline the
 *   caller gets `UploadPending` while the slot stays assigned and the items keep uploading. Without an `upload`
 *   it replies as `local_confirmation` does (the node refuses to start that way).
 * - `disabled`: no scheduler starts (`SchedulingDisabled`).
 *
 * @since 0.1.0
 * @category models
 */
export type Mode = "aggressive" | "local_confirmation" | "remote_confirmation" | "disabled"

/**
 * Default deadline of a `schedule` call, in ms (HyperBEAM's later `AbortTime = now + 10 s`).
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_TIMEOUT_MS: number = Internal.DEFAULT_TIMEOUT_MS

/**
 * Default capacity of a scheduler's mailbox, in requests.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAILBOX_CAPACITY: number = Internal.DEFAULT_MAILBOX_CAPACITY

/**
 * Options of one scheduler server. All optional; defaults in brackets.
 *
 * - `mode` [`local_confirmation`]: see `Mode`.
 * - `timeoutMs` [10,000]: default deadline of a `schedule` call, in ms.
 * - `mailboxCapacity` [4,096]: requests queued before `schedule` fails with `MailboxFull`.
 * - `blockHeight` [() => 0]: the Arweave block height to stamp, read at each assignment.
 * - `signer`: signs assignments instead of the wallet in-line (e.g. `SignerPool`, on worker threads); its
 *   `owner` must be the wallet's.
 * - `upload`: the uploader (`Upload`, since 0.3.0: e.g. `Uploader` of the network layer). With it every append
 *   also queues the entry's items in the store's outbox, in every mode; `remote_confirmation` waits for them.
 * - `idleTimeToLiveMs` [off]: after this many ms with no request, the server passivates (stops and frees its
 *   memory); the next `find(p, true)` or `schedule` reactivates it from the store. Servers are checked every
 *   time-to-live by one shared sweep, so a server passivates between one and two time-to-lives after its last request.
 *
 * @since 0.1.0
 * @category options
 */
export interface Options {
  readonly mode?: Mode | undefined
  readonly timeoutMs?: number | undefined
  readonly mailboxCapacity?: number | undefined
  readonly blockHeight?: (() => number) | undefined
  readonly signer?: AssignmentSigner | undefined
  readonly upload?: Upload | undefined
  readonly idleTimeToLiveMs?: number | undefined
}

/**
 * What a scheduler needs from an uploader (the core defines it, the network layer's `Uploader` implements it):
 *
 * - `queued()`: new items were committed to the store's outbox; wakes the uploader. Synchronous and cheap.
 * - `confirmed(ids)`: succeeds once the bundler has acknowledged every data item in `ids` (at once if it
 *   already has); it never fails, and the scheduler bounds the wait by the call's deadline (`UploadPending`).
 *
 * Source: HyperBEAM `dev_scheduler_server` calls `hb_client:upload/1` after its write; `remote_confirmation`
 * replies after it.
 *
 * @since 0.3.0
 * @category models
 */
export interface Upload {
  readonly queued: () => void
  readonly confirmed: (ids: ReadonlyArray<string>) => Effect.Effect<void>
}

/**
 * A snapshot of a scheduler's state (`{info, State}` in HyperBEAM).
 *
 * - `slot`: the last assigned slot, -1 if none (`current`).
 * - `hashChain`, `assignmentId`, `timestamp` (ms): of that last slot; `undefined` if none.
 * - `address`: the wallet address that signs; `mode`; `mailboxDepth`: requests waiting.
 *
 * @since 0.1.0
 * @category models
 */
export interface Info {
  readonly processId: ProcessId
  readonly slot: number
  readonly hashChain: string | undefined
  readonly assignmentId: string | undefined
  readonly timestamp: number | undefined
  readonly address: string
  readonly mode: Mode
  readonly mailboxDepth: number
}

/**
 * A handle on a running scheduler server, as `SchedulerRegistry.find` returns it.
 *
 * - `schedule(message, { timeoutMs })`: the message's assignment, in slot order. Fails with
 *   `SchedulerTimeout` past the deadline (ms) before the assignment was written, `OutcomeUnknown` past it while
 *   it was being written (or when the store failed and could not be read back: it may be stored; retry),
 *   `MailboxFull`, `SchedulerStopped` (also "fenced …" when a newer writer claimed the process: the server
 *   stops, nothing was written), `StoreConflict` (e.g. the message is already scheduled for this process),
 *   `StoreError`.
 * - `info`: the current state, read without a mailbox round trip; fails with `SchedulerStopped` once stopped.
 * - `fiber`: the server fiber, which lives in the registry's scope.
 *
 * @since 0.1.0
 * @category models
 */
export interface Scheduler {
  readonly processId: ProcessId
  readonly address: string
  readonly mode: Mode
  readonly schedule: (
    message: Message,
    options?: { readonly timeoutMs?: number | undefined } | undefined
  ) => Effect.Effect<Assignment, ScheduleError>
  readonly info: Effect.Effect<Info, SchedulerStopped>
  readonly fiber: Fiber.RuntimeFiber<void, unknown>
}

/**
 * A scheduler server before it runs: its `handle`, the server loop `run(started)` to fork, and `attach` to give
 * the handle its fiber. The registry forks `run` into its own scope, so the server outlives the request that
 * started it. `run` must be the whole of its fiber (or its end): the server stops, and fails what still waits,
 * when that fiber ends (an exit observer, so that an idle server holds no stack frame).
 *
 * @since 0.1.0
 * @category models
 */
export type Server = Internal.Server

/**
 * A scheduler server for `processId`, signing with `options.signer` or else in-line with `wallet`. Not started:
 * fork `run` and `attach` the fiber (`SchedulerRegistry` does both, and is how applications get schedulers).
 * `run` claims the process in the store (`AssignmentStore.claim`, its fencing token) before it recovers the
 * slot and chain, and every append carries that token, so an older server of the process can no longer write.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Assignment, AssignmentStore, ProcessId, Scheduler, Wallet } from "effect-scheduler-registry"
 *
 * const processId = ProcessId.unsafeMake("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
 *
 * const program = Effect.gen(function* () {
 *   const wallet = yield* Wallet.Wallet
 *   const server = Scheduler.make(processId, wallet, { mode: "aggressive" })
 *   server.attach(yield* Effect.forkScoped(Effect.asVoid(server.run(Effect.void))))
 *   const id = ProcessId.MessageId.make("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
 *   const message = new Assignment.Message({ id })
 *   return yield* server.handle.schedule(message) // queued until the server has recovered
 * }).pipe(Effect.scoped, Effect.provide(Layer.merge(Wallet.layerGenerate, AssignmentStore.layerMemory)))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (processId: ProcessId, wallet: Wallet["Type"], options?: Options) => Server = Internal.make
