import { Cause, Clock, Deferred, Effect, type Exit, type Fiber, FiberId, Metric, Option, Queue } from "effect"
import * as Assignment from "../Assignment.js"
import { AssignmentStore } from "../AssignmentStore.js"
import {
  MailboxFull,
  type ScheduleError,
  SchedulerStopped,
  SchedulerTimeout,
  type StoreConflict,
  type StoreError
} from "../errors.js"
import type { ProcessId } from "../ProcessId.js"
import type { Info, Mode, Options, Scheduler } from "../Scheduler.js"
import { DEFAULT_MAILBOX_CAPACITY, DEFAULT_TIMEOUT_MS } from "../Scheduler.js"
import { Passivated } from "../ServiceRegistry.js"
import type { Wallet } from "../Wallet.js"
import * as Metrics from "./metrics.js"

interface Request {
  readonly message: Assignment.Message
  readonly reply: Deferred.Deferred<Assignment.Assignment, ScheduleError>
  readonly deadline: number
  readonly timeoutMs: number
  /** Set when the caller stopped waiting (timeout or interruption): the server drops the request. */
  abandoned: boolean
}

/** Offered by the idle timer: the loop passivates if nothing happened for a whole time-to-live. */
const IdleCheck = Symbol("IdleCheck")

interface State {
  slot: number
  hashChain: string | undefined
  assignmentId: string | undefined
  timestamp: number | undefined
}

/**
 * A scheduler before it runs: its handle, the server loop to fork, and `attach` to give the handle its fiber.
 * The registry forks `run` into its own scope, so the server outlives the request that started it.
 */
