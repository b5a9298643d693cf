/**
 * Draws a `Series` (one run's measurements) as an SVG chart with vega-lite, compiled to Vega and rendered
 * headless (`renderer: "none"`, no canvas): one line per `line`, a log scale where the series asks for one.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as vega from "vega"
import * as vl from "vega-lite"
import type { Series } from "./lib.js"

/** The vega-lite spec of `series`. */
export const spec = (series: Series): vl.TopLevelSpec => ({
  $schema: "https://vega.github.io/schema/vega-lite/v5.json",
  title: series.title,
  width: 520,
  height: 280,
  background: "white",
  data: { values: series.points.map((p) => ({ x: p.x, y: p.y, line: p.line })) },
  mark: { type: "line", point: true },
  encoding: {
    x: {
      field: "x",
      type: "quantitative",
      title: series.x.name,
      scale: series.x.log === true ? { type: "log" } : { zero: false }
    },
    y: {
      field: "y",
      type: "quantitative",
      title: series.y.unit === "" ? series.y.name : `${series.y.name} (${series.y.unit})`,
      scale: series.y.log === true ? { type: "log" } : {}
    },
    color: { field: "line", type: "nominal", title: null, legend: { orient: "bottom" } }
  }
})

/** Renders `series` to `<dir>/<series.id>.svg`; returns the file's path. */
export const draw = async (series: Series, dir: string): Promise<string> => {
  const view = new vega.View(vega.parse(vl.compile(spec(series)).spec), { renderer: "none" })
  const svg = await view.toSVG()
  view.finalize()
  Fs.mkdirSync(dir, { recursive: true })
  const file = Path.join(dir, `${series.id}.svg`)
  Fs.writeFileSync(file, svg)
  return file
}
