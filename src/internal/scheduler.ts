import { Cause, Clock, Context, Duration, Effect, type Exit, Fiber, FiberId, Metric, Option, Runtime } from "effect"
import * as Assignment from "../Assignment.js"
import { AssignmentStore } from "../AssignmentStore.js"
import {
  type Fenced,
  MailboxFull,
  OutcomeUnknown,
  type ScheduleError,
  SchedulerStopped,
  SchedulerTimeout,
  StoreConflict,
  type StoreError,
  UploadPending
} from "../errors.js"
import type { ProcessId } from "../ProcessId.js"
import type { Info, Mode, Options, Scheduler } from "../Scheduler.js"
import { Passivated } from "../Service.js"
import type { Wallet } from "../Wallet.js"
import * as Metrics from "./metrics.js"
import { itemsOf } from "./outbox.js"
import { type WriteOutcome, writeRun } from "./scheduler-write.js"
import { nativeTracer } from "./tracer.js"

/** Default deadline of a `schedule` call, in ms (`Scheduler.DEFAULT_TIMEOUT_MS`). */
export const DEFAULT_TIMEOUT_MS = 10_000

/** Default capacity of a scheduler's mailbox, in requests (`Scheduler.DEFAULT_MAILBOX_CAPACITY`). */
export const DEFAULT_MAILBOX_CAPACITY = 4_096

/**
 * The most requests signed as one run: one signer-thread round trip and one group commit. A run of 64 RSA-4096
 * signatures holds a signer thread for about 0.2 s, which bounds how long a stop waits for the run to end.
 */
const MAX_RUN = 64

/**
 * From this many queued requests a server takes half of them as a run (`poll`); below it, all. Few queued
 * requests mean that other processes keep the signers busy, and halving would only make them wait another run.
 */
const HALVE_FROM = 8

/** A run being written: its requests and assignments, in slot order, and the fiber writing them. */
interface Flight {
  readonly requests: ReadonlyArray<Request>
  readonly assignments: ReadonlyArray<Assignment.Assignment>
  readonly fiber: Fiber.RuntimeFiber<WriteOutcome>
}

/** A run being signed that requests can join: its requests and entries (in step) and its last timestamp (ms). */
interface Growing {
  readonly live: Array<Request>
  readonly entries: Array<Assignment.ChainEntry>
  readonly growth: Assignment.ChainGrowth
  readonly blockHeight: number
  timestamp: number
}

interface Request {
  readonly message: Assignment.Message
  /** Resumes the caller; `undefined` once the request is settled (replied, timed out, or the caller left). */
  resume: ((reply: Effect.Effect<Assignment.Assignment, ScheduleError>) => void) | undefined
  /** When the call began, in ms (for the latency metric). */
  readonly calledAt: number
  readonly deadline: number
  readonly timeoutMs: number
  /**
   * Put back after a run broke on a message the store already held: checked against the store before it is
   * signed again, so that a burst of retries (every one a duplicate) costs one signature each, not one per
   * retry per run.
   */
  recheck?: boolean | undefined
}

/** Replies once: later replies (a timed-out request whose assignment still completes) are dropped. */
const settle = (request: Request, reply: Effect.Effect<Assignment.Assignment, ScheduleError>, now: number): void => {
  const resume = request.resume
  if (resume === undefined) return
  request.resume = undefined
  Metrics.scheduleLatency.unsafeUpdate(Duration.millis(Math.max(0, now - request.calledAt)), [])
  resume(reply)
}

/** Offered by the idle timer: the loop passivates if nothing happened for a whole time-to-live. */
const IdleCheck = Symbol("IdleCheck")

type Item = Request | typeof IdleCheck

/** The server loop, from any point on: it ends `Passivated`, or fails with the store's error that stopped it. */
type Loop = Effect.Effect<typeof Passivated, StoreError | StoreConflict | Fenced>

/**
 * A scheduler before it runs: its handle, the server loop to fork, and `attach` to give the handle its fiber.
 * The registry forks `run` into its own scope, so the server outlives the request that started it.
 */
export interface Server {
  readonly handle: Scheduler
  /** Recovers the slot and chain from the store, runs `started`, then serves the mailbox until stopped. */
  readonly run: (
    started: Effect.Effect<void>
  ) => Effect.Effect<typeof Passivated, StoreError | StoreConflict | Fenced, AssignmentStore>
  readonly attach: (fiber: Fiber.RuntimeFiber<void, unknown>) => void
}

const describeExit = (exit: Exit.Exit<unknown, unknown>): string =>
  exit._tag === "Success"
    ? exit.value === Passivated
      ? "passivated"
      : "exited"
    : Cause.isInterruptedOnly(exit.cause)
      ? "interrupted"
      : `failed: ${Cause.pretty(exit.cause).split("\n")[0]}`

