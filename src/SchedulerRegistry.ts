/**
 * The scheduler registry: finds, or starts, the one scheduler server of a process.
 *
 * Mirrors HyperBEAM's `dev_scheduler_registry` (`find/1,2,3`, `get_wallet/0`, `get_processes/0`;
 * `docs/behaviours.md` §2) on the generic `ServiceRegistry` over the `NameService`, with its races fixed:
 * - `find(p, true)` is an atomic get-or-create: every concurrent caller gets the same scheduler and exactly
 *   one server starts (K1, K3);
 * - registration completes before `find` returns, so an immediate `find(p)` finds it (behaviour 12, PR #660);
 * - servers live in the registry's scope, not the caller's (behaviour 17); closing the registry's Layer
 *   interrupts them all in parallel; a `find` during or after the close fails with `RegistryClosed`;
 * - ids are normalised at the boundary (raw 32 bytes → 43 characters), and names include the wallet address
 *   (PR #1067), so two registries with different wallets never share a server (behaviour 18).
 *
 * Beyond the seed: several wallets per node (a process is hosted under the identity its `Scheduler` tag
 * names), idle passivation with transparent reactivation, bounded restarts, and an `events` stream.
 *
 * Size: about 433 lines, of which about 236 are code; the rest is the docstrings and `@example`s every
 * export carries. The code alone stays under 300 lines, so the module is kept whole.
 *
 * @since 0.1.0
 */
import {
  Config,
  type ConfigError,
  Context,
  Effect,
  Either,
  type Fiber,
  Layer,
  Option,
  type Queue,
  type Scope,
  type Stream
} from "effect"
import type { Assignment, Message } from "./Assignment.js"
import { AssignmentStore } from "./AssignmentStore.js"
import {
  type FindError,
  type HostError,
  NotFound,
  SchedulerStopped,
  SchedulingDisabled,
  type StoreError,
  type SubmitError,
  UploadPending
} from "./errors.js"
import { admit } from "./internal/admit.js"
import * as Hosting from "./internal/hosting.js"
import { isTracing } from "./internal/tracer.js"
import type { NameService } from "./NameService.js"
import type { ProcessId } from "./ProcessId.js"
import * as Scheduler from "./Scheduler.js"
import * as ServiceRegistry from "./ServiceRegistry.js"
import { Wallet } from "./Wallet.js"

/**
 * Every way `find` can fail (defined in `Errors`).
 *
 * @since 0.1.0
 * @category errors
 */
export type { FindError } from "./errors.js"

/**
 * The service type under which schedulers are registered, as in HyperBEAM's `{<<"scheduler@1.0">>, …}`.
 *
 * @since 0.1.0
 * @category constants
 */
export const SERVICE_TYPE = "scheduler@1.0"

/**
 * Per-call options of `find(p, true, options)`: the wallet to sign with (one of the registry's identities or
 * another; the name includes its address) and any `Scheduler.Options` (mode, timeout in ms, mailbox
 * capacity, …) for a server this call starts. They do not change a server that is already running.
 *
 * @since 0.1.0
 * @category options
 */
export interface FindOptions extends Scheduler.Options {
  readonly wallet?: Wallet["Type"] | undefined
}

/**
 * Registry options: the defaults of every scheduler it starts (`Scheduler.Options`, including
 * `idleTimeToLiveMs`, off by default for the library), plus:
 * - `identities`: further wallets the node holds besides the `Wallet` service (HyperBEAM's several identities);
 * - `restartPolicy`: bounded restarts after failures [5 in 60,000 ms];
 * - `eventsCapacity`: the `events` buffer per subscriber [1,024].
 * - `schedulerOf`: for a process this node does not hold, the address its `Scheduler` tag names, if known (the
 *   node looks it up on the Arweave network); `host` then fails with `HostedElsewhere` instead of `NotFound`.
 *
 * @since 0.1.0
 * @category options
 */
