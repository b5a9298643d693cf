/**
 * The registry's and the schedulers' own metrics. None is tagged with a process id: per-process tags would grow
 * the global metric registry without bound (Effect-TS/effect PR #5140). Re-exported by `Metrics`.
 */
import { Metric, MetricBoundaries } from "effect"

/** 0.25 ms to ~8 s, doubling. */
const latencyBoundaries = Array.from({ length: 16 }, (_, i) => 0.25 * 2 ** i)

/** Live services of all registries (schedulers and other types), by `service_type`. */
export const activeServices = Metric.gauge("su_registry_active_services", {
  description: "Live services in the registries, by service type"
})

/** Services that finished starting (activations, including reactivations after passivation). */
export const activations = Metric.counter("su_registry_activations_total", {
  description: "Services started (activated), by service type",
  incremental: true
})

/** Services that stopped themselves after being idle. */
export const passivations = Metric.counter("su_registry_passivations_total", {
  description: "Services passivated after being idle, by service type",
  incremental: true
})

/** Services that stopped with a failure (an error or a defect). */
export const failures = Metric.counter("su_registry_failures_total", {
  description: "Services that stopped with a failure, by service type",
  incremental: true
})

/** Assignments signed and stored by the schedulers. */
export const assignments = Metric.counter("su_scheduler_assignments_total", {
  description: "Assignments made by the schedulers",
  incremental: true
})

/** Time from a `schedule` call to its reply, in ms (including the wait in the mailbox). */
export const scheduleLatency = Metric.timerWithBoundaries(
  "su_scheduler_schedule_latency",
  latencyBoundaries,
  "schedule call latency in ms, from the call to the reply"
)

/** Depth of a scheduler's mailbox, sampled at every enqueue (requests waiting, this one included). */
export const mailboxDepth = Metric.histogram(
  "su_scheduler_mailbox_depth",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 13 }),
  "Requests waiting in a scheduler mailbox, sampled at each enqueue"
)

/** Time of one `AssignmentStore.append` as a scheduler sees it, in ms (group commit included). */
export const storeLatency = Metric.timerWithBoundaries(
  "su_store_append_latency",
  latencyBoundaries,
  "AssignmentStore.append latency in ms"
)