export interface Server {
  readonly handle: Scheduler
  /** Recovers the slot and chain from the store, runs `started`, then serves the mailbox until stopped. */
  readonly run: (
    started: Effect.Effect<void>
  ) => Effect.Effect<typeof Passivated, StoreError | StoreConflict, AssignmentStore>
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

export const make = (processId: ProcessId, wallet: Wallet["Type"], options: Options = {}): Server => {
  const mode: Mode = options.mode ?? "local_confirmation"
  const defaultTimeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const capacity = options.mailboxCapacity ?? DEFAULT_MAILBOX_CAPACITY
  const blockHeight = options.blockHeight ?? (() => 0)
  const signer: Assignment.AssignmentSigner = options.signer ?? { owner: wallet.owner, sign: wallet.sign }
  const idleTimeToLive = options.idleTimeToLiveMs
  const mailbox = Effect.runSync(Queue.bounded<Request | typeof IdleCheck>(capacity))
  let lastActivity = 0
  const state: State = { slot: -1, hashChain: undefined, assignmentId: undefined, timestamp: undefined }
  let stopped: string | undefined
  let fiber: Fiber.RuntimeFiber<void, unknown> | undefined

  const stoppedError = () => new SchedulerStopped({ processId, reason: stopped ?? "not running" })

  const schedule: Scheduler["schedule"] = (message, callOptions) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (stopped !== undefined) return Effect.fail(stoppedError())
      const timeoutMs = callOptions?.timeoutMs ?? defaultTimeout
      const request: Request = {
        message,
        reply: Deferred.unsafeMake(FiberId.none),
        deadline: now + timeoutMs,
        timeoutMs,
        abandoned: false
      }
      if (!mailbox.unsafeOffer(request)) return Effect.fail(new MailboxFull({ processId, capacity }))
      Metrics.mailboxDepth.unsafeUpdate(mailbox.unsafeSize().pipe(Option.getOrElse(() => 0)), [])
      return Deferred.await(request.reply).pipe(
        Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => new SchedulerTimeout({ processId, timeoutMs }) }),
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (exit._tag === "Failure") request.abandoned = true
          })
        ),
        Metric.trackDuration(Metrics.scheduleLatency),
        Effect.withSpan("Scheduler.schedule", { attributes: { mode } })
      )
    })

  const info: Scheduler["info"] = Effect.suspend(() =>
    stopped !== undefined
      ? Effect.fail(stoppedError())
      : Effect.succeed<Info>({
          processId,
          slot: state.slot,
          hashChain: state.hashChain,
          assignmentId: state.assignmentId,
          timestamp: state.timestamp,
          address: wallet.address,
          mode,
          mailboxDepth: Math.max(0, mailbox.unsafeSize().pipe(Option.getOrElse(() => 0)))
        })
  )

  const advance = (a: Assignment.Assignment) => {
    state.slot = a.slot
    state.hashChain = a.hashChain
    state.assignmentId = a.id
    state.timestamp = a.timestamp
  }

  const timedAppend = (store: AssignmentStore["Type"], a: Assignment.Assignment, m: Assignment.Message) =>
    Metric.trackDuration(store.append(a, m), Metrics.storeLatency)

  const assign = (store: AssignmentStore["Type"], request: Request) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      if (request.abandoned || now > request.deadline) {
        // dropped before assignment: no slot is consumed (behaviour 28)
        yield* Deferred.fail(request.reply, new SchedulerTimeout({ processId, timeoutMs: request.timeoutMs }))
        return
      }
      const slot = state.slot + 1
      const assignment = yield* Assignment.build(signer, {
        processId,
        messageId: request.message.id,
        slot,
        epoch: 0,
        timestamp: state.timestamp === undefined ? now : Math.max(now, state.timestamp + 1),
        blockHeight: blockHeight(),
        hashChain:
          state.assignmentId === undefined || state.hashChain === undefined
            ? Assignment.initialHashChain(processId)
            : Assignment.nextHashChain(state.assignmentId, state.hashChain)
      })
      if (mode === "aggressive") {
        advance(assignment)
        yield* Deferred.succeed(request.reply, assignment)
        // a failed write stops the server: nothing is built on an unstored slot
        yield* timedAppend(store, assignment, request.message)
        return yield* Metric.increment(Metrics.assignments)
      }
      const written = yield* Effect.either(timedAppend(store, assignment, request.message))
      if (written._tag === "Left") {
        // the slot and chain do not advance; the signed assignment is discarded and its slot reissued
        yield* Deferred.fail(request.reply, written.left)
        return
      }
      advance(assignment)
      yield* Metric.increment(Metrics.assignments)
      if (mode === "remote_confirmation" && options.upload !== undefined) {
        yield* options
          .upload(assignment)
          .pipe(
            Effect.catchAllCause((cause) =>
              Effect.logWarning("remote confirmation upload failed", cause).pipe(
                Effect.annotateLogs({ processId, slot: assignment.slot })
              )
            )
          )
      }
      yield* Deferred.succeed(request.reply, assignment)
    })

  const onStop = (exit: Exit.Exit<unknown, unknown>) =>
    Effect.gen(function* () {
      stopped = describeExit(exit)
      const pending = yield* Queue.takeAll(mailbox)
      const error = stoppedError()
      for (const request of pending) if (request !== IdleCheck) yield* Deferred.fail(request.reply, error)
      if (exit._tag === "Failure" && !Cause.isInterruptedOnly(exit.cause)) {
        yield* Effect.logError("scheduler stopped with an error", exit.cause).pipe(Effect.annotateLogs({ processId }))
      }
    })

  const run = (started: Effect.Effect<void>) =>
    Effect.gen(function* () {
      const store = yield* AssignmentStore
      const latest = yield* store.latest(processId)
      if (Option.isSome(latest)) {
        state.slot = latest.value.slot
        state.hashChain = latest.value.hashChain
        state.assignmentId = latest.value.assignmentId
        state.timestamp = latest.value.timestamp
      }
      yield* started
      lastActivity = yield* Clock.currentTimeMillis
      if (idleTimeToLive !== undefined) {
        // a child of the server fiber: it ends with it
        yield* Effect.fork(
          Effect.forever(
            Effect.zipRight(
              Effect.sleep(idleTimeToLive),
              Effect.sync(() => mailbox.unsafeOffer(IdleCheck))
            )
          )
        )
      }
      while (true) {
        const request = yield* Queue.take(mailbox)
        if (request === IdleCheck) {
          const now = yield* Clock.currentTimeMillis
          // checked and decided in one synchronous step: a `schedule` either queued before (and the server
          // stays) or sees `stopped` and reactivates through the registry
          const idle = yield* Effect.sync(() => {
            if (now - lastActivity < idleTimeToLive! || Option.getOrElse(mailbox.unsafeSize(), () => 0) > 0)
              return false
            stopped = "passivated"
            return true
          })
          if (idle) return Passivated
          continue
        }
        // each assignment completes once started, so shutdown never cuts a write in half
        yield* Effect.uninterruptible(
          assign(store, request).pipe(
            Effect.tapErrorCause((cause) =>
              Deferred.fail(
                request.reply,
                new SchedulerStopped({ processId, reason: `failed: ${Cause.pretty(cause).split("\n")[0]}` })
              )
            )
          )
        )
        lastActivity = yield* Clock.currentTimeMillis
      }
    }).pipe(
      Effect.onExit(onStop),
      Effect.annotateLogs({ processId }),
      // a long-lived fiber: it must not become a child span of the request that happened to start it
      Effect.withSpan("Scheduler.server", { root: true })
    )

  const handle: Scheduler = {
    processId,
    address: wallet.address,
    mode,
    schedule,
    info,
    get fiber() {
      if (fiber === undefined) throw new Error("scheduler not started")
      return fiber
    }
  }

  return {
    handle,
    run: run as Server["run"],
    attach: (f) => {
      fiber = f
    }
  }
}