export interface Options extends Scheduler.Options {
  readonly identities?: ReadonlyArray<Wallet["Type"]> | undefined
  readonly schedulerOf?: ((processId: ProcessId) => Effect.Effect<Option.Option<string>>) | undefined
  readonly restartPolicy?: ServiceRegistry.RestartPolicy | undefined
  readonly eventsCapacity?: number | undefined
}

/**
 * The registry service. Ids may be a 43-character id or 32 raw bytes.
 *
 * - `find(p)`: the live scheduler of `p` under any of the node's identities, or `NotFound`; starts nothing.
 * - `find(p, genIfNotHosted, options?)`: with `true`, gets or creates the scheduler (under `options.wallet`, else
 *   the default wallet); the new server recovers its slot and chain from the store before `find` returns.
 *   A handle whose server passivated reactivates it on its next `schedule`.
 * - `getWallet()`: the default wallet (`get_wallet/0`); `walletFor(address)`: the identity with that address.
 * - `getWallets()`: every identity the node holds, the default first.
 * - `getProcesses()`: ids of the live schedulers (`get_processes/0`); `listProcesses()`: every process the
 *   store knows, live or not.
 * - `host(p)`: the scheduler that hosts `p` on this node, started if needed: a live one, else the one of a
 *   process the store holds (slot 0 stored), under the identity its `Scheduler` tag names (reactivating a
 *   passivated server). Fails with `NotFound` for a process this node does not hold, or `HostedElsewhere` when
 *   `Options.schedulerOf` says another scheduler unit's address schedules it (the node then redirects).
 * - `spawn(process, scheduler)`: creates a process whose `Scheduler` tag is `scheduler`: the identity with that
 *   address starts its scheduler and assigns the process slot 0. `HostedElsewhere` if no identity of this node
 *   has that address. Idempotent: the same process item again gives its stored slot-0 assignment.
 * - `schedule(p, message)`: `host(p)`, then the message's assignment. Idempotent: a message the schedule
 *   already holds (a client's retry) gives its stored assignment and takes no slot (in `remote_confirmation`
 *   with an `upload`, once the bundler acknowledged its items, else `UploadPending` at the deadline); a different
 *   message with the same id fails with `StoreConflict`. Duplicates are detected once, where they are written (the
 *   store).
 * - `events`: `Registered`, `Activated`, `Passivated` and `Unregistered` events (`ServiceRegistry.RegistryEvent`);
 *   `subscribe`: the same as a scoped queue, from the moment of subscription. A subscriber that falls more than
 *   `eventsCapacity` events behind loses the oldest; the registry never waits for it.
 *
 * @since 0.1.0
 * @category models
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
    readonly walletFor: (address: string) => Effect.Effect<Option.Option<Wallet["Type"]>>
    readonly getWallets: () => Effect.Effect<ReadonlyArray<Wallet["Type"]>>
    readonly getProcesses: () => Effect.Effect<ReadonlyArray<ProcessId>>
    readonly listProcesses: () => Effect.Effect<ReadonlyArray<ProcessId>, StoreError>
    readonly host: (processId: string | Uint8Array) => Effect.Effect<Scheduler.Scheduler, HostError>
    readonly spawn: (process: Message, scheduler: string) => Effect.Effect<Assignment, SubmitError>
    readonly schedule: (processId: string | Uint8Array, message: Message) => Effect.Effect<Assignment, SubmitError>
    readonly events: Stream.Stream<ServiceRegistry.RegistryEvent>
    readonly subscribe: Effect.Effect<Queue.Dequeue<ServiceRegistry.RegistryEvent>, never, Scope.Scope>
  }
>() {}

/** The registry's `find`, as a hosted handle calls it to reactivate a passivated server. */
type Find = (
  processId: string | Uint8Array,
  genIfNotHosted?: boolean | undefined,
  options?: FindOptions | undefined
) => Effect.Effect<Scheduler.Scheduler, FindError>

/**
 * The handle `find` returns: the server's handle, except that a `schedule` to a server that passivated
 * reactivates it (recovered from the store, through `find(p, true)`) and retries there. It is also the server's
 * `ServiceRegistry.Starter` (its `run`, `attach` and `stopped` are methods), so that a scheduler costs the
 * registry this one small object and no closure: an idle scheduler's memory is what bounds how many a node holds.
 */
