/**
 * The scheduler entity's behaviour and the hub that tracks the entities live on this runner.
 *
 * One entity instance = one process on this runner. Its per-process server (`internal/scheduler.ts`) runs in a
 * `FiberSet` of the entity's scope, so the entity's end interrupts it and waits for it (an assignment in
 * progress is uninterruptible: its store write completes first). `Unregistered` is published only after that
 * wait, so "between Registered and Unregistered" covers every write the runner made for the process.
 */
import { Entity, Sharding } from "@effect/cluster"
import {
  Cause,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  FiberId,
  FiberSet,
  Layer,
  Metric,
  Option,
  PubSub,
  type Queue,
  type Scope,
  Stream
} from "effect"
import type { Message } from "../../Assignment.js"
import type { AssignmentStore } from "../../AssignmentStore.js"
import { type ScheduleError, SchedulerStopped, StoreError } from "../../errors.js"
import * as Metrics from "../../internal/metrics.js"
import { Name } from "../../NameService.js"
import { type ProcessId, parseEither } from "../../ProcessId.js"
import * as Scheduler from "../../Scheduler.js"
import { SERVICE_TYPE } from "../../SchedulerRegistry.js"
import { RegistryEvent, type UnregisterReason } from "../../ServiceRegistry.js"
import { Wallet } from "../../Wallet.js"
import type { SchedulerEntity } from "./protocol.js"

export interface Hosted {
  readonly processId: ProcessId
  readonly startedAt: number
  readonly fiber: () => Option.Option<Fiber.RuntimeFiber<void, unknown>>
}

export interface Hub {
  readonly get: (processId: string) => Option.Option<Hosted>
  readonly entries: () => ReadonlyArray<Hosted>
  readonly events: Stream.Stream<RegistryEvent>
  readonly subscribe: Effect.Effect<Queue.Dequeue<RegistryEvent>, never, Scope.Scope>
}

export interface Options extends Scheduler.Options {
  readonly eventsCapacity?: number | undefined
}

interface Running {
  readonly server: Scheduler.Server
  readonly fiber: Fiber.RuntimeFiber<unknown, unknown>
  /** Settled when the server has recovered (success) or stopped before that (failure). */
  readonly ready: Deferred.Deferred<void, StoreError | SchedulerStopped>
}

const tagged = <T, I, O>(metric: Metric.Metric<T, I, O>) => Metric.tagged(metric, "service_type", SERVICE_TYPE)
const activeGauge = tagged(Metrics.activeServices)
const activationCounter = tagged(Metrics.activations)
const passivationCounter = tagged(Metrics.passivations)

/** The store is ahead of the server: its next slot was written by another writer (or by an unknown outcome). */
const isStale = (error: ScheduleError): boolean =>
  (error._tag === "StoreConflict" && error.reason === "slot already written") || error._tag === "SchedulerStopped"

const firstLine = (cause: Cause.Cause<unknown>) => Cause.pretty(cause).split("\n")[0] ?? "unknown"

