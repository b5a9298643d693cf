/**
 * A registry of long-lived services of one service type, keyed by (service type, node address, id): the
 * get-or-create core that `SchedulerRegistry` is built on, generic so that other service types can share a
 * node's `NameService` without sharing anything else (HyperBEAM's "more service types" enhancement).
 *
 * What it guarantees, for any service type:
 * - `getOrStart` is atomic: concurrent callers get one handle and exactly one service starts (K1, K3). A
 *   would-be service is forked parked behind a gate and passes it only once its registration has won.
 * - a service lives in the registry's scope, not its caller's; closing the registry interrupts all of them in
 *   parallel, and a call during or after the close fails with `RegistryClosed` and starts nothing;
 * - `events` reports `Registered`, `Activated`, `Passivated` and `Unregistered` (with its reason), like Elixir
 *   Registry listeners or syn callbacks, without ever blocking the registry;
 * - restarts after failures are bounded (`RestartPolicy`), so a service that keeps crashing cannot spin the node.
 *
 * @since 0.1.0
 */
import {
  Cause,
  type Clock,
  Deferred,
  Effect,
  Exit,
  Fiber,
  FiberId,
  FiberSet,
  MetricLabel,
  Option,
  PubSub,
  type Queue,
  type Scope,
  Stream
} from "effect"
import { RegistryClosed, RestartLimitExceeded } from "./errors.js"
import * as Metrics from "./internal/metrics.js"
import { Name, NameService } from "./NameService.js"
import { Passivated, RegistryEvent, type UnregisterReason } from "./Service.js"

/**
 * Why a service left, the registry's events and the `Passivated` marker, re-exported from `Service`, where a
 * service (such as a scheduler) finds them without knowing its registry.
 *
 * @since 0.1.0
 * @category models
 */
export { Passivated, RegistryEvent, type UnregisterReason } from "./Service.js"

/**
 * A service about to start: its handle, and the fiber body `run(ready)`, which must run `ready` once the
 * service can take requests and return `Passivated` if it stops because it was idle. `stopped(reason)` is the
 * error waiters get if the service stops before it was ready without a typed failure of its own.
 *
 * @since 0.1.0
 * @category models
 */
export interface Starter<H, E, R> {
  readonly handle: H
  readonly run: (ready: Effect.Effect<void>) => Effect.Effect<unknown, E, R>
  readonly attach?: ((fiber: Fiber.RuntimeFiber<unknown, unknown>) => void) | undefined
  readonly stopped: (reason: string) => E
}

/**
 * How many failures (not interruptions or passivations) a service may have within `windowMs` before
 * `getOrStart` refuses to start it again with `RestartLimitExceeded`, until the oldest failure leaves the
 * window. Defaults: 5 failures in 60,000 ms.
 *
 * @since 0.1.0
 * @category options
 */
export interface RestartPolicy {
  readonly maxFailures?: number | undefined
  readonly windowMs?: number | undefined
}

/**
 * Options: `serviceType`; `restartPolicy`; `eventsCapacity`, the events buffer per subscriber [1,024 events].
 * A subscriber that falls behind by more than `eventsCapacity` events loses the oldest ones (a sliding
 * buffer): publishing never waits, so a slow subscriber never blocks the registry.
 *
 * @since 0.1.0
 * @category options
 */
export interface Options {
  readonly serviceType: string
  readonly restartPolicy?: RestartPolicy | undefined
  readonly eventsCapacity?: number | undefined
}

/**
 * A live service: its name and handle.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry<H> {
  readonly name: Name
  readonly handle: H
}

/**
 * The registry of one service type.
 *
 * - `lookup(node, id)`: the live service's handle, waiting for it to finish starting; `None` if there is none.
 *   Fails with `RegistryClosed` after close, or with the start failure of a service that is still starting.
 * - `getOrStart(node, id, starter)`: the live service, or one started from `starter()` (called only by the
 *   caller that wins the name). Fails with `RegistryClosed`, `RestartLimitExceeded`, or the start's error `E`.
 * - `lookupOr(node, id, orElse, arg)`: the handle of a live service that has finished starting, read in one
 *   step with no waiting and no allocation beyond the name; otherwise (absent, still starting, or the registry
 *   closed) whatever `orElse(arg)` gives. The hot path of `find`.
 * - `entries()`: this registry's live services. `events`: a `Stream` of `RegistryEvent` from when it is run;
 *   `subscribe`: a scoped queue of the events from the moment it is subscribed (for a deterministic start).
 *
 * @since 0.1.0
 * @category models
 */
