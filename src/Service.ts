/**
 * What a long-lived service (such as a process's scheduler) and the registry that hosts it agree on: the
 * `Passivated` marker a service returns when it stops itself after being idle, and the events the registry
 * reports about its services. A service imports this module, never its registry.
 *
 * Mirrors the lifecycle of `hb_name` registrations and `dev_scheduler_server` processes
 * (`permaweb/HyperBEAM@b2743e4a src/hb_name.erl`, `src/dev_scheduler_server.erl`), with the events Elixir's
 * Registry listeners and syn's callbacks give.
 *
 * @since 0.2.0
 */
import { type Cause, Data, type Option } from "effect"
import type { Name } from "./NameService.js"

/**
 * Why a service left the registry:
 * `exited` (its fiber completed), `failed` (an error or defect; the cause is attached), `interrupted`,
 * `passivated` (it stopped itself after being idle) or `registry_closed`.
 *
 * @since 0.1.0
 * @category models
 */
export type UnregisterReason = "exited" | "failed" | "interrupted" | "passivated" | "registry_closed"

/**
 * A registry event. `name` is the service's (service type, node, id).
 *
 * - `Registered`: the name was claimed and the service fiber forked.
 * - `Activated`: the service finished starting (e.g. a scheduler recovered its slot and chain).
 * - `Passivated`: the service stopped itself after being idle; `Unregistered` with reason `passivated` follows.
 * - `Unregistered`: the entry is gone; `reason` says why, and `cause` holds a failure's cause.
 *
 * @since 0.1.0
 * @category models
 */
export type RegistryEvent = Data.TaggedEnum<{
  Registered: { readonly name: Name }
  Activated: { readonly name: Name }
  Passivated: { readonly name: Name }
  Unregistered: {
    readonly name: Name
    readonly reason: UnregisterReason
    readonly cause: Option.Option<Cause.Cause<unknown>>
  }
}>

/**
 * Constructors and matchers for `RegistryEvent`.
 *
 * @since 0.1.0
 * @category models
 */
export const RegistryEvent = Data.taggedEnum<RegistryEvent>()

/**
 * What a service's fiber returns when it stops itself after being idle; the registry reports `passivated`.
 *
 * @since 0.1.0
 * @category models
 */
export const Passivated: unique symbol = Symbol.for("effect-scheduler-registry/Passivated")
