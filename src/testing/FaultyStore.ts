/**
 * A fault-injecting `AssignmentStore` for tests: it wraps another store (by default a fresh memory store) and,
 * by rule, makes an `append` or a `latest` fail with a typed `StoreError`, die, hang until released, commit and
 * then fail (the "outcome unknown" case), or take longer. Everything else goes straight to the inner store.
 *
 * The layer also provides the `FaultyStore` service: call counters and setters that change the rules while a test
 * runs.
 *
 * @since 0.2.0
 */
import { Context, Deferred, Duration, Effect, Layer, type Scope } from "effect"
import type { Assignment, Message } from "../Assignment.js"
import { type AppendOptions, AssignmentStore, layerMemory } from "../AssignmentStore.js"
import { StoreError } from "../errors.js"

/**
 * What a faulty call does instead of (or besides) its normal work:
 *
 * - `Fail`: fails with `StoreError({ operation, reason })`; the inner store is not called (nothing written).
 * - `Die`: dies with `defect`; the inner store is not called.
 * - `Hang`: waits until `until` completes (forever when absent; only interruption, or the layer's scope closing,
 *   ends the wait), then calls the inner store as usual.
 * - `CommitThenFail`: calls the inner store, and when that succeeds fails with `StoreError({ operation, reason })`
 *   anyway: the write landed, the caller cannot know (a lost commit acknowledgement).
 * - `Delay`: sleeps `duration` (on the Effect `Clock`, so `TestClock` drives it), then does `then` (default: the
 *   normal call).
 *
 * @since 0.2.0
 * @category models
 */
export type Fault =
  | { readonly _tag: "Fail"; readonly reason: string }
  | { readonly _tag: "Die"; readonly defect: unknown }
  | { readonly _tag: "Hang"; readonly until: Deferred.Deferred<void> | undefined }
  | { readonly _tag: "CommitThenFail"; readonly reason: string }
  | { readonly _tag: "Delay"; readonly duration: Duration.Duration; readonly then: Fault | undefined }

/**
 * A `Fault` that fails with `StoreError` (`reason` defaults to `"injected failure"`); nothing is written.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fail = (reason = "injected failure"): Fault => ({ _tag: "Fail", reason })

/**
 * A `Fault` that dies with `defect` (default: an `Error("injected defect")`); nothing is written.
 *
 * @since 0.2.0
 * @category constructors
 */
export const die = (defect: unknown = new Error("injected defect")): Fault => ({ _tag: "Die", defect })

/**
 * A `Fault` that hangs until `until` completes (forever without it), then runs the call normally.
 *
 * @since 0.2.0
 * @category constructors
 */
export const hang = (until?: Deferred.Deferred<void>): Fault => ({ _tag: "Hang", until })

/**
 * A `Fault` whose write lands in the inner store and whose call then fails with `StoreError` (`reason` defaults to
 * `"commit outcome unknown (injected)"`). Applies to `append`; on a read it is a plain `Fail` after the read.
 *
 * @since 0.2.0
 * @category constructors
 */
export const commitThenFail = (reason = "commit outcome unknown (injected)"): Fault => ({
  _tag: "CommitThenFail",
  reason
})

/**
 * A `Fault` that sleeps `duration` (Effect `Clock` time), then does `then` (default: the normal call).
 *
 * @since 0.2.0
 * @category constructors
 */
export const delay = (duration: Duration.DurationInput, then?: Fault): Fault => ({
  _tag: "Delay",
  duration: Duration.decode(duration),
  then
})

/**
 * Which calls of one operation meet which fault: one `Fault` for every call, or a function of the call's number
 * (1 for the first call of the operation on this store, counting every call, faulty or not) giving a `Fault` or
 * `undefined` for a normal call.
 *
 * @since 0.2.0
 * @category models
 */
export type Rule = Fault | ((call: number) => Fault | undefined)

/**
 * A `Rule` giving `fault` to call number `n` (1-based) only.
 *
 * @since 0.2.0
 * @category rules
 */
export const nth =
  (n: number, fault: Fault): Rule =>
  (call) =>
    call === n ? fault : undefined

/**
 * A `Rule` giving `fault` to call number `n` (1-based) and every later call.
 *
 * @since 0.2.0
 * @category rules
 */
export const from =
  (n: number, fault: Fault): Rule =>
  (call) =>
    call >= n ? fault : undefined

/**
 * The rules a faulty store starts with; both default to none (every call normal).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly append?: Rule | undefined
  readonly latest?: Rule | undefined
}

/**
 * The control of a faulty store, provided next to its `AssignmentStore` by `layer`.
 *
 * - `inner`: the wrapped store, to read or write past the faults.
 * - `appendCalls` / `latestCalls`: how many times `append` / `latest` was called so far (faulty calls included,
 *   counted when the call starts).
 * - `setAppend(rule)` / `setLatest(rule)`: replace the rule for later calls (`undefined`: no faults). Call numbers
 *   keep counting from the store's creation.
 *
 * @since 0.2.0
 * @category tags
 */
export class FaultyStore extends Context.Tag("effect-scheduler-registry/testing/FaultyStore")<
  FaultyStore,
  {
    readonly inner: AssignmentStore["Type"]
    readonly appendCalls: Effect.Effect<number>
    readonly latestCalls: Effect.Effect<number>
    readonly setAppend: (rule: Rule | undefined) => Effect.Effect<void>
    readonly setLatest: (rule: Rule | undefined) => Effect.Effect<void>
  }
