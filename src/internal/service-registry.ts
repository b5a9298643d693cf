/**
 * The service registry's implementation (`ServiceRegistry.make`): the get-or-create over the `NameService`, the
 * start gate, readiness, the exit observer, events and bounded restarts.
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
  type Scope,
  Stream
} from "effect"
import { RegistryClosed, RestartLimitExceeded } from "../errors.js"
import { Name, NameService } from "../NameService.js"
import { Passivated, RegistryEvent, type UnregisterReason } from "../Service.js"
import type { Entry, Options, ServiceRegistry, Starter } from "../ServiceRegistry.js"
import * as Metrics from "./metrics.js"

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

/** See `ServiceRegistry.make`. */
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
