import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries } from "effect"
import { render } from "../../src/node/internal/prometheus.js"

describe("prometheus: Effect metric snapshot → text exposition 0.0.4", () => {
  it.effect("counters, gauges and histograms, with escaped labels and a +Inf bucket", () =>
    Effect.gen(function* () {
      const counter = Metric.counter("test_prom_requests_total", { description: "Requests\nserved" })
      const gauge = Metric.gauge("test_prom_depth")
      const histogram = Metric.histogram("test_prom_ms", MetricBoundaries.fromIterable([1, 10]), "Latency in ms")
      yield* Metric.increment(Metric.tagged(counter, "path", 'a"b\\c'))
      yield* Metric.set(gauge, 3)
      yield* Metric.update(histogram, 0.5)
      yield* Metric.update(histogram, 5)
      yield* Metric.update(histogram, 50)
      const text = render(Metric.unsafeSnapshot())
      expect(text).toContain(
        "# HELP test_prom_requests_total Requests\\nserved\n# TYPE test_prom_requests_total counter\n"
      )
      expect(text).toContain('test_prom_requests_total{path="a\\"b\\\\c"} 1\n')
      expect(text).toContain("# TYPE test_prom_depth gauge\ntest_prom_depth 3\n")
      expect(text).toContain("# TYPE test_prom_ms histogram\n")
      expect(text).toContain('test_prom_ms_bucket{le="1"} 1\n')
      expect(text).toContain('test_prom_ms_bucket{le="10"} 2\n')
      expect(text).toContain('test_prom_ms_bucket{le="+Inf"} 3\n')
      expect(text).toContain("test_prom_ms_sum 55.5\ntest_prom_ms_count 3\n")
      expect(text.match(/# TYPE test_prom_ms /g)).toHaveLength(1)
    })
  )
})