export interface ServiceRegistry<H, E, R> {
  readonly serviceType: string
  readonly lookup: (node: string, id: string) => Effect.Effect<Option.Option<H>, E | RegistryClosed>
  readonly getOrStart: (
    node: string,
    id: string,
    starter: () => Starter<H, E, R>
  ) => Effect.Effect<H, E | RegistryClosed | RestartLimitExceeded>
  readonly lookupOr: <A, E2>(
    node: string,
    id: string,
    orElse: (arg: A) => Effect.Effect<H, E2>,
    arg: A
  ) => Effect.Effect<H, E2>
  readonly entries: () => Effect.Effect<ReadonlyArray<Entry<H>>>
  readonly events: Stream.Stream<RegistryEvent>
  readonly subscribe: Effect.Effect<Queue.Dequeue<RegistryEvent>, never, Scope.Scope>
  readonly isClosed: () => boolean
}

/**
 * What the registry registers with each service's fiber. `ready` is the start's outcome while it is pending
 * (dropped once the service is ready); `found` is `Effect.succeed(handle)`, made once when it is ready, so a
 * lookup hit allocates nothing.
 */
interface Slot<H, E> {
  readonly owner: object
  readonly handle: H
  ready: Deferred.Deferred<void, E | RegistryClosed> | undefined
  found: Effect.Effect<H> | undefined
}

/** A started service as the registry keeps it: its name, slot, start failure and whether it won the name. */
interface Live<H, E> {
  readonly name: Name
  readonly slot: Slot<H, E>
  readonly stopped: (reason: string) => E
  won: boolean
}

const failuresCap = 10_000

