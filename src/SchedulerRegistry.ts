/**
 * The scheduler registry: finds, or starts, the one scheduler server of a process.
 *
 * Mirrors HyperBEAM's `dev_scheduler_registry` (`find/1,2,3`, `get_wallet/0`, `get_processes/0`;
 * `scheduler-behaviour.md` §2) on the `NameService`, with its races fixed:
 * - `find(p, true)` is an atomic get-or-create: every concurrent caller gets the same scheduler and exactly
 *   one server starts (K1, K3). A would-be server is forked parked behind a gate and only passes it once its
 *   registration has won; a loser is interrupted before any side effect.
 * - registration completes before `find` returns, so an immediate `find(p)` finds it (behaviour 12, PR #660);
 * - servers live in the registry's scope, not the caller's (behaviour 17); closing the registry's Layer
 *   interrupts them all in parallel and leaves the name service without their entries; a `find` during or
 *   after the close fails with `RegistryClosed` and starts nothing;
 * - ids are normalised at the boundary (raw 32 bytes → 43 characters), and names include the wallet address
 *   (PR #1067), so two registries with different wallets never share a server (behaviour 18).
 *
 * @since 0.1.0
 */
import { Cause, Context, Deferred, Effect, Either, Exit, Fiber, FiberId, FiberSet, Layer, Option } from "effect"
import type { AssignmentStore } from "./AssignmentStore.js"
import {
  type InvalidProcessId,
  NotFound,
  RegistryClosed,
  SchedulerStopped,
  SchedulingDisabled,
  StoreError
} from "./errors.js"
import { Name, NameService } from "./NameService.js"
import { type ProcessId, parseEither } from "./ProcessId.js"
import * as Scheduler from "./Scheduler.js"
import { Wallet } from "./Wallet.js"

/**
 * The service type under which schedulers are registered, as in HyperBEAM's `{<<"scheduler@1.0">>, …}`.
 *
 * @since 0.1.0
 */
export const SERVICE_TYPE = "scheduler@1.0"

/**
 * Per-call options of `find(p, true, options)`: another wallet to sign with (the name then includes that
 * wallet's address) and any `Scheduler.Options` (mode, timeout in ms, mailbox capacity, …) for a server that
 * this call starts. They do not change a server that is already running.
 *
 * @since 0.1.0
 */
export interface FindOptions extends Scheduler.Options {
  readonly wallet?: Wallet["Type"] | undefined
}

/**
 * Every way `find` can fail:
 * `InvalidProcessId` (bad id), `NotFound` (no server and `genIfNotHosted` false), `RegistryClosed`,
 * `SchedulingDisabled` (mode `disabled`), `StoreError` (recovery read failed), `SchedulerStopped` (the new
 * server stopped before it was ready).
 *
 * @since 0.1.0
 */
export type FindError =
  | InvalidProcessId
  | NotFound
  | RegistryClosed
  | SchedulingDisabled
  | StoreError
  | SchedulerStopped

/**
 * The registry service. Ids may be a 43-character id or 32 raw bytes.
 *
 * - `find(p)`: the live scheduler of `p`, or `NotFound`; starts nothing.
 * - `find(p, genIfNotHosted, options?)`: with `true`, gets or creates the scheduler; the new server recovers
 *   its slot and chain from the store before `find` returns.
 * - `getWallet()`: the registry's default wallet (`dev_scheduler_registry:get_wallet/0`).
 * - `getProcesses()`: the ids of the live schedulers of this registry (`get_processes/0`).
 *
 * @since 0.1.0
 */
export class SchedulerRegistry extends Context.Tag("effect-scheduler-registry/SchedulerRegistry")<
  SchedulerRegistry,
  {
    readonly find: (
      processId: string | Uint8Array,
      genIfNotHosted?: boolean | undefined,
      options?: FindOptions | undefined
    ) => Effect.Effect<Scheduler.Scheduler, FindError>
    readonly getWallet: () => Effect.Effect<Wallet["Type"]>
    readonly getProcesses: () => Effect.Effect<ReadonlyArray<ProcessId>>
  }
>() {}

/**
 * Registry options: the defaults for every scheduler it starts (`Scheduler.Options`).
 *
 * @since 0.1.0
 */
export interface Options extends Scheduler.Options {}

interface Handle {
  readonly owner: object
  readonly scheduler: Scheduler.Scheduler
  readonly ready: Deferred.Deferred<void, FindError>
}