export const layer = <I>(
  tag: Context.Tag<I, Hub>,
  entity: typeof SchedulerEntity,
  options: Options
): Layer.Layer<I, never, Sharding.Sharding | Wallet | AssignmentStore> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const { eventsCapacity, idleTimeToLiveMs, ...serverOptions } = options
      const pubsub = yield* PubSub.sliding<RegistryEvent>(eventsCapacity ?? 1_024)
      const live = new Map<string, Hosted>()
      const publish = (event: RegistryEvent) => Effect.runSync(PubSub.publish(pubsub, event))
      const sharding = yield* Sharding.Sharding
      const wallet = yield* Wallet

      const behaviour = Effect.gen(function* () {
        const address = yield* Entity.CurrentAddress
        const clock = yield* Effect.clock
        const parsed = parseEither(address.entityId)
        if (Either.isLeft(parsed)) {
          const invalid = new SchedulerStopped({
            processId: address.entityId,
            reason: `the entity id is not a process id: ${parsed.left.reason}`
          })
          return entity.of({ Schedule: () => Effect.fail(invalid), Info: () => Effect.fail(invalid) })
        }
        const processId = parsed.right
        const name = new Name(SERVICE_TYPE, wallet.address, processId)
        let current: Running | undefined
        let activated = false
        const hosted: Hosted = {
          processId,
          startedAt: clock.unsafeCurrentTimeMillis(),
          fiber: () =>
            current === undefined
              ? Option.none()
              : Option.some(current.fiber as unknown as Fiber.RuntimeFiber<void, unknown>)
        }

        // added before the FiberSet, so it runs after the FiberSet has interrupted and awaited the server
        yield* Effect.addFinalizer(() =>
          Effect.gen(function* () {
            if (live.get(processId) === hosted) live.delete(processId)
            activeGauge.unsafeUpdate(live.size, [])
            const reason: UnregisterReason = (yield* sharding.isShutdown)
              ? "registry_closed"
              : sharding.hasShardId(address.shardId)
                ? "passivated"
                : "interrupted"
            if (reason === "passivated") {
              publish(RegistryEvent.Passivated({ name }))
              passivationCounter.unsafeUpdate(1, [])
            }
            publish(RegistryEvent.Unregistered({ name, reason, cause: Option.none() }))
          })
        )
        const fibers = yield* FiberSet.make<unknown, unknown>()
        // captured here: servers carry the entity layer's context, never a request's
        const runFork = yield* FiberSet.runtime(fibers)<AssignmentStore>()
        const lock = yield* Effect.makeSemaphore(1)

        live.set(processId, hosted)
        activeGauge.unsafeUpdate(live.size, [])
        publish(RegistryEvent.Registered({ name }))

        const start = (): Running => {
          const server = Scheduler.make(processId, wallet, serverOptions)
          const ready = Deferred.unsafeMake<void, StoreError | SchedulerStopped>(FiberId.none)
          const onReady = Effect.sync(() => {
            Deferred.unsafeDone(ready, Exit.void)
            if (!activated) {
              activated = true
              publish(RegistryEvent.Activated({ name }))
            }
            activationCounter.unsafeUpdate(1, [])
          })
          const fiber = runFork(
            server.run(onReady).pipe(
              Effect.onExit((exit) =>
                Effect.sync(() => {
                  // a no-op once ready: waiters of a server that never recovered get why
                  const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
                  Deferred.unsafeDone(
                    ready,
                    Exit.fail(
                      Option.isSome(failure)
                        ? new StoreError({ operation: "latest", reason: failure.value.message })
                        : new SchedulerStopped({
                            processId,
                            reason: Exit.isFailure(exit) ? firstLine(exit.cause) : "stopped before it was ready"
                          })
                    )
                  )
                })
              )
            )
          )
          server.attach(fiber as never)
          return { server, fiber, ready }
        }

        /** The running server, started (or restarted, if `stale` is it or it stopped) under the lock. */
        const running = (stale?: Running): Effect.Effect<Running> =>
          Effect.suspend(() => {
            const now = current
            if (now !== undefined && now !== stale && now.fiber.unsafePoll() === null) return Effect.succeed(now)
            return lock.withPermits(1)(
              Effect.suspend(() => {
                const old = current
                if (old !== undefined && old !== stale && old.fiber.unsafePoll() === null) return Effect.succeed(old)
                const replace =
                  old === undefined
                    ? Effect.void
                    : Effect.zipRight(
                        Effect.logWarning("restarting the scheduler from the store").pipe(
                          Effect.annotateLogs({ processId })
                        ),
                        Fiber.interrupt(old.fiber)
                      )
                return Effect.zipRight(
                  replace,
                  Effect.sync(() => {
                    current = start()
                    return current
                  })
                )
              })
            )
          })

        const readyServer = (stale?: Running) =>
          Effect.flatMap(running(stale), (r) => Effect.as(Deferred.await(r.ready), r))

        const schedule = (message: Message, timeoutMs: number | undefined) =>
          Effect.flatMap(readyServer(), (first) =>
            first.server.handle
              .schedule(message, { timeoutMs })
              .pipe(
                Effect.catchIf(isStale, () =>
                  Effect.flatMap(readyServer(first), (fresh) => fresh.server.handle.schedule(message, { timeoutMs }))
                )
              )
          )

        return entity.of({
          Schedule: (request) => schedule(request.payload.message, request.payload.timeoutMs),
          Info: () =>
            Effect.flatMap(readyServer(), (r) =>
              Effect.catchTag(r.server.handle.info, "SchedulerStopped", () =>
                Effect.flatMap(readyServer(r), (fresh) => fresh.server.handle.info)
              )
            )
        })
      })

      yield* entity
        .toLayer(behaviour, {
          concurrency: "unbounded",
          // the entity's own limit on requests in progress: the server's mailbox capacity, so both agree
          mailboxCapacity: serverOptions.mailboxCapacity ?? Scheduler.DEFAULT_MAILBOX_CAPACITY,
          ...(idleTimeToLiveMs === undefined ? {} : { maxIdleTime: Duration.millis(idleTimeToLiveMs) })
        })
        .pipe(Layer.build)

      const hub: Hub = {
        get: (processId) => Option.fromNullable(live.get(processId)),
        entries: () => Array.from(live.values()),
        events: Stream.fromPubSub(pubsub),
        subscribe: PubSub.subscribe(pubsub)
      }
      return Context.make(tag, hub)
    })
  )