/** The options' defaults, resolved once per distinct options object (the registry passes the same one). */
interface Settings {
  readonly mode: Mode
  readonly timeoutMs: number
  readonly capacity: number
  readonly blockHeight: () => number
  readonly signer: Assignment.AssignmentSigner | undefined
  readonly upload: Options["upload"]
  readonly idleTimeToLive: number | undefined
}

const zero = () => 0
const settingsCache = new WeakMap<Options, Settings>()
const settingsOf = (options: Options): Settings => {
  let settings = settingsCache.get(options)
  if (settings === undefined) {
    settings = {
      mode: options.mode ?? "local_confirmation",
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      capacity: options.mailboxCapacity ?? DEFAULT_MAILBOX_CAPACITY,
      blockHeight: options.blockHeight ?? zero,
      signer: options.signer,
      upload: options.upload,
      idleTimeToLive: options.idleTimeToLiveMs
    }
    settingsCache.set(options, settings)
  }
  return settings
}

const noOptions: Options = {}

/**
 * One scheduler server. Its state is a handful of fields and its methods live on the prototype, so an idle
 * server costs little memory: the mailbox array is allocated on first use and dropped again when it drains,
 * and an idle server's fiber waits in a single `Effect.async`.
 */
class SchedulerServer implements Server, Scheduler {
  readonly address: string
  readonly mode: Mode
  private readonly settings: Settings
  /** Queued requests (and idle checks), oldest first; `undefined` while empty. */
  private queue: Array<Item> | undefined = undefined
  /** Resumes the server fiber while it waits for the mailbox, with the rest of its loop (`serve`). */
  private waiter: ((loop: Loop) => void) | undefined = undefined
  /** The store the loop serves, set by `run`. */
  private store: AssignmentStore["Type"] | undefined = undefined
  /** The idle sweep that checks this server, while it runs with a time-to-live. */
  private sweep: IdleSweep | undefined = undefined
  private lastActivity = 0
  private slot = -1
  private hashChain: string | undefined = undefined
  private assignmentId: string | undefined = undefined
  private timestamp: number | undefined = undefined
  private stopped: string | undefined = undefined
  private serverFiber: Fiber.RuntimeFiber<void, unknown> | undefined = undefined
  /**
   * The requests taken off the queue (by `poll`, in the same step) and not yet answered: being signed or written.
   * Past its deadline such a request's outcome is unknown (`OutcomeUnknown`), not a plain timeout.
   */
  private readonly inFlight = new Set<Request>()
  /** The requests of `inFlight` whose write has started: past its deadline, the outcome of such a write is unknown. */
  private readonly writing = new Set<Request>()
  /** Where signing goes on: the next slot, its `Hash-Chain`, the id before it, the last timestamp signed. */
  private headSlot = 0
  private headChain: string | undefined = undefined
  private headPrevious: string | undefined = undefined
  private headTimestamp: number | undefined = undefined
  /** The run being written while the next one is signed (`scheduler-write.ts`). */
  private flight: Flight | undefined = undefined
  /** The last broken run broke on a message the store already held (`land`): what is put back is rechecked. */
  private duplicateBreak = false
  /** The run being signed, while requests that arrive to an empty queue can still join it (`join`). */
  private growing: Growing | undefined = undefined
  /** This server's fencing token (`AssignmentStore.claim`), taken before it recovers from the store. */
  private epoch: number | undefined = undefined
  /** Fails requests whose deadline passed; runs only while requests wait. */
  private watchdog: Fiber.RuntimeFiber<void> | undefined = undefined
  /** When the watchdog wakes next, in ms (`Infinity` when it does not run). */
  private watchdogAt = Number.POSITIVE_INFINITY
  /** Bumped whenever the watchdog is replaced or stopped, so that an old one never touches the state. */
  private watchdogGeneration = 0

  constructor(
    readonly processId: ProcessId,
    private readonly wallet: Wallet["Type"],
    options: Options
  ) {
    this.settings = settingsOf(options)
    this.address = wallet.address
    this.mode = this.settings.mode
  }

  get handle(): Scheduler {
    return this
  }

  get fiber(): Fiber.RuntimeFiber<void, unknown> {
    if (this.serverFiber === undefined) throw new Error("scheduler not started")
    return this.serverFiber
  }

  attach(fiber: Fiber.RuntimeFiber<void, unknown>): void {
    this.serverFiber = fiber
  }

  /** Requests waiting for their write to start: queued, or taken and being signed. */
  private get depth(): number {
    return (this.queue === undefined ? 0 : this.queue.length) + this.inFlight.size - this.writing.size
  }

