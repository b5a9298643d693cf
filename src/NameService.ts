/**
 * The name service: names → live fibers, with "only ever one registrant for a given name at a time".
 *
 * Mirrors HyperBEAM's `hb_name` (`docs/behaviours.md` §1) on a `Ref<HashMap>` held by a Layer, with its
 * failures fixed:
 * - a holder that has exited counts as free and is replaced atomically (K5, behaviour 6);
 * - an entry is removed as soon as its fiber exits, however it exits (K8), by an exit observer that
 *   compare-and-deletes, so it never removes a newer registration (K2, K9, K10);
 * - `lookup` never returns an exited fiber (K4); a failed `register` leaves nothing behind (K6);
 * - one fiber under several names is cleaned up under each (K7).
 *
 * Names compare structurally (`Equal`/`Hash`): strings, `Data` values, or `Name` for the registry's
 * (service type, node address, id) triples, whose hash is computed once.
 *
 * @since 0.1.0
 */
import { Context, Effect, Equal, type Fiber, Hash, HashMap, Layer, Option, Ref } from "effect"
import { AlreadyRegistered } from "./errors.js"

/**
 * A registry name: (service type, node address, id), as in HyperBEAM PR #1067's
 * `{<<"scheduler@1.0">>, NodeAddress, ProcID}`. Equality is structural and the hash is computed once, at
 * construction; pass a precomputed `prefixHash` (from `Name.prefixHash`) to hash only the id on hot paths.
 *
 * @since 0.1.0
 * @category models
 */
export class Name implements Equal.Equal {
  readonly #hash: number
  constructor(
    readonly serviceType: string,
    readonly node: string,
    readonly id: string,
    prefixHash: number = Name.prefixHash(serviceType, node)
  ) {
    this.#hash = Hash.combine(prefixHash)(Hash.string(id))
  }
  /** The hash of (serviceType, node), to share across every name of one registry. */
  static prefixHash(serviceType: string, node: string): number {
    return Hash.combine(Hash.string(serviceType))(Hash.string(node))
  }
  [Equal.symbol](that: Equal.Equal): boolean {
    return (
      that instanceof Name && this.id === that.id && this.node === that.node && this.serviceType === that.serviceType
    )
  }
  [Hash.symbol](): number {
    return this.#hash
  }
  toString(): string {
    return `${this.serviceType}/${this.node}/${this.id}`
  }
  toJSON(): unknown {
    return { serviceType: this.serviceType, node: this.node, id: this.id }
  }
}

/**
 * A live registration: the fiber and the value registered with it (the registry keeps its handle there).
 *
 * @since 0.1.0
 * @category models
 */
export interface Registration {
  readonly name: unknown
  readonly fiber: Fiber.RuntimeFiber<unknown, unknown>
  readonly value: unknown
}

interface Entry extends Registration {
  observer: (exit: unknown) => void
}

const noObserver = (): void => {}

type Table = HashMap.HashMap<unknown, Entry>

/**
 * The name service.
 *
 * - `register(name, fiber, value?)`: first writer wins. Fails with `AlreadyRegistered` while a live holder
 *   exists; registering the same fiber again under the same name is a no-op success (K10a). An exited holder
 *   is replaced atomically (K5).
 * - `unregister(name)`: idempotent; `unregisterIf(name, fiber)`: only while `fiber` holds the name.
 * - `lookup(name)`: `Option<fiber>`, never an exited fiber; `lookupRegistration(name)` also gives the value.
 * - `unsafeLookupRegistration(name)`: the live registration or `undefined`, read synchronously: for hot paths that
 *   read and act in one synchronous step (inside `Effect.suspend`/`sync`), which is as atomic as a `Ref.get`.
 * - `all()`: live registrations only, in no particular order.
 * - `size`: the number of entries held, live or not yet cleaned (for leak checks).
 *
 * @since 0.1.0
 * @category models
 */
export class NameService extends Context.Tag("effect-scheduler-registry/NameService")<
  NameService,
  {
    readonly register: (
      name: unknown,
      fiber: Fiber.RuntimeFiber<unknown, unknown>,
      value?: unknown
    ) => Effect.Effect<void, AlreadyRegistered>
    readonly unregister: (name: unknown) => Effect.Effect<void>
    readonly unregisterIf: (name: unknown, fiber: Fiber.RuntimeFiber<unknown, unknown>) => Effect.Effect<boolean>
    readonly lookup: (name: unknown) => Effect.Effect<Option.Option<Fiber.RuntimeFiber<unknown, unknown>>>
    readonly lookupRegistration: (name: unknown) => Effect.Effect<Option.Option<Registration>>
    readonly unsafeLookupRegistration: (name: unknown) => Registration | undefined
    readonly all: () => Effect.Effect<ReadonlyArray<Registration>>
    readonly size: Effect.Effect<number>
  }
>() {}

const isLive = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean => fiber.unsafePoll() === null