/**
 * Builds a registry in the current scope over the ambient `NameService`. Services are forked into a
 * `FiberSet` of that scope through a runtime captured here, so they carry the registry's context (services,
 * log annotations, clock) and not the calling request's.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NameService, ServiceRegistry } from "effect-scheduler-registry"
 *
 * class Stopped {
 *   readonly _tag = "Stopped"
 *   constructor(readonly reason: string) {}
 * }
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* ServiceRegistry.make<string, Stopped>({ serviceType: "echo@1.0" })
 *   // get-or-create: the starter runs only for the caller that wins the name
 *   return yield* registry.getOrStart("node-1", "echo-1", () => ({
 *     handle: "echo-1",
 *     run: (ready) => Effect.zipRight(ready, Effect.never),
 *     stopped: (reason) => new Stopped(reason)
 *   }))
 * }).pipe(Effect.scoped, Effect.provide(NameService.layer))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <H, E, R = never>(
  options: Options
): Effect.Effect<ServiceRegistry<H, E, R>, never, NameService | Scope.Scope | R> =>
  Effect.gen(function* () {
    const names = yield* NameService
    const clock: Clock.Clock = yield* Effect.clock
    const fibers = yield* FiberSet.make<unknown, unknown>()
    const runFork = yield* FiberSet.runtime(fibers)<R>()
    const pubsub = yield* PubSub.sliding<RegistryEvent>(options.eventsCapacity ?? 1_024)
    const maxFailures = options.restartPolicy?.maxFailures ?? 5
    const windowMs = options.restartPolicy?.windowMs ?? 60_000
    const owner = {}
    // one label array for every update: metrics cache their hook by the identity of the extra tags
    const labels = [MetricLabel.make("service_type", options.serviceType)]
    const activeGauge = { unsafeUpdate: (n: number) => Metrics.activeServices.unsafeUpdate(n, labels) }
    const activationCounter = { unsafeUpdate: (n: number) => Metrics.activations.unsafeUpdate(n, labels) }
    const passivationCounter = { unsafeUpdate: (n: number) => Metrics.passivations.unsafeUpdate(n, labels) }
    const failureCounter = { unsafeUpdate: (n: number) => Metrics.failures.unsafeUpdate(n, labels) }
    let subscribers = 0
    let active = 0
    const prefixes = new Map<string, number>()
    const failures = new Map<string, Array<number>>()
    let closed = false
    // added after the FiberSet, so it runs before the FiberSet interrupts the services
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
      })
    )

    // `publish` applies the sliding strategy (`unsafeOffer` would drop the newest event instead); it never waits
    // events are made and published only while someone listens
    const publish = (event: () => RegistryEvent) => {
      if (subscribers > 0) Effect.runSync(PubSub.publish(pubsub, event()))
    }
    const counted = <A, E2, R2>(effect: Effect.Effect<A, E2, R2>) =>
      Effect.zipRight(
        Effect.acquireRelease(
          Effect.sync(() => subscribers++),
          () => Effect.sync(() => subscribers--)
        ),
        effect
      )

    const nameOf = (node: string, id: string) => {
      let prefix = prefixes.get(node)
      if (prefix === undefined) {
        prefix = Name.prefixHash(options.serviceType, node)
        if (prefixes.size < 64) prefixes.set(node, prefix)
      }
      return new Name(options.serviceType, node, id, prefix)
    }

    const reasonOf = (exit: Exit.Exit<unknown, unknown>): UnregisterReason => {
      if (Exit.isSuccess(exit)) return exit.value === Passivated ? "passivated" : "exited"
      if (!Cause.isInterruptedOnly(exit.cause)) return "failed"
      return closed ? "registry_closed" : "interrupted"
    }

    /** Failure times within the window, pruned; the list is dropped once empty. */
    const recentFailures = (key: string, now: number): Array<number> => {
      const known = failures.get(key)
      if (known === undefined) return []
      const times = known.filter((t) => t > now - windowMs)
      if (times.length === 0) failures.delete(key)
      else failures.set(key, times)
      return times
    }

    const recordFailure = (key: string) => {
      const times = recentFailures(key, clock.unsafeCurrentTimeMillis())
      times.push(clock.unsafeCurrentTimeMillis())
      failures.set(key, times)
      if (failures.size > failuresCap) failures.delete(failures.keys().next().value as string)
    }

    const awaitReady = (slot: Slot<H, E>): Effect.Effect<H, E | RegistryClosed> =>
      slot.found ??
      (slot.ready === undefined ? Effect.succeed(slot.handle) : Effect.as(Deferred.await(slot.ready), slot.handle))

    /** Marks `live` ready: waiters resume and lookups hit from now on. */
    const activation = (live: Live<H, E>) =>
      Effect.sync(() => {
        const slot = live.slot
        slot.found = Effect.succeed(slot.handle)
        const ready = slot.ready
        slot.ready = undefined
        if (ready !== undefined) Deferred.unsafeDone(ready, Exit.void)
        publish(() => RegistryEvent.Activated({ name: live.name }))
        activationCounter.unsafeUpdate(1)
      })

    /** The exit observer of a service's fiber; made in its own scope so that it retains only `live`. */
    const observer =
      (live: Live<H, E>) =>
      (exit: Exit.Exit<unknown, unknown>): void => {
        // a service that stops before it is ready fails every waiter
        const ready = live.slot.ready
        if (ready !== undefined) {
          live.slot.ready = undefined
          const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
          Deferred.unsafeDone(
            ready,
            Exit.fail(
              closed ? new RegistryClosed() : (Option.getOrElse(failure, () => live.stopped(reasonOf(exit))) as E)
            )
          )
        }
        if (!live.won) return
        const name = live.name
        const reason = reasonOf(exit)
        activeGauge.unsafeUpdate(--active)
        if (reason === "failed") {
          recordFailure(name.toString())
          failureCounter.unsafeUpdate(1)
        }
        if (reason === "passivated") {
          publish(() => RegistryEvent.Passivated({ name }))
          passivationCounter.unsafeUpdate(1)
        }
        publish(() =>
          RegistryEvent.Unregistered({
            name,
            reason,
            cause: reason === "failed" && Exit.isFailure(exit) ? Option.some(exit.cause) : Option.none()
          })
        )
      }

    const start = (
      name: Name,
      starter: () => Starter<H, E, R>
    ): Effect.Effect<H, E | RegistryClosed | RestartLimitExceeded> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          if (closed) return Effect.fail(new RegistryClosed())
          const now = clock.unsafeCurrentTimeMillis()
          const recent = failures.size === 0 ? [] : recentFailures(name.toString(), now)
          if (recent.length >= maxFailures) {
            return Effect.fail(
              new RestartLimitExceeded({
                name: name.toString(),
                failures: recent.length,
                windowMs,
                retryAfterMs: Math.max(0, recent[0]! + windowMs - now)
              })
            )
          }
          const service = starter()
          const gate = Deferred.unsafeMake<void>(FiberId.none)
          const ready = Deferred.unsafeMake<void, E | RegistryClosed>(FiberId.none)
          const live: Live<H, E> = {
            name,
            slot: { owner, handle: service.handle, ready, found: undefined },
            stopped: service.stopped,
            won: false
          }
          const slot = live.slot
          const fiber = runFork(Effect.zipRight(Deferred.await(gate), service.run(activation(live))))
          service.attach?.(fiber)
          fiber.addObserver(observer(live))
          return names.register(name, fiber, slot).pipe(
            Effect.matchEffect({
              // another caller won between our lookup and our register: drop ours (it never passed the gate)
              onFailure: () => Effect.zipRight(Fiber.interrupt(fiber), restore(getOrStartName(name, starter))),
              onSuccess: () =>
                Effect.suspend(() => {
                  live.won = true
                  activeGauge.unsafeUpdate(++active)
                  publish(() => RegistryEvent.Registered({ name }))
                  return Effect.zipRight(Deferred.succeed(gate, undefined), restore(awaitReady(slot)))
                })
            })
          )
        })
      )

    const lookupName = (name: Name) =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(new RegistryClosed())
        return Effect.flatMap(names.lookupRegistration(name), (found) => {
          const slot = found._tag === "Some" ? (found.value.value as Slot<H, E>) : undefined
          return slot?.owner === owner ? Effect.asSome(awaitReady(slot)) : Effect.succeedNone
        })
      })

    const lookupOr = <A, E2>(node: string, id: string, orElse: (arg: A) => Effect.Effect<H, E2>, arg: A) =>
      Effect.suspend((): Effect.Effect<H, E2> => {
        const slot = names.unsafeLookupRegistration(nameOf(node, id))?.value as Slot<H, E> | undefined
        return !closed && slot?.owner === owner && slot.found !== undefined ? slot.found : orElse(arg)
      })

    const getOrStartName = (name: Name, starter: () => Starter<H, E, R>) =>
      Effect.flatMap(lookupName(name), (found) =>
        found._tag === "Some" ? Effect.succeed(found.value) : start(name, starter)
      )

    const entries = () =>
      Effect.map(names.all(), (all) => {
        const out: Array<Entry<H>> = []
        for (const r of all) {
          const slot = r.value as Partial<Slot<H, E>> | undefined
          if (slot?.owner === owner && r.name instanceof Name) out.push({ name: r.name, handle: slot.handle as H })
        }
        return out
      })

    return {
      serviceType: options.serviceType,
      lookup: (node, id) => lookupName(nameOf(node, id)),
      getOrStart: (node, id, starter) => getOrStartName(nameOf(node, id), starter),
      lookupOr,
      entries,
      events: Stream.unwrapScoped(counted(Effect.succeed(Stream.fromPubSub(pubsub)))),
      subscribe: counted(PubSub.subscribe(pubsub)),
      isClosed: () => closed
    }
  })