  /**
   * Queues `item` unless the server stopped or the mailbox is full, and wakes the server if it waits. Once
   * `stopped` is set nothing is queued any more, so nothing can wait in a queue that nobody serves.
   */
  private offer(item: Item): boolean {
    if (this.stopped !== undefined || this.depth >= this.settings.capacity) return false
    if (this.queue === undefined) this.queue = [item]
    else this.queue.push(item)
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      waiter(this.serve(this.store!))
    }
    return true
  }

  /**
   * Adds `request` to the run being signed, when there is one with room, nothing waits before it in the queue
   * and the mailbox has room: its signer takes it after the run's other entries, without a round trip
   * (`Assignment.ChainGrowth`), so a signer thread never waits for the main thread between two runs. What its
   * signer did not take in time goes back to the queue (`assignRun`). Not in aggressive mode, which checks each
   * request against the store before it signs.
   */
  private join(request: Request, now: number): boolean {
    const growing = this.growing
    if (growing === undefined || this.queue !== undefined || this.stopped !== undefined) return false
    if (growing.entries.length >= MAX_RUN || this.depth >= this.settings.capacity) return false
    growing.timestamp = Math.max(now, growing.timestamp + 1)
    const { id, exclude } = request.message
    const entry = { messageId: id, timestamp: growing.timestamp, blockHeight: growing.blockHeight, epoch: 0 }
    growing.entries.push(exclude === undefined ? entry : { ...entry, exclude })
    growing.live.push(request)
    this.inFlight.add(request)
    growing.growth.grew?.()
    return true
  }

  /**
   * Takes half the queue (all of it up to 2 items; at most MAX_RUN), oldest first: under steady load the other half
   * is the next run, ready when this one is signed, whereas a run of the whole queue answers every caller at
   * once, and their next requests then arrive together while the signer waits for them. In the same synchronous
   * step it records the taken requests as
   * in flight: a request is always either queued or in flight until it is settled, so a stop that lands between
   * the take and the start of its assignment (the server fiber can be interrupted at that point) still answers it
   * `SchedulerStopped`.
   */
  private poll(): ReadonlyArray<Item> | undefined {
    const queue = this.queue
    if (queue === undefined) return undefined
    const take = Math.min(MAX_RUN, queue.length < HALVE_FROM ? queue.length : Math.ceil(queue.length / 2))
    const items = queue.length <= take ? queue : queue.splice(0, take)
    if (items === queue) this.queue = undefined
    for (const item of items) if (item !== IdleCheck) this.inFlight.add(item)
    return items
  }

  /** Puts `requests` (taken, not written) back at the head of the queue, in order, to be signed again. */
  private requeue(requests: ReadonlyArray<Request>): void {
    const live = requests.filter((r) => r.resume !== undefined)
    for (const r of requests) {
      this.inFlight.delete(r)
      this.writing.delete(r)
    }
    if (live.length === 0) return
    this.queue = this.queue === undefined ? live : [...live, ...this.queue]
  }

  /**
   * Waits for the mailbox, in tail position: an idle server holds no stack frame, only this one wait, and the
   * wake-up (`offer`) resumes it with the rest of the loop, which takes the item from the queue afterwards, so an
   * item offered while the server is being interrupted stays queued (and is failed when it stops). The server can
   * be preempted between its poll and this wait: the wait is registered only if the queue is still empty, in the
   * same synchronous step, so no offer is missed.
   */
  private idle(store: AssignmentStore["Type"]): Loop {
    return Effect.async<typeof Passivated, StoreError | StoreConflict | Fenced>((resume) => {
      if (this.queue !== undefined) return resume(this.serve(store))
      this.waiter = resume
    })
  }

  private stoppedError(): SchedulerStopped {
    return new SchedulerStopped({ processId: this.processId, reason: this.stopped ?? "not running" })
  }

  /**
   * Queues the request and waits for its reply. There is no `Deferred` and no timer per call: the caller's
   * fiber is resumed by whoever settles the request (the server with the assignment, the watchdog at the
   * deadline, or `onStop`), and one watchdog fiber per scheduler enforces every deadline (`Effect.timeout`
   * forked two fibers per call, a tenth of an unsigned schedule).
   */
  schedule(
    message: Assignment.Message,
    callOptions?: { readonly timeoutMs?: number | undefined } | undefined
  ): Effect.Effect<Assignment.Assignment, ScheduleError> {
    const scheduled = Effect.clockWith((clock) => {
      const now = clock.unsafeCurrentTimeMillis()
      if (this.stopped !== undefined) return Effect.fail(this.stoppedError())
      const timeoutMs = callOptions?.timeoutMs ?? this.settings.timeoutMs
      const request: Request = { message, resume: undefined, calledAt: now, deadline: now + timeoutMs, timeoutMs }
      const reply = (watchdogRuntime: Runtime.Runtime<never> | undefined) =>
        Effect.async<Assignment.Assignment, ScheduleError>((resume) => {
          // checked again here, in the same synchronous step as the enqueue: the server may have stopped since
          // the check above (the caller can be preempted in between), and `stop` has then failed the queue
          if (this.stopped !== undefined) return resume(Effect.fail(this.stoppedError()))
          request.resume = resume
          if (!this.join(request, clock.unsafeCurrentTimeMillis()) && !this.offer(request)) {
            request.resume = undefined
            return resume(Effect.fail(new MailboxFull({ processId: this.processId, capacity: this.settings.capacity })))
          }
          Metrics.mailboxDepth.unsafeUpdate(this.depth, [])
          // started only once the request is queued, so the watchdog cannot miss it
          if (watchdogRuntime !== undefined) this.watch(watchdogRuntime, request.deadline)
          // the caller left (interrupted): the server drops the request if it has not started it
          return Effect.sync(() => {
            if (request.resume !== undefined) settle(request, Effect.interrupt, clock.unsafeCurrentTimeMillis())
          })
        })
      // the watchdog must wake by this deadline: it is (re)started on the caller's runtime (its Clock)
      return request.deadline < this.watchdogAt ? Effect.flatMap(Effect.runtime<never>(), reply) : reply(undefined)
    })
    // under Effect's built-in tracer nobody sees the span, and making one (with its stack trace) cost about a
    // tenth of an unsigned schedule
    return Effect.tracerWith((tracer) =>
      tracer === nativeTracer
        ? scheduled
        : Effect.withSpan(scheduled, "Scheduler.schedule", { attributes: { mode: this.mode } })
    )
  }

  /**
   * (Re)starts the watchdog so that it wakes by `deadline` (the earliest deadline of the waiting requests), as a
   * root fiber of `runtime`: it outlives the call that started it and ends when no request waits.
   */
  private watch(runtime: Runtime.Runtime<never>, deadline: number): void {
    this.stopWatchdog()
    const generation = this.watchdogGeneration
    this.watchdogAt = deadline
    const fiber = Runtime.runFork(runtime)(this.expire(generation))
    if (this.watchdogGeneration === generation && this.watchdogAt !== Number.POSITIVE_INFINITY) this.watchdog = fiber
  }

  private stopWatchdog(): void {
    this.watchdogGeneration++
    this.watchdog?.unsafeInterruptAsFork(FiberId.none)
    this.watchdog = undefined
    this.watchdogAt = Number.POSITIVE_INFINITY
  }

  /**
   * Fails every waiting request whose deadline passed, then sleeps until the next deadline, if any. A
   * watchdog that was replaced (another `generation`) stops without touching the state.
   */
  private expire(generation: number): Effect.Effect<void> {
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (generation !== this.watchdogGeneration) return Effect.void
      let next = Number.POSITIVE_INFINITY
      const check = (item: Item | undefined) => {
        if (item === undefined || item === IdleCheck || item.resume === undefined) return
        if (item.deadline <= now) {
          settle(item, Effect.fail(this.timeoutError(item)), now)
        } else if (item.deadline < next) next = item.deadline
      }
      for (const item of this.inFlight) check(item)
      if (this.queue !== undefined) for (const item of this.queue) check(item)
      this.watchdogAt = next
      if (next === Number.POSITIVE_INFINITY) {
        this.watchdog = undefined
        return Effect.void
      }
      return Effect.zipRight(
        Effect.sleep(next - now),
        Effect.suspend(() => this.expire(generation))
      )
    })
  }

  /** A timeout for `item`: `SchedulerTimeout` (not assigned) before its write began, `OutcomeUnknown` during it. */
  private timeoutError(item: Request): SchedulerTimeout | OutcomeUnknown {
    const { processId } = this
    return this.writing.has(item)
      ? new OutcomeUnknown({ processId, messageId: item.message.id, timeoutMs: item.timeoutMs })
      : new SchedulerTimeout({ processId, timeoutMs: item.timeoutMs })
  }

  get info(): Effect.Effect<Info, SchedulerStopped> {
    return Effect.suspend(() =>
      this.stopped !== undefined
        ? Effect.fail(this.stoppedError())
        : Effect.succeed<Info>({
            processId: this.processId,
            slot: this.slot,
            hashChain: this.hashChain,
            assignmentId: this.assignmentId,
            timestamp: this.timestamp,
            address: this.address,
            mode: this.mode,
            mailboxDepth: this.depth
          })
    )
  }

  /** Answers `request` (once) and forgets it. */
  private answer(request: Request, reply: Effect.Effect<Assignment.Assignment, ScheduleError>, now: number): void {
    this.inFlight.delete(request)
    this.writing.delete(request)
    settle(request, reply, now)
  }

  /** The durable head: the last committed assignment (what `info` reports). */
  private commit(a: Assignment.Assignment): void {
    this.slot = a.slot
    this.hashChain = a.hashChain
    this.assignmentId = a.id
    this.timestamp = a.timestamp
  }

  /** Signing goes on after `a`. */
  private advanceHead(a: Assignment.Assignment): void {
    this.headSlot = a.slot + 1
    this.headChain = Assignment.nextHashChain(a.id, a.hashChain)
    this.headPrevious = a.id
    this.headTimestamp = a.timestamp
  }

  /** Signing starts again from the durable head (after a run that was not written). */
  private resetHead(): void {
    this.headSlot = this.slot + 1
    this.headChain =
      this.assignmentId === undefined || this.hashChain === undefined
        ? Assignment.initialHashChain(this.processId)
        : Assignment.nextHashChain(this.assignmentId, this.hashChain)
    this.headPrevious = this.assignmentId
    this.headTimestamp = this.timestamp
  }

  /** The signer for this server's wallet: the shared one (e.g. a `SignerPool`) when it holds this wallet's key. */
  private get signer(): Assignment.AssignmentSigner {
    const shared = this.settings.signer
    return shared !== undefined && Buffer.from(shared.owner).equals(this.wallet.owner)
      ? shared
      : { owner: this.wallet.owner, sign: this.wallet.sign }
  }

  /**
   * Signs the live requests of `requests` as the next run of slots, ends the previous run's write, then starts
   * this run's write (forked: the server signs the next run meanwhile). Requests that timed out or whose caller
   * left before their run are dropped and consume no slot (behaviour 28).
   */
  private assignRun(store: AssignmentStore["Type"], requests: ReadonlyArray<Request>) {
    const self = this
    return Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      let live: Array<Request> = []
      for (const request of requests) {
        if (request.resume !== undefined && now <= request.deadline) live.push(request)
        else {
          const timeout = new SchedulerTimeout({ processId: self.processId, timeoutMs: request.timeoutMs })
          self.answer(request, Effect.fail(timeout), now)
        }
      }
      // aggressive mode replies before the write, so a duplicate must be refused before it takes a slot (the sync
      // modes learn it from the write itself, which refuses it and everything after it, unwritten; what was put
      // back then is checked here, before it is signed again)
      if (self.mode === "aggressive") live = yield* self.refuseDuplicates(store, live)
      else if (live.some((request) => request.recheck === true)) {
        const checked = yield* self.refuseDuplicates(
          store,
          live.filter((request) => request.recheck === true)
        )
        const kept = new Set(checked)
        live = live.filter((request) => request.recheck !== true || kept.has(request))
        for (const request of live) request.recheck = undefined
      }
      if (live.length === 0) return
      let timestamp = self.headTimestamp
      const blockHeight = self.settings.blockHeight()
      const entries: Array<Assignment.ChainEntry> = live.map((request) => {
        timestamp = timestamp === undefined ? now : Math.max(now, timestamp + 1)
        const { id, exclude } = request.message
        return { messageId: id, timestamp, blockHeight, epoch: 0, ...(exclude === undefined ? {} : { exclude }) }
      })
      const start = { processId: self.processId, slot: self.headSlot, hashChain: self.headChain! }
      // requests that arrive while the run is signed join it (`join`), up to MAX_RUN
      const growth: Assignment.ChainGrowth = { grew: undefined }
      if (self.mode !== "aggressive") self.growing = { live, entries, growth, blockHeight, timestamp: timestamp! }
      const assignments = yield* Effect.ensuring(
        Assignment.signChain(self.signer, start, entries, growth),
        Effect.sync(() => {
          self.growing = undefined
        })
      )
      // the joined requests its signer did not take in time are signed in a later run
      if (assignments.length < live.length) {
        self.requeue(live.slice(assignments.length))
        live = live.slice(0, assignments.length)
      }
      // the previous run is written before this one starts: the store sees the slots in order
      if (self.flight !== undefined && !(yield* self.land(store))) {
        // the previous run was not all written: this run follows a head that does not exist, so it is signed again
        if (self.duplicateBreak) for (const request of live) request.recheck = true
        return self.requeue(live)
      }
      // a stop requested meanwhile takes effect here, before this run's write starts: its callers are told
      // `SchedulerStopped`, and nothing of the run was written
      yield* Effect.interruptible(Effect.void)
      // a request whose deadline passed (or whose caller left) while the run was signed was told it was not
      // assigned: the run is cut before it, that request takes no slot, and the ones after it are signed again
      const cut = live.findIndex((request) => request.resume === undefined)
      if (cut >= 0) {
        self.inFlight.delete(live[cut]!)
        self.requeue(live.slice(cut + 1))
        live = live.slice(0, cut)
        if (live.length === 0) return
      }
      const run = assignments.slice(0, live.length)
      for (const request of live) self.writing.add(request)
      const previous = self.headPrevious
      self.advanceHead(run.at(-1)!)
      const write = writeRun(
        store,
        run,
        live.map((r) => r.message),
        { previous, epoch: self.epoch, outbox: self.settings.upload !== undefined },
        (i, at) => self.committed(live[i]!, run[i]!, at)
      )
      const fiber = yield* Effect.fork(Metric.trackDuration(write, Metrics.storeLatency))
      self.flight = { requests: live, assignments: run, fiber }
      if (self.mode === "aggressive") {
        const at = yield* Clock.currentTimeMillis
        for (let i = 0; i < live.length; i++) self.answer(live[i]!, Effect.succeed(run[i]!), at)
      }
    })
  }

  /** Aggressive mode: refuses (`StoreConflict`) the requests whose message the store already holds. */
  private refuseDuplicates(store: AssignmentStore["Type"], requests: ReadonlyArray<Request>) {
    return Effect.filter(requests, (request) =>
      Effect.flatMap(store.getMessage(request.message.id, this.processId), (held) => {
        if (Option.isNone(held)) return Effect.succeed(true)
        const reason = "message already scheduled"
        const conflict = new StoreConflict({ processId: this.processId, slot: this.headSlot, reason })
        return Effect.as(
          Effect.map(Clock.currentTimeMillis, (now) => this.answer(request, Effect.fail(conflict), now)),
          false
        )
      })
    )
  }

  /** One assignment of the run in flight is durable: the head moves, and its caller gets it (sync modes). */
  private committed(request: Request, assignment: Assignment.Assignment, now: number): void {
    this.commit(assignment)
    Metrics.assignments.unsafeUpdate(1, [])
    const upload = this.settings.upload
    upload?.queued()
    if (this.mode === "aggressive") {
      this.inFlight.delete(request)
      this.writing.delete(request)
      return
    }
    if (upload === undefined || this.mode !== "remote_confirmation") {
      this.answer(request, Effect.succeed(assignment), now)
      return
    }
    // the caller waits for the bundler in its own fiber: the server goes on with the next slots meanwhile
    const pending = new UploadPending({
      processId: this.processId,
      slot: assignment.slot,
      assignmentId: assignment.id,
      timeoutMs: request.timeoutMs
    })
    const confirmed = upload
      .confirmed(itemsOf(assignment, request.message).map((item) => item.id))
      .pipe(
        Effect.timeoutFail({ duration: Math.max(0, request.deadline - now), onTimeout: () => pending }),
        Effect.as(assignment)
      )
    this.answer(request, confirmed, now)
  }

  /**
   * Waits for the run in flight and judges how its write ended. `true`: every append is durable. `false`: a
   * prefix is; the first failed request got its answer, the rest were put back in the queue and signing starts
   * again from the durable head. Fails (the server stops) when this server is stale: fenced, another writer took
   * the slot, or neither the write nor a read of the store answered.
   */
  private land(store: AssignmentStore["Type"]): Effect.Effect<boolean, StoreError | StoreConflict | Fenced> {
    const flight = this.flight!
    this.flight = undefined
    return Effect.flatMap(Fiber.join(flight.fiber), (outcome) => {
      if (outcome._tag === "Written") return Effect.succeed(true)
      const { index, failure } = outcome
      const rest = flight.requests.slice(index)
      const failAll = (error: ScheduleError) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          for (const request of rest) this.answer(request, Effect.fail(error), now)
          return Effect.fail(failure)
        })
      if (this.mode === "aggressive") return failAll(this.stoppedError())
      if (failure._tag === "Fenced") {
        // another writer claimed the process: nothing more was written, and this server is stale, so it stops
        const reason = `fenced: ${failure.message}; retry`
        return failAll(new SchedulerStopped({ processId: this.processId, reason }))
      }
      const first = flight.assignments[index]!
      // a failed write may still have committed (a commit whose outcome is unknown), or another writer may hold
      // the slot: the store's head tells which, so the server never wedges on a slot it cannot write
      return Effect.flatMap(Effect.either(store.latest(this.processId)), (read) => {
        if (read._tag === "Left") {
          const unknown = (request: Request) =>
            new OutcomeUnknown({
              processId: this.processId,
              messageId: request.message.id,
              timeoutMs: request.timeoutMs
            })
          return Effect.flatMap(Clock.currentTimeMillis, (now) => {
            for (const request of rest) this.answer(request, Effect.fail(unknown(request)), now)
            return Effect.fail(failure)
          })
        }
        const head = Option.getOrUndefined(read.right)
        const ours = head === undefined ? -1 : flight.assignments.findIndex((a) => a.id === head.assignmentId)
        if (ours < index && head !== undefined && head.slot >= first.slot) return failAll(failure)
        // the appends up to `ours` committed after all; the first one after them failed, the rest were refused
        const failed = Math.max(index, ours + 1)
        return Effect.map(Clock.currentTimeMillis, (now) => {
          for (let i = index; i < failed; i++) this.committed(flight.requests[i]!, flight.assignments[i]!, now)
          if (failed < flight.requests.length) this.answer(flight.requests[failed]!, Effect.fail(failure), now)
          const rest = flight.requests.slice(failed + 1)
          // retries come in bursts (a client that lost its answers posts them all again): check the rest too
          this.duplicateBreak = failure._tag === "StoreConflict" && failure.reason === "message already scheduled"
          if (this.duplicateBreak) for (const request of rest) request.recheck = true
          this.requeue(rest)
          this.resetHead()
          return false
        })
      })
    })
  }

  /**
   * Marks the server stopped (a first reason is kept) and fails, in the same synchronous step, every request
   * still queued or under way: from then on `offer` refuses, so no request is left in a queue nobody serves.
   */
  private stop(reason: string, now: number): void {
    if (this.stopped === undefined) this.stopped = reason
    this.waiter = undefined
    this.stopWatchdog()
    const pending = this.queue
    this.queue = undefined
    const taken = Array.from(this.inFlight)
    this.inFlight.clear()
    this.writing.clear()
    if (pending === undefined && taken.length === 0) return
    const error = Effect.fail(this.stoppedError())
    for (const request of taken) settle(request, error, now)
    if (pending !== undefined) for (const item of pending) if (item !== IdleCheck) settle(item, error, now)
  }

  /** Called by the server fiber's exit observer (`stopOnExit`), in the step in which the fiber ends. */
  exited(exit: Exit.Exit<unknown, unknown>): void {
    this.stop(describeExit(exit), Date.now())
    this.sweep?.remove(this)
    this.sweep = undefined
  }

  /** Queues an idle check (`IdleSweep`): the server passivates if nothing happened for a whole time-to-live. */
  checkIdle(): void {
    this.offer(IdleCheck)
  }

  /** Logs the failure that stops the server, in its fiber (with its context), before the fiber ends. */
  private logStopped(cause: Cause.Cause<unknown>): Effect.Effect<void> {
    return Cause.isInterruptedOnly(cause)
      ? Effect.void
      : Effect.logError("scheduler stopped with an error", cause).pipe(
          Effect.annotateLogs({ processId: this.processId })
        )
  }

  /**
   * Serves one batch of items: a run of requests, or an idle check (`Passivated` when the server was idle a whole
   * time-to-live). A run, once started, completes: shutdown never cuts a signature or a write in half.
   */
  private step(
    store: AssignmentStore["Type"],
    items: ReadonlyArray<Item>
  ): Effect.Effect<typeof Passivated | undefined, StoreError | StoreConflict | Fenced> {
    const requests = items.filter((item): item is Request => item !== IdleCheck)
    if (requests.length === 0) {
      return Effect.map(Clock.currentTimeMillis, (now) => {
        // checked and decided in one synchronous step: a `schedule` either queued before (and the server
        // stays) or sees `stopped` (at its enqueue at the latest) and reactivates through the registry
        if (now - this.lastActivity < this.settings.idleTimeToLive! || this.depth > 0 || this.flight !== undefined) {
          return undefined
        }
        this.stop("passivated", now)
        return Passivated
      })
    }
    return Effect.uninterruptible(
      this.assignRun(store, requests).pipe(
        Effect.tapErrorCause((cause) =>
          Effect.zipRight(
            Effect.sync(() => {
              const reason = `failed: ${Cause.pretty(cause).split("\n")[0]}`
              const stopped = Effect.fail(new SchedulerStopped({ processId: this.processId, reason }))
              for (const request of requests) this.answer(request, stopped, Date.now())
            }),
            this.logStopped(cause)
          )
        )
      )
    ).pipe(
      Effect.zipRight(Clock.currentTimeMillis),
      Effect.map((now) => {
        this.lastActivity = now
        return undefined
      })
    )
  }

  private serve(store: AssignmentStore["Type"]): Loop {
    return Effect.suspend(() => {
      if (this.queue === undefined && this.flight !== undefined) {
        // nothing queued while a run is being written: its answers go out before the server waits, so an idle
        // (interruptible) server never has a write in flight
        return Effect.flatMap(
          Effect.uninterruptible(this.land(store)).pipe(Effect.tapErrorCause((cause) => this.logStopped(cause))),
          () => this.serve(store)
        )
      }
      const items = this.poll()
      if (items === undefined) return this.idle(store)
      return Effect.flatMap(this.step(store, items), (result) =>
        result === Passivated ? Effect.succeed(result) : this.serve(store)
      )
    })
  }

  /** Claims the process, recovers the slot and chain from the store, then runs `started`; logs a failure. */
  private recover(store: AssignmentStore["Type"], started: Effect.Effect<void>): Effect.Effect<void, StoreError> {
    // claimed first, so that `latest` includes every write of an earlier owner, whose later writes are fenced
    return store.claim(this.processId).pipe(
      Effect.flatMap((epoch) => {
        this.epoch = epoch
        return store.latest(this.processId)
      }),
      Effect.flatMap((latest) => {
        if (Option.isSome(latest)) {
          this.slot = latest.value.slot
          this.hashChain = latest.value.hashChain
          this.assignmentId = latest.value.assignmentId
          this.timestamp = latest.value.timestamp
        }
        this.resetHead()
        return started
      }),
      Effect.tapErrorCause((cause) => this.logStopped(cause))
    )
  }

  /**
   * The server fiber's body. It must be the whole of its fiber (or its end): the server stops, and fails what
   * waits, when that fiber ends, however it ends. An exit observer does it rather than `Effect.onExit`, and the
   * loop waits in tail position, so that an idle server holds no stack frame: its memory is what bounds how many
   * schedulers a node can hold. The store, clock and tracer are read from the fiber directly: a start is a few
   * dozen steps, and each one counts when a node starts thousands of schedulers.
   */
  run(
    started: Effect.Effect<void>
  ): Effect.Effect<typeof Passivated, StoreError | StoreConflict | Fenced, AssignmentStore> {
    const server = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Loop => {
      const store = Context.get(fiber.currentContext as Context.Context<AssignmentStore>, AssignmentStore)
      fiber.addObserver(stopOnExit(this))
      this.store = store
      return Effect.flatMap(this.recover(store, started), () => {
        const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
        this.lastActivity = clock.unsafeCurrentTimeMillis()
        const ttl = this.settings.idleTimeToLive
        if (ttl === undefined) return this.serve(store)
        this.sweep = sweepOf(ttl, clock)
        return Effect.zipRight(this.sweep.add(this), this.serve(store))
      })
    }
    return Effect.withFiberRuntime<typeof Passivated, StoreError | StoreConflict | Fenced, AssignmentStore>((fiber) =>
      // a long-lived fiber: it must not become a child span of the request that happened to start it. Under
      // Effect's built-in tracer nobody can see that span, so it is made only when a real tracer is installed:
      // it would cost an idle server about 2 KB (span, ids, context copy, frames).
      fiber.currentTracer === nativeTracer
        ? server(fiber)
        : Effect.withSpan(
            Effect.withFiberRuntime((inner) => server(inner)),
            "Scheduler.server",
            { root: true, captureStackTrace: false }
          )
    )
  }
}