/**
 * Builds a name service over a fresh `Ref<HashMap<unknown, Entry>>`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NameService } from "effect-scheduler-registry"
 *
 * const program = Effect.gen(function* () {
 *   const names = yield* NameService.make
 *   const worker = yield* Effect.fork(Effect.never)
 *   yield* names.register("worker", worker)
 *   return yield* names.lookup("worker") // Option.some(worker)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<NameService["Type"]> = Effect.gen(function* () {
  const ref = yield* Ref.make(HashMap.empty<unknown, Entry>())
  // The Ref is the state. `table` is a read-only view of its value, replaced inside the same `Ref.modify` step,
  // so a synchronous lookup (`unsafeLookupRegistration`) sees exactly what `Ref.get` would.
  let table: Table = HashMap.empty()
  const get = Ref.get(ref)
  const modify = <B>(f: (map: Table) => readonly [B, Table]): Effect.Effect<B> =>
    Ref.modify(ref, (map) => {
      const [b, next] = f(map)
      table = next
      return [b, next]
    })

  /** Removes `name` only while `entry` is still the one held: compare-and-delete (K2, K9, K10b). */
  const removeIfHeld = (name: unknown, entry: Entry): Effect.Effect<boolean> =>
    modify((map) => {
      const current = HashMap.get(map, name)
      return Option.isSome(current) && current.value === entry ? [true, HashMap.remove(map, name)] : [false, map]
    })

  /**
   * An entry's exit observer. Made here, not in `register`, so that it retains only the entry, and anonymous:
   * under tsx (`keepNames`), a named closure is given its name with `Object.defineProperty`, which costs 256 bytes.
   */
  const observerOf =
    (entry: Entry): Entry["observer"] =>
    () =>
      Effect.runSync(removeIfHeld(entry.name, entry))

  const register = (name: unknown, fiber: Fiber.RuntimeFiber<unknown, unknown>, value?: unknown) =>
    Effect.suspend(() => {
      const entry: Entry = { name, fiber, value, observer: noObserver }
      entry.observer = observerOf(entry)
      return modify((map: Table): readonly [Option.Option<Entry> | "same" | "taken", Table] => {
        const current = HashMap.get(map, name)
        if (Option.isSome(current) && isLive(current.value.fiber)) {
          return [current.value.fiber === fiber ? "same" : "taken", map]
        }
        // absent, or held by an exited fiber whose cleanup has not run yet: free (K5)
        return [current, HashMap.set(map, name, entry)]
      }).pipe(
        Effect.flatMap((result) => {
          if (result === "same") return Effect.void
          if (result === "taken") return Effect.fail(new AlreadyRegistered({ name: String(name) }))
          // in the same step as the update (a continuation runs synchronously)
          if (Option.isSome(result)) result.value.fiber.removeObserver(result.value.observer)
          // runs at once if the fiber has already exited (behaviour 8: registered, then immediately gone)
          fiber.addObserver(entry.observer)
          return Effect.void
        })
      )
    })

  const take = (name: unknown, when: (entry: Entry) => boolean) =>
    modify((map: Table): readonly [Entry | undefined, Table] => {
      const current = HashMap.get(map, name)
      return Option.isSome(current) && when(current.value)
        ? [current.value, HashMap.remove(map, name)]
        : [undefined, map]
    }).pipe(
      Effect.map((removed) => {
        if (removed === undefined) return false
        removed.fiber.removeObserver(removed.observer)
        return true
      })
    )

  const lookupRegistration = (name: unknown) =>
    Effect.map(get, (map) =>
      Option.filter(HashMap.get(map, name) as Option.Option<Registration>, (e) => isLive(e.fiber))
    )

  const unsafeLookupRegistration = (name: unknown): Registration | undefined => {
    const found = HashMap.get(table, name)
    return found._tag === "Some" && isLive(found.value.fiber) ? found.value : undefined
  }

  return {
    register,
    unsafeLookupRegistration,
    unregister: (name) => Effect.asVoid(take(name, () => true)),
    unregisterIf: (name, fiber) => take(name, (entry) => entry.fiber === fiber),
    lookup: (name) =>
      Effect.map(
        lookupRegistration(name),
        Option.map((e) => e.fiber)
      ),
    lookupRegistration,
    all: () =>
      Effect.map(get, (map) => {
        const out: Array<Registration> = []
        for (const entry of HashMap.values(map)) if (isLive(entry.fiber)) out.push(entry)
        return out
      }),
    size: Effect.map(get, HashMap.size)
  }
})

/**
 * A fresh, empty name service. Provide one per node: registries that share it must use distinct names (the
 * scheduler registry's names include its wallet address, as in HyperBEAM PR #1067).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NameService } from "effect-scheduler-registry"
 *
 * const program = Effect.gen(function* () {
 *   const worker = yield* Effect.fork(Effect.never)
 *   yield* NameService.register("worker", worker)
 *   return yield* NameService.lookup("worker")
 * }).pipe(Effect.provide(NameService.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<NameService> = Layer.effect(NameService, make)

/**
 * Registers `fiber` under `name` in the ambient `NameService`. See `NameService.register`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const register = (name: unknown, fiber: Fiber.RuntimeFiber<unknown, unknown>, value?: unknown) =>
  Effect.flatMap(NameService, (s) => s.register(name, fiber, value))

/**
 * Removes `name` from the ambient `NameService`; idempotent.
 *
 * @since 0.1.0
 * @category accessors
 */
export const unregister = (name: unknown) => Effect.flatMap(NameService, (s) => s.unregister(name))

/**
 * The live fiber registered under `name` in the ambient `NameService`, if any.
 *
 * @since 0.1.0
 * @category accessors
 */
export const lookup = (name: unknown) => Effect.flatMap(NameService, (s) => s.lookup(name))

/**
 * Every live registration in the ambient `NameService`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const all = () => Effect.flatMap(NameService, (s) => s.all())