class Hosted implements Scheduler.Scheduler, ServiceRegistry.Starter<Scheduler.Scheduler, FindError, AssignmentStore> {
  constructor(
    private readonly server: Scheduler.Server,
    private readonly signer: Wallet["Type"],
    private readonly findOptions: FindOptions | undefined,
    private readonly find: Find
  ) {}
  get handle(): Scheduler.Scheduler {
    return this
  }
  get processId(): ProcessId {
    return this.server.handle.processId
  }
  get address(): string {
    return this.server.handle.address
  }
  get mode(): Scheduler.Mode {
    return this.server.handle.mode
  }
  get info(): Scheduler.Scheduler["info"] {
    return this.server.handle.info
  }
  get fiber(): Scheduler.Scheduler["fiber"] {
    return this.server.handle.fiber
  }
  /**
   * The server loop. Only the recovery reads (`claim`, `latest`: `StoreError`) can fail before the server is
   * ready, which is when a failure reaches `find`'s callers; a later one (a conflict in aggressive mode, a fenced
   * write) stops the server and is reported in its `Unregistered` event.
   */
  run(ready: Effect.Effect<void>): Effect.Effect<unknown, FindError, AssignmentStore> {
    return this.server.run(ready) as Effect.Effect<unknown, StoreError, AssignmentStore>
  }
  attach(fiber: Fiber.RuntimeFiber<unknown, unknown>): void {
    this.server.attach(fiber as Fiber.RuntimeFiber<void, unknown>)
  }
  stopped(reason: string): FindError {
    return new SchedulerStopped({ processId: this.processId, reason: `${reason} before it was ready` })
  }
  schedule(
    message: Parameters<Scheduler.Scheduler["schedule"]>[0],
    callOptions?: Parameters<Scheduler.Scheduler["schedule"]>[1]
  ): ReturnType<Scheduler.Scheduler["schedule"]> {
    return this.server.handle.schedule(message, callOptions).pipe(
      Effect.catchIf(
        (e): e is SchedulerStopped => e._tag === "SchedulerStopped" && e.reason === "passivated",
        () =>
          Effect.flatMap(
            Effect.mapError(this.find(this.processId, true, { ...this.findOptions, wallet: this.signer }), (e) =>
              e._tag === "StoreError" ? e : new SchedulerStopped({ processId: this.processId, reason: e.message })
            ),
            (s) => s.schedule(message, callOptions)
          )
      )
    )
  }
}

