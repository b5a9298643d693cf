/**
 * The service registry's implementation (`ServiceRegistry.make`): the get-or-create over the `NameService`, the
 * synchronous registration, readiness, the exit observer, events and bounded restarts.
 */
import {
  Cause,
  type Clock,
  Deferred,
  Effect,
  Exit,
  Fiber,
  FiberId,
  FiberRef,
  FiberRefs,
  MetricLabel,
  Option,
  PubSub,
  Runtime,
  type Scheduler,
  type Scope,
  Stream
} from "effect"
import { RegistryClosed, RestartLimitExceeded } from "../errors.js"
import { Name, NameService } from "../NameService.js"
import { Passivated, RegistryEvent, type UnregisterReason } from "../Service.js"
import type { Entry, Options, ServiceRegistry, Starter } from "../ServiceRegistry.js"
import * as Metrics from "./metrics.js"

/**
 * A started service, as the registry keeps it and registers it with its fiber (the registration's value), so
 * that one small object per service holds all the registry knows: `starter` (its handle and hooks, kept
 * rather than copied so a service costs no closure of its own), `found` (`Effect.succeed(handle)`, made once
 * when it is ready, so a lookup hit allocates nothing), `failure` (why it stopped before it was ready),
 * `waiting` (made only when a caller has to wait for it to become ready) and `state` (whether it won its name).
 */
class Live<H, E, R> {
  found: Effect.Effect<H> | undefined = undefined
  failure: E | RegistryClosed | undefined = undefined
  waiting: Deferred.Deferred<void> | undefined = undefined
  state: "starting" | "won" | "lost" = "starting"
  constructor(
    readonly owner: object,
    readonly name: Name,
    readonly starter: Starter<H, E, R>
  ) {}
  get handle(): H {
    return this.starter.handle
  }
  /** Resumes every caller waiting for the start to end (ready or failed). */
  settle(): void {
    const waiting = this.waiting
    this.waiting = undefined
    if (waiting !== undefined) Deferred.unsafeDone(waiting, Exit.void)
  }
}

const failuresCap = 10_000

/**
 * The scheduler of the services' fibers: the registry's own, except that tasks are not given their fiber.
 * Effect's default scheduler keeps a runner per fiber it is given (about 250 bytes, for as long as the fiber
 * lives), which an idle service does not need: its wake-ups share the default runner, as before Effect 3.20.
 */
const sharedRunner = (base: Scheduler.Scheduler): Scheduler.Scheduler => ({
  shouldYield: (fiber) => base.shouldYield(fiber),
  scheduleTask: (task, priority) => base.scheduleTask(task, priority)
})

