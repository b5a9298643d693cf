/**
 * A registry of long-lived services of one service type, keyed by (service type, node address, id): the
 * get-or-create core that `SchedulerRegistry` is built on, generic so that other service types can share a
 * node's `NameService` without sharing anything else (HyperBEAM's "more service types" enhancement).
 *
 * What it guarantees, for any service type:
 * - `getOrStart` is atomic: concurrent callers get one handle and exactly one service starts (K1, K3). A
 *   would-be service's fiber registers itself in its first steps, which run synchronously inside the fork: only
 *   the winner goes on to `run`; a loser ends there, having run nothing.
 * - a service lives in the registry's scope, not its caller's; closing the registry interrupts all of them in
 *   parallel, and a call during or after the close fails with `RegistryClosed` and starts nothing;
 * - `events` reports `Registered`, `Activated`, `Passivated` and `Unregistered` (with its reason), like Elixir
 *   Registry listeners or syn callbacks, without ever blocking the registry;
 * - restarts after failures are bounded (`RestartPolicy`), so a service that keeps crashing cannot spin the node.
 *
 * @since 0.1.0
 */
import type { Effect, Fiber, Option, Queue, Scope, Stream } from "effect"
import type { RegistryClosed, RestartLimitExceeded } from "./errors.js"
import * as Internal from "./internal/service-registry.js"
import type { Name, NameService } from "./NameService.js"
import type { RegistryEvent } from "./Service.js"

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
 * Builds a registry in the current scope over the ambient `NameService`. Services are forked through a runtime
 * captured here, so they carry the registry's context (services, log annotations, clock) and not the calling
 * request's; closing the scope interrupts them all in parallel and waits for them.
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
export const make: <H, E, R = never>(
  options: Options
) => Effect.Effect<ServiceRegistry<H, E, R>, never, NameService | Scope.Scope | R> = Internal.make