/**
 * Builds the registry in the current scope: its scope is the servers' lifetime.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { AssignmentStore, NameService, SchedulerRegistry, Wallet } from "effect-scheduler-registry"
 *
 * const program = Effect.gen(function* () {
 *   const registry = yield* SchedulerRegistry.make({ idleTimeToLiveMs: 300_000 })
 *   const scheduler = yield* registry.find("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true)
 *   return yield* scheduler.info
 * }).pipe(
 *   Effect.scoped, // closing the scope interrupts every scheduler
 *   Effect.provide(
 *     Layer.mergeAll(NameService.layer, Wallet.layerFile("./data/wallet.json"), AssignmentStore.layerMemory)
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function* () {
    const wallet = yield* Wallet
    const store = yield* AssignmentStore
    const services = yield* ServiceRegistry.make<Scheduler.Scheduler, FindError, AssignmentStore>({
      serviceType: SERVICE_TYPE,
      restartPolicy: options.restartPolicy,
      eventsCapacity: options.eventsCapacity
    })
    const identities = [wallet, ...(options.identities ?? []).filter((w) => w.address !== wallet.address)]

    const starter =
      (processId: ProcessId, signer: Wallet["Type"], findOptions: FindOptions | undefined) =>
      (): ServiceRegistry.Starter<Scheduler.Scheduler, FindError, AssignmentStore> =>
        new Hosted(
          Scheduler.make(processId, signer, findOptions === undefined ? options : { ...options, ...findOptions }),
          signer,
          findOptions,
          find
        )

    const lookupAny = (processId: ProcessId, signer: Wallet["Type"] | undefined) => {
      if (signer !== undefined || identities.length === 1) {
        return services.lookup((signer ?? wallet).address, processId)
      }
      return Effect.flatMap(services.lookup(wallet.address, processId), (found) =>
        Option.isSome(found)
          ? Effect.succeed(found)
          : Effect.map(
              Effect.forEach(identities.slice(1), (w) => services.lookup(w.address, processId)),
              (all) => Option.firstSomeOf(all)
            )
      )
    }

    /** `find(p, true)` where scheduling is disabled: a live scheduler, else `SchedulingDisabled`. */
    const lookupOrDisabled = (processId: ProcessId, signer: Wallet["Type"] | undefined) =>
      Effect.flatMap(
        lookupAny(processId, signer),
        (found): Effect.Effect<Scheduler.Scheduler, FindError> =>
          Option.isSome(found) ? Effect.succeed(found.value) : Effect.fail(new SchedulingDisabled({ processId }))
      )

    const findSlow = (
      input: string | Uint8Array,
      genIfNotHosted?: boolean | undefined,
      findOptions?: FindOptions | undefined
    ): Effect.Effect<Scheduler.Scheduler, FindError> =>
      Effect.suspend(() => {
        const admitted = admit(input, services.isClosed())
        if (Either.isLeft(admitted)) return Effect.fail(admitted.left)
        const processId = admitted.right
        const signer = findOptions?.wallet
        if (genIfNotHosted === true && (signer !== undefined || identities.length === 1)) {
          // one identity to look under: `getOrStart` looks it up itself
          if ((findOptions?.mode ?? options.mode) === "disabled") return lookupOrDisabled(processId, signer)
          const chosen = signer ?? wallet
          return services.getOrStart(chosen.address, processId, starter(processId, chosen, findOptions))
        }
        return Effect.flatMap(lookupAny(processId, signer), (found): Effect.Effect<Scheduler.Scheduler, FindError> => {
          if (Option.isSome(found)) return Effect.succeed(found.value)
          if (genIfNotHosted !== true) return Effect.fail(new NotFound({ processId }))
          if ((findOptions?.mode ?? options.mode) === "disabled") {
            return Effect.fail(new SchedulingDisabled({ processId }))
          }
          const chosen = signer ?? wallet
          return services.getOrStart(chosen.address, processId, starter(processId, chosen, findOptions))
        })
      })

    const findMiss = (call: {
      readonly input: string
      readonly genIfNotHosted: boolean | undefined
      readonly findOptions: FindOptions | undefined
    }) => findSlow(call.input, call.genIfNotHosted, call.findOptions)
    const findMissLookup = (input: string) => findSlow(input, false, undefined)
    const findMissCreate = (input: string) => findSlow(input, true, undefined)

    /**
     * The hot path: a text id whose scheduler is live and ready under the requested (or default) wallet is
     * found in one read. The id needs no validation there: only valid ids are ever registered, so an invalid
     * one misses and `findSlow` reports it. Everything else (raw bytes, misses, other identities, starts,
     * schedulers still starting, a closed registry) takes `findSlow`.
     */
    const findUntraced = (
      input: string | Uint8Array,
      genIfNotHosted?: boolean | undefined,
      findOptions?: FindOptions | undefined
    ): Effect.Effect<Scheduler.Scheduler, FindError> =>
      typeof input !== "string"
        ? findSlow(input, genIfNotHosted, findOptions)
        : findOptions === undefined
          ? services.lookupOr(wallet.address, input, genIfNotHosted === true ? findMissCreate : findMissLookup, input)
          : services.lookupOr(findOptions.wallet?.address ?? wallet.address, input, findMiss, {
              input,
              genIfNotHosted,
              findOptions
            })

    // With a real tracer installed (`Tracing.layer…` under the registry), every find carries a span; without
    // one, the span would go nowhere, so the hot path does not pay for it.
    const find: Find = (yield* isTracing)
      ? (input, genIfNotHosted, findOptions) =>
          Effect.withSpan(findUntraced(input, genIfNotHosted, findOptions), "SchedulerRegistry.find", {
            attributes: { genIfNotHosted: genIfNotHosted === true },
            captureStackTrace: false
          })
      : findUntraced

    const walletFor = (address: string) =>
      Effect.succeed(Option.fromNullable(identities.find((w) => w.address === address)))

    const getProcesses = () => Effect.map(services.entries(), (entries) => entries.map((e) => e.handle.processId))

    const upload = options.upload
    const timeoutMs = options.timeoutMs ?? Scheduler.DEFAULT_TIMEOUT_MS
    const hosting = yield* Hosting.make(
      { find, walletFor, getWallet: () => Effect.succeed(wallet) },
      store,
      options.schedulerOf,
      options.mode === "remote_confirmation" && upload !== undefined
        ? (assignment, ids) =>
            Effect.timeoutFail(upload.confirmed(ids), {
              duration: timeoutMs,
              onTimeout: () =>
                new UploadPending({
                  processId: assignment.processId,
                  slot: assignment.slot,
                  assignmentId: assignment.id,
                  timeoutMs
                })
            })
        : undefined
    )

    return SchedulerRegistry.of({
      ...hosting,
      find,
      getWallet: () => Effect.succeed(wallet),
      walletFor,
      getWallets: () => Effect.succeed(identities),
      getProcesses,
      listProcesses: () => store.listProcesses(),
      events: services.events,
      subscribe: services.subscribe
    })
  })