/** See `ServiceRegistry.make`. */
export const make = <H, E, R = never>(
  options: Options
): Effect.Effect<ServiceRegistry<H, E, R>, never, NameService | Scope.Scope | R> =>
  Effect.gen(function* () {
    const names = yield* NameService
    const clock: Clock.Clock = yield* Effect.clock
    // services are forked through this runtime, so they carry the registry's context, not a request's
    const captured = yield* Effect.runtime<R>()
    const runtime = Runtime.setFiberRef(
      captured,
      FiberRef.currentScheduler,
      sharedRunner(FiberRefs.getOrDefault(captured.fiberRefs, FiberRef.currentScheduler))
    )
    const runFork = Runtime.runFork(runtime)
    const fibers = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
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
    // Closing: from now on nothing starts (`closed` is checked in the same step as every fork), and every service
    // is interrupted in parallel; the close waits for them all.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Fiber.interruptAll(Array.from(fibers))
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

    /** The handle once `live` is ready, waiting for its start if needed; its start failure if it stopped first. */
    const awaitReady = (live: Live<H, E, R>): Effect.Effect<H, E | RegistryClosed> => {
      if (live.found !== undefined) return live.found
      if (live.failure !== undefined) return Effect.fail(live.failure)
      if (live.waiting === undefined) live.waiting = Deferred.unsafeMake<void>(FiberId.none)
      return Effect.flatMap(Deferred.await(live.waiting), () => awaitReady(live))
    }

    /** Marks `live` ready: waiters resume and lookups hit from now on. */
    const activation = (live: Live<H, E, R>) =>
      Effect.sync(() => {
        live.found = Effect.succeed(live.handle)
        live.settle()
        publish(() => RegistryEvent.Activated({ name: live.name }))
        activationCounter.unsafeUpdate(1)
      })

    /**
     * The exit observer of a service's fiber, made outside `start` so that it retains only `live` (and anonymous:
     * under tsx, whose `keepNames` names functions with `Object.defineProperty`, a named closure costs 256 bytes).
     */
    const observerOf =
      (live: Live<H, E, R>, fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
      (exit: Exit.Exit<unknown, unknown>): void => {
        fibers.delete(fiber)
        // a service that stops before it is ready fails every waiter
        if (live.found === undefined && live.failure === undefined) {
          const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
          live.failure = closed
            ? new RegistryClosed()
            : (Option.getOrElse(failure, () => live.starter.stopped(reasonOf(exit))) as E)
          live.settle()
        }
        if (live.state !== "won") return
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

    /**
     * A service's fiber. Its first steps, which run synchronously inside the fork, register it under its name; only
     * the winner goes on to `run`, and a loser ends there, having run nothing. So the caller learns the outcome as
     * soon as the fork returns, with no gate to open and no loser to interrupt, and a service whose start needs no
     * I/O (the memory store) is ready by then too.
     */
    const body = (live: Live<H, E, R>) =>
      Effect.withFiberRuntime<unknown, E, R>((fiber) => {
        fibers.add(fiber)
        fiber.addObserver(observerOf(live, fiber))
        live.starter.attach?.(fiber)
        return Effect.matchEffect(names.register(live.name, fiber, live), {
          onFailure: () => {
            live.state = "lost"
            return Effect.void
          },
          onSuccess: () => {
            live.state = "won"
            activeGauge.unsafeUpdate(++active)
            publish(() => RegistryEvent.Registered({ name: live.name }))
            return live.starter.run(activation(live))
          }
        })
      })

    /**
     * Starts a service under `name`: called inside `getOrStartName`'s synchronous step, after its check of `closed`
     * and its lookup, so that nothing can interrupt or interleave from the check to the registration's outcome.
     */
    const start = (
      name: Name,
      starter: () => Starter<H, E, R>
    ): Effect.Effect<H, E | RegistryClosed | RestartLimitExceeded> => {
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
      const live = new Live(owner, name, starter())
      runFork(body(live))
      switch (live.state) {
        case "won":
          return awaitReady(live)
        case "lost":
          // another caller won between our lookup and the registration: theirs is the service
          return getOrStartName(name, starter)
        default:
          // a fork always starts its fiber synchronously (`Runtime.runFork`), so this is never reached
          return Effect.dieMessage("ServiceRegistry: a service's fiber did not start synchronously")
      }
    }

    const liveOf = (value: unknown): Live<H, E, R> | undefined =>
      value instanceof Live && value.owner === owner ? (value as Live<H, E, R>) : undefined

    const lookupName = (name: Name) =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(new RegistryClosed())
        const live = liveOf(names.unsafeLookupRegistration(name)?.value)
        return live === undefined ? Effect.succeedNone : Effect.asSome(awaitReady(live))
      })

    const lookupOr = <A, E2>(node: string, id: string, orElse: (arg: A) => Effect.Effect<H, E2>, arg: A) =>
      Effect.suspend((): Effect.Effect<H, E2> => {
        const live = liveOf(names.unsafeLookupRegistration(nameOf(node, id))?.value)
        return !closed && live?.found !== undefined ? live.found : orElse(arg)
      })

    const getOrStartName = (
      name: Name,
      starter: () => Starter<H, E, R>
    ): Effect.Effect<H, E | RegistryClosed | RestartLimitExceeded> =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(new RegistryClosed())
        const live = liveOf(names.unsafeLookupRegistration(name)?.value)
        return live === undefined ? start(name, starter) : awaitReady(live)
      })

    const entries = () =>
      Effect.map(names.all(), (all) => {
        const out: Array<Entry<H>> = []
        for (const r of all) {
          const live = liveOf(r.value)
          if (live !== undefined) out.push({ name: live.name, handle: live.handle })
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