>() {}

const faultOf = (rule: Rule | undefined, call: number): Fault | undefined =>
  rule === undefined ? undefined : typeof rule === "function" ? rule(call) : rule

/** Runs `call` under `fault`; `released` ends every hang when the layer's scope closes. */
const apply = <A, E>(
  fault: Fault | undefined,
  operation: string,
  call: Effect.Effect<A, E>,
  released: Deferred.Deferred<void>
): Effect.Effect<A, E | StoreError> => {
  if (fault === undefined) return call
  switch (fault._tag) {
    case "Fail":
      return Effect.fail(new StoreError({ operation, reason: fault.reason }))
    case "Die":
      return Effect.die(fault.defect)
    case "Hang": {
      const wait =
        fault.until === undefined
          ? Deferred.await(released)
          : Effect.raceFirst(Deferred.await(fault.until), Deferred.await(released))
      return Effect.zipRight(wait, call)
    }
    case "CommitThenFail":
      return Effect.zipRight(call, Effect.fail(new StoreError({ operation, reason: fault.reason })))
    case "Delay":
      return Effect.zipRight(Effect.sleep(fault.duration), apply(fault.then, operation, call, released))
  }
}

/**
 * Wraps `inner` with the rules of `options`. Returns the faulty store and its control. Hung calls are released
 * (and then run normally) when the `Scope` closes, so a failing test ends instead of hanging at shutdown.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AssignmentStore } from "effect-scheduler-registry"
 * import { FaultyStore } from "effect-scheduler-registry/testing"
 *
 * const program = Effect.gen(function* () {
 *   const inner = yield* AssignmentStore.makeMemory
 *   const { store, control } = yield* FaultyStore.make(inner, { latest: FaultyStore.fail("unreadable") })
 *   const read = yield* Effect.either(store.latest("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" as never))
 *   return [read._tag, yield* control.latestCalls] // ["Left", 1]
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  inner: AssignmentStore["Type"],
  options: Options = {}
): Effect.Effect<
  { readonly store: AssignmentStore["Type"]; readonly control: FaultyStore["Type"] },
  never,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const released = yield* Deferred.make<void>()
    yield* Effect.addFinalizer(() => Deferred.succeed(released, undefined))
    let appendRule = options.append
    let latestRule = options.latest
    let appends = 0
    let latests = 0
    const store: AssignmentStore["Type"] = {
      ...inner,
      append: (assignment: Assignment, message: Message, options?: AppendOptions | undefined) =>
        Effect.suspend(() => {
          appends++
          return apply(faultOf(appendRule, appends), "append", inner.append(assignment, message, options), released)
        }),
      latest: (processId) =>
        Effect.suspend(() => {
          latests++
          return apply(faultOf(latestRule, latests), "latest", inner.latest(processId), released)
        })
    }
    const control: FaultyStore["Type"] = {
      inner,
      appendCalls: Effect.sync(() => appends),
      latestCalls: Effect.sync(() => latests),
      setAppend: (rule) =>
        Effect.sync(() => {
          appendRule = rule
        }),
      setLatest: (rule) =>
        Effect.sync(() => {
          latestRule = rule
        })
    }
    return { store, control }
  })

/**
 * A faulty `AssignmentStore` over the store of `inner` (default: a fresh `AssignmentStore.layerMemory`), and its
 * `FaultyStore` control. Fails as `inner` fails to build; each build is a fresh store with fresh counters.
 *
 * @example
 * ```ts
 * import { Effect, Either, Layer } from "effect"
 * import { Assignment, NameService, SchedulerRegistry } from "effect-scheduler-registry"
 * import { FaultyStore, TestWallet } from "effect-scheduler-registry/testing"
 *
 * // the 2nd append fails with StoreError: the scheduler consumes no slot for it
 * const Store = FaultyStore.layer({ append: FaultyStore.nth(2, FaultyStore.fail("disk full")) })
 * const Registry = SchedulerRegistry.layer().pipe(
 *   Layer.provideMerge(Layer.mergeAll(NameService.layer, TestWallet.layer, Store))
 * )
 *
 * const program = Effect.gen(function* () {
 *   const p = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
 *   const scheduler = yield* SchedulerRegistry.find(p, true)
 *   yield* scheduler.schedule(new Assignment.Message({ id: p as never })) // slot 0
 *   const failed = yield* Effect.either(scheduler.schedule(new Assignment.Message({ id: p as never })))
 *   const faulty = yield* FaultyStore.FaultyStore
 *   return [Either.isLeft(failed), yield* faulty.appendCalls] // [true, 2]
 * }).pipe(Effect.scoped, Effect.provide(Registry))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = <E = never, R = never>(
  options: Options = {},
  inner: Layer.Layer<AssignmentStore, E, R> = layerMemory as Layer.Layer<AssignmentStore, E, R>
): Layer.Layer<AssignmentStore | FaultyStore, E, R> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const innerStore = yield* AssignmentStore
      const { store, control } = yield* make(innerStore, options)
      return Context.make(AssignmentStore, store).pipe(Context.add(FaultyStore, control))
    })
  ).pipe(Layer.provide(inner))