/**
 * The registry as a Layer. Its scope is the servers' lifetime: closing it interrupts them all in parallel.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Assignment, NameService, ProcessId, SchedulerRegistry, Wallet } from "effect-scheduler-registry"
 * import { SqliteStore } from "effect-scheduler-registry/sqlite"
 *
 * const RegistryLive = SchedulerRegistry.layer({ idleTimeToLiveMs: 300_000 }).pipe(
 *   Layer.provide(
 *     Layer.mergeAll(
 *       NameService.layer,
 *       Wallet.layerFile("./data/wallet.json"),
 *       SqliteStore.layer({ filename: "./data/su.sqlite" })
 *     )
 *   )
 * )
 *
 * const program = Effect.gen(function* () {
 *   const scheduler = yield* SchedulerRegistry.find("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true)
 *   const id = ProcessId.MessageId.make("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
 *   const message = new Assignment.Message({ id })
 *   return yield* scheduler.schedule(message)
 * }).pipe(Effect.provide(RegistryLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<SchedulerRegistry, never, NameService | Wallet | AssignmentStore> =>
  Layer.scoped(SchedulerRegistry, make(options))

/**
 * `layer` with its options read from `Config`, as `@effect/sql-sqlite-node`'s `layerConfig`: for example
 * `SchedulerRegistry.layerConfig({ idleTimeToLiveMs: Config.integer("SU_IDLE_TTL") })`. Fails with `ConfigError`
 * when the config does not load.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<SchedulerRegistry, ConfigError.ConfigError, NameService | Wallet | AssignmentStore> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * `find` on the ambient registry. See `SchedulerRegistry`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const find = (
  processId: string | Uint8Array,
  genIfNotHosted?: boolean | undefined,
  options?: FindOptions | undefined
): Effect.Effect<Scheduler.Scheduler, FindError, SchedulerRegistry> =>
  Effect.flatMap(SchedulerRegistry, (r) => r.find(processId, genIfNotHosted, options))

/**
 * The ambient registry's default wallet.
 *
 * @since 0.1.0
 * @category accessors
 */
export const getWallet = (): Effect.Effect<Wallet["Type"], never, SchedulerRegistry> =>
  Effect.flatMap(SchedulerRegistry, (r) => r.getWallet())

/**
 * The ids of the ambient registry's live schedulers.
 *
 * @since 0.1.0
 * @category accessors
 */
export const getProcesses = (): Effect.Effect<ReadonlyArray<ProcessId>, never, SchedulerRegistry> =>
  Effect.flatMap(SchedulerRegistry, (r) => r.getProcesses())
