/**
 * The node's metrics, in Effect's global metric registry and served as Prometheus text at `GET /metrics`
 * (the legacy SU's `ENABLE_METRICS`): the HTTP layer's, defined here, and the registry's and schedulers',
 * re-exported from `internal/metrics`. No metric is tagged with a process or message id: tags take only a
 * handful of values, so the registry stays bounded however many processes the node hosts.
 *
 * @since 0.1.0
 */
import { Metric, MetricBoundaries } from "effect"

/**
 * The registry's and schedulers' metrics: `activeServices`, `activations`, `passivations`, `failures`,
 * `assignments`, `scheduleLatency`, `mailboxDepth`, `storeLatency`, … (defined in `internal/metrics`, where the
 * core records them).
 *
 * @since 0.1.0
 * @category metrics
 */
export * from "./internal/metrics.js"

/**
 * HTTP requests served, tagged `method` and `status` (the response status code).
 *
 * @since 0.1.0
 * @category metrics
 */
export const httpRequests = Metric.counter("su_http_requests_total", {
  description: "HTTP requests served, by method and status code",
  incremental: true
})

/**
 * HTTP request duration in ms, from the request's arrival to its response, tagged `method`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const httpRequestDuration = Metric.histogram(
  "su_http_request_duration_ms",
  MetricBoundaries.exponential({ start: 0.5, factor: 2, count: 16 }),
  "HTTP request duration in ms"
)

/**
 * Assignments made through the HTTP API, tagged `type`: `process` (nonce 0), `message` or `assign`
 * (an existing transaction).
 *
 * @since 0.1.0
 * @category metrics
 */
export const httpAssignments = Metric.counter("su_http_assignments_total", {
  description: "Assignments made through the HTTP API, by type (process, message, assign)",
  incremental: true
})

/**
 * The number of live schedulers of the node's registry, sampled at every scrape of `/metrics`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const activeSchedulers = Metric.gauge("su_active_schedulers", {
  description: "Live scheduler fibers in the registry"
})
