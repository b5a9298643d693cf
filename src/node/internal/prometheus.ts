/**
 * Renders a snapshot of Effect's metric registry (`Metric.unsafeSnapshot()`) in the Prometheus text exposition
 * format 0.0.4: counters and gauges as samples, histograms as cumulative `_bucket{le}`, `_sum` and `_count`,
 * summaries as quantiles, frequencies as one sample per occurrence key.
 */
import type { MetricPair } from "effect"
import { MetricState } from "effect"

const sanitizeName = (name: string): string => {
  const clean = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[a-zA-Z_:]/.test(clean) ? clean : `_${clean}`
}

const escapeLabel = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')

const escapeHelp = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const formatNumber = (n: number | bigint): string => {
  if (typeof n === "bigint") return n.toString()
  if (Number.isNaN(n)) return "NaN"
  if (n === Number.POSITIVE_INFINITY) return "+Inf"
  if (n === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(n)
}

const labels = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${sanitizeName(k)}="${escapeLabel(v)}"`).join(",")}}`

/** Prometheus text for `snapshot`, grouping samples of one metric name under one HELP/TYPE header. */
export const render = (snapshot: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, { type: string; help: string; lines: Array<string> }>()
  const family = (name: string, type: string, help: string | undefined) => {
    let f = families.get(name)
    if (f === undefined) {
      f = { type, help: help ?? name, lines: [] }
      families.set(name, f)
    }
    return f
  }
  for (const pair of snapshot) {
    const key = pair.metricKey
    const name = sanitizeName(key.name)
    const tags = key.tags.map((t) => [t.key, t.value] as const)
    const help = key.description._tag === "Some" ? key.description.value : undefined
    const state = pair.metricState
    if (MetricState.isCounterState(state)) {
      family(name, "counter", help).lines.push(`${name}${labels(tags)} ${formatNumber(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", help).lines.push(`${name}${labels(tags)} ${formatNumber(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const f = family(name, "histogram", help)
      let sawInf = false
      for (const [bound, count] of state.buckets) {
        if (bound === Number.POSITIVE_INFINITY) sawInf = true
        f.lines.push(`${name}_bucket${labels([...tags, ["le", formatNumber(bound)]])} ${count}`)
      }
      if (!sawInf) f.lines.push(`${name}_bucket${labels([...tags, ["le", "+Inf"]])} ${state.count}`)
      f.lines.push(`${name}_sum${labels(tags)} ${formatNumber(state.sum)}`)
      f.lines.push(`${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isSummaryState(state)) {
      const f = family(name, "summary", help)
      for (const [q, value] of state.quantiles) {
        const v = value._tag === "Some" ? formatNumber(value.value) : "NaN"
        f.lines.push(`${name}${labels([...tags, ["quantile", String(q)]])} ${v}`)
      }
      f.lines.push(`${name}_sum${labels(tags)} ${formatNumber(state.sum)}`)
      f.lines.push(`${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isFrequencyState(state)) {
      const f = family(name, "counter", help)
      for (const [occurrence, count] of state.occurrences) {
        f.lines.push(`${name}${labels([...tags, ["key", occurrence]])} ${count}`)
      }
    }
  }
  let out = ""
  for (const [name, f] of families) {
    out += `# HELP ${name} ${escapeHelp(f.help)}\n# TYPE ${name} ${f.type}\n${f.lines.join("\n")}\n`
  }
  return out
}
