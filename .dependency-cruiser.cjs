/**
 * The layers of the house, checked by `npm test` (`npm run check:layers`). Arrows point toward what a module
 * uses; nothing points back up:
 *
 *   node ──► cluster ──► pg ──► sql ──► core        tracing ──► core        testing ──► core
 *     ├──► sqlite ──► sql                                                    (core = src/*.ts, src/internal/)
 *     └──► network (gateway, uploads, locations) ──► core
 *
 * - core (src/*.ts and src/internal/) imports no other layer: a library user with the memory store loads no
 *   SQL, cluster, node or OpenTelemetry code;
 * - the stores import only the core and the shared SQL store; the cluster stands beside the node and never
 *   imports it; only the node assembles everything;
 * - no cycles, except through type-only imports (an internal module imports its public module's types).
 */
const layer = (name) => `^src/${name}/`
const core = "^src/(?!(sql|sqlite|pg|network|node|cluster|tracing|testing)/)"

/** `from` may import only the layers in `allowed` (and itself, and packages). */
const only = (name, from, allowed) => ({
  name,
  severity: "error",
  comment: `${from} may import only: ${allowed.join(", ")}`,
  from: { path: from },
  to: { path: "^src/", pathNot: [from, ...allowed] }
})

module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      severity: "error",
      comment: "Import cycles (type-only imports, which vanish at run time, do not count).",
      from: { path: "^src/" },
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } }
    },
    only("core-imports-only-core", core, [core]),
    only("sql-imports-only-core", layer("sql"), [core]),
    only("sqlite-imports-core-and-sql", layer("sqlite"), [core, layer("sql")]),
    only("pg-imports-core-and-sql", layer("pg"), [core, layer("sql")]),
    only("tracing-imports-only-core", layer("tracing"), [core]),
    only("network-imports-only-core", layer("network"), [core]),
    only("testing-imports-only-core", layer("testing"), [core]),
    only("cluster-never-imports-the-node", layer("cluster"), [core, layer("sql"), layer("pg")]),
    {
      name: "not-to-unresolvable",
      severity: "error",
      from: { path: "^src/" },
      to: { couldNotResolve: true }
    }
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"] },
    includeOnly: "^src/"
  }
}