/**
 * Builds the registry in the current scope. Servers are forked into a `FiberSet` of that scope, through a
 * runtime captured here, so they carry the registry's context and not the calling request's.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}) =>
  Effect.gen(function* () {
    const names = yield* NameService
    const wallet = yield* Wallet
    const fibers = yield* FiberSet.make<void, unknown>()
    const runFork = yield* FiberSet.runtime(fibers)<AssignmentStore>()
    let closed = false
    const token = {}
    const startFailure = (processId: ProcessId, exit: Exit.Exit<unknown, unknown>): FindError => {
      if (closed) return new RegistryClosed()
      if (Exit.isFailure(exit)) {
        const failure = Cause.failureOption(exit.cause)
        if (Option.isSome(failure) && failure.value instanceof StoreError) return failure.value
      }
      return new SchedulerStopped({ processId, reason: "stopped before it was ready" })
    }
    // added after the FiberSet, so it runs before the FiberSet interrupts the servers
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
      })
    )
    const defaultPrefix = Name.prefixHash(SERVICE_TYPE, wallet.address)
    const nameOf = (processId: ProcessId, signer: Wallet["Type"]) =>
      signer === wallet
        ? new Name(SERVICE_TYPE, wallet.address, processId, defaultPrefix)
        : new Name(SERVICE_TYPE, signer.address, processId)

    const awaitReady = (handle: Handle) => Effect.as(Deferred.await(handle.ready), handle.scheduler)

    const start = (
      processId: ProcessId,
      name: Name,
      signer: Wallet["Type"],
      findOptions: FindOptions | undefined
    ): Effect.Effect<Scheduler.Scheduler, FindError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          const merged: Scheduler.Options = { ...options, ...findOptions }
          if ((merged.mode ?? "local_confirmation") === "disabled") {
            return Effect.fail(new SchedulingDisabled({ processId }))
          }
          if (closed) return Effect.fail(new RegistryClosed())
          const server = Scheduler.make(processId, signer, merged)
          const gate = Deferred.unsafeMake<void>(FiberId.none)
          const ready = Deferred.unsafeMake<void, FindError>(FiberId.none)
          const fiber = runFork(Effect.zipRight(Deferred.await(gate), server.run(Deferred.succeed(ready, undefined))))
          server.attach(fiber)
          // a server that stops before it is ready fails every waiter, and its entry is already gone
          fiber.addObserver((exit) => {
            Deferred.unsafeDone(ready, Exit.fail(startFailure(processId, exit))) // a no-op once ready
          })
          const handle: Handle = { owner: token, scheduler: server.handle, ready }
          return names.register(name, fiber, handle).pipe(
            Effect.matchEffect({
              // another caller won between our lookup and our register: drop ours (it never passed the gate)
              onFailure: () => Effect.zipRight(Fiber.interrupt(fiber), restore(find(processId, true, findOptions))),
              onSuccess: () => Effect.zipRight(Deferred.succeed(gate, undefined), restore(awaitReady(handle)))
            })
          )
        })
      )

    const find = (
      input: string | Uint8Array,
      genIfNotHosted?: boolean | undefined,
      findOptions?: FindOptions | undefined
    ): Effect.Effect<Scheduler.Scheduler, FindError> =>
      Effect.suspend(() => {
        const parsed = parseEither(input)
        if (Either.isLeft(parsed)) return Effect.fail(parsed.left)
        if (closed) return Effect.fail(new RegistryClosed())
        const processId = parsed.right
        const signer = findOptions?.wallet ?? wallet
        const name = nameOf(processId, signer)
        return Effect.flatMap(names.lookupRegistration(name), (found) => {
          if (Option.isSome(found)) return awaitReady(found.value.value as Handle)
          if (genIfNotHosted !== true) return Effect.fail(new NotFound({ processId }))
          return start(processId, name, signer, findOptions)
        })
      })

    const getProcesses = () =>
      Effect.map(names.all(), (all) => {
        const ids: Array<ProcessId> = []
        for (const r of all) {
          const handle = r.value as Partial<Handle> | undefined
          if (handle?.owner === token && handle.scheduler !== undefined) ids.push(handle.scheduler.processId)
        }
        return ids
      })

    return SchedulerRegistry.of({ find, getWallet: () => Effect.succeed(wallet), getProcesses })
  })

/**
 * The registry as a Layer. Its scope is the servers' lifetime: closing it interrupts them all in parallel.
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options = {}
): Layer.Layer<SchedulerRegistry, never, NameService | Wallet | AssignmentStore> =>
  Layer.scoped(SchedulerRegistry, make(options))

/**
 * `find` on the ambient registry. See `SchedulerRegistry`.
 *
 * @since 0.1.0
 */
export const find = (
  processId: string | Uint8Array,
  genIfNotHosted?: boolean | undefined,
  options?: FindOptions | undefined
): Effect.Effect<Scheduler.Scheduler, FindError, SchedulerRegistry> =>
  Effect.flatMap(SchedulerRegistry, (r) => r.find(processId, genIfNotHosted, options))

/**
 * The ambient registry's wallet.
 *
 * @since 0.1.0
 */
export const getWallet = (): Effect.Effect<Wallet["Type"], never, SchedulerRegistry> =>
  Effect.flatMap(SchedulerRegistry, (r) => r.getWallet())

/**
 * The ids of the ambient registry's live schedulers.
 *
 * @since 0.1.0
 */
export const getProcesses = (): Effect.Effect<ReadonlyArray<ProcessId>, never, SchedulerRegistry> =>
  Effect.flatMap(SchedulerRegistry, (r) => r.getProcesses())