/**
 * The idle checks of every server with the same time-to-live and clock: one fiber that, every time-to-live, offers
 * each server an idle check, and that runs only while such a server does. A server costs it one set entry, where
 * a timer fiber of its own cost an idle server about 5.7 KB. A server passivates between one and two
 * time-to-lives after its last activity, as it did with its own timer.
 */
class IdleSweep {
  private readonly servers = new Set<SchedulerServer>()
  private fiber: Fiber.RuntimeFiber<void> | undefined = undefined
  constructor(private readonly ttl: number) {}

  /** Adds `server`; starts the sweep (a daemon fiber, with the calling server fiber's context) if it is not running. */
  add(server: SchedulerServer): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.servers.add(server)
      if (this.fiber !== undefined) return Effect.void
      const sweep: Effect.Effect<void> = Effect.zipRight(
        Effect.sleep(this.ttl),
        Effect.suspend(() => {
          for (const s of this.servers) s.checkIdle()
          return sweep
        })
      )
      return Effect.map(Effect.forkDaemon(sweep), (fiber) => {
        // the last server may have stopped while the sweep was being forked
        if (this.servers.size === 0) fiber.unsafeInterruptAsFork(FiberId.none)
        else this.fiber = fiber
      })
    })
  }

  /** Removes `server`; the sweep stops with the last one. */
  remove(server: SchedulerServer): void {
    this.servers.delete(server)
    if (this.servers.size > 0 || this.fiber === undefined) return
    this.fiber.unsafeInterruptAsFork(FiberId.none)
    this.fiber = undefined
  }
}

/**
 * The sweeps by clock and time-to-live: every server with the same time-to-live shares one, whatever its other
 * options (a `find` with per-call options makes new settings), and each test clock has its own.
 */
const sweeps = new WeakMap<Clock.Clock, Map<number, IdleSweep>>()
const sweepOf = (ttl: number, clock: Clock.Clock): IdleSweep => {
  let byTtl = sweeps.get(clock)
  if (byTtl === undefined) {
    byTtl = new Map()
    sweeps.set(clock, byTtl)
  }
  let sweep = byTtl.get(ttl)
  if (sweep === undefined) {
    sweep = new IdleSweep(ttl)
    byTtl.set(ttl, sweep)
  }
  return sweep
}

/** The server fiber's exit observer; anonymous, and made outside the class, so that it retains only the server. */
const stopOnExit =
  (server: SchedulerServer) =>
  (exit: Exit.Exit<unknown, unknown>): void =>
    server.exited(exit)

/**
 * A scheduler server for `processId`, signing with `options.signer` or else in-line with `wallet`.
 * Not started: fork `run` and `attach` the fiber (the registry does both).
 */
export const make = (processId: ProcessId, wallet: Wallet["Type"], options: Options = noOptions): Server =>
  new SchedulerServer(processId, wallet, options)
