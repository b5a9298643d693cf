/**
 * The published package, as a user gets it: `npm pack` (which builds `dist/`), the tarball's contents, then a
 * fresh project that installs the tarball and runs the README's library examples from it, step by step with
 * the optional peers of each entry point (core, + SQLite, + the node). Prints the install size and package count
 * of each step (docs/packaging.md records them).
 *
 * Slow (a few minutes: the SQLite step builds better-sqlite3 when no prebuilt binary can be fetched); it uses the
 * npm cache that `npm ci` filled (`--prefer-offline`).
 */
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { initialHashChain } from "../src/Assignment.js"
import { jwk } from "../src/testing/TestWallet.js"
import { libraryExamples } from "./fixtures/readme.js"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const TIMEOUT = 600_000
const PROCESS_ID = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/** The version of an installed dependency of ours (the peers are installed at the versions we test with). */
const ours = (name: string): string =>
  (JSON.parse(Fs.readFileSync(Path.join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string })
    .version

/** The environment without `npm_*` variables, so that a nested npm does not inherit `npm test`'s settings. */
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith("npm_")))

/** Runs `command args` in `cwd`; resolves with its stdout, rejects with its output when it exits non-zero. */
const run = (command: string, args: ReadonlyArray<string>, cwd: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    child.on("error", reject)
    child.on("close", (code) =>
      code === 0
        ? resolve(stdout)
        : reject(new Error(`${command} ${args.join(" ")} exited ${code}\n${stdout}\n${stderr}`))
    )
  })

/** Why `npm pack` cannot run here, or undefined when it can (npm runs, and TypeScript is installed). */
const cannotPack = ((): string | undefined => {
  const npm = spawnSync("npm", ["--version"], { env, encoding: "utf8" })
  if (npm.error !== undefined || npm.status !== 0) return `npm does not run (${npm.error?.message ?? npm.stderr})`
  if (!Fs.existsSync(Path.join(ROOT, "node_modules", "typescript"))) return "typescript is not installed (npm ci)"
  return undefined
})()

interface Footprint {
  readonly bytes: number
  readonly packages: number
}

/** The size of `node_modules` (bytes, `du -sb`) and the number of installed packages (`npm ls --all`). */
const footprint = async (project: string): Promise<Footprint> => {
  const du = await run("du", ["-sb", "node_modules"], project)
  const ls = await run("npm", ["ls", "--all", "--parseable"], project)
  const paths = new Set(ls.split("\n").filter((line) => line.includes(`${Path.sep}node_modules${Path.sep}`)))
  return { bytes: Number(du.split("\t")[0]), packages: paths.size }
}

const report = (step: string, { bytes, packages }: Footprint) =>
  console.log(`[package] ${step}: ${(bytes / 1e6).toFixed(1)} MB in node_modules, ${packages} packages`)

/** Runs `file` with node in `project` and checks the README example's line: NotFound, slot 0, the hash chain. */
const runExample = async (project: string, file: string) => {
  const out = (await run("node", [file], project)).trim()
  const [tag, slot, hashChain, ...rest] = out.split(" ")
  expect(rest).toEqual([])
  expect(tag).toBe("NotFound")
  expect(slot).toBe("0")
  expect(hashChain).toHaveLength(43)
  expect(hashChain).toBe(initialHashChain(PROCESS_ID))
}

describe.sequential("the npm package", () => {
  const work = Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-package-"))
  const project = Path.join(work, "project")
  let tarball = ""
  afterAll(() => Fs.rmSync(work, { recursive: true, force: true }))

  it.skipIf(cannotPack !== undefined)(
    `npm pack ships dist/, README and LICENSE, and no tests, keys, CI files or sources${cannotPack === undefined ? "" : ` (skipped: ${cannotPack})`}`,
    async () => {
      const packed = JSON.parse(await run("npm", ["pack", "--json", "--pack-destination", work], ROOT)) as Array<{
        filename: string
      }>
      tarball = Path.join(work, packed[0]!.filename)
      const files = (await run("tar", ["-tzf", tarball], work)).split("\n").filter((line) => line !== "")
      for (const required of [
        "package/package.json",
        "package/dist/index.js",
        "package/dist/index.d.ts",
        "package/dist/node/bin.js",
        "package/dist/sqlite/index.js",
        "package/dist/testing/index.js",
        "package/dist/testing/index.d.ts",
        "package/README.md",
        "package/LICENSE"
      ]) {
        expect(files).toContain(required)
      }
      const forbidden = files.filter(
        (file) =>
          /^package\/(test|src|bench|scripts|docs|\.ci|\.github|node_modules)\//.test(file) ||
          /wallet[^/]*\.json$/.test(file) ||
          /\.tsbuildinfo$/.test(file)
      )
      expect(forbidden).toEqual([])
      // the bin is executable once installed (npm links it) and starts with a node shebang
      const manifest = JSON.parse(Fs.readFileSync(Path.join(ROOT, "package.json"), "utf8")) as {
        exports: Record<string, unknown>
        bin: Record<string, string>
      }
      expect(manifest.bin).toEqual({ su: "./dist/node/bin.js" })
      // no path under dist/internal is reachable through exports: no wildcard, no internal entry
      const exported = JSON.stringify(manifest.exports)
      expect(Object.keys(manifest.exports).filter((key) => key.includes("*"))).toEqual([])
      expect(exported).not.toContain("internal")
      expect(exported).not.toContain("*")
      expect(Object.keys(manifest.exports).sort()).toEqual([
        ".",
        "./cluster",
        "./node",
        "./package.json",
        "./pg",
        "./sqlite",
        "./testing",
        "./tracing"
      ])
    },
    TIMEOUT
  )

  it.skipIf(cannotPack !== undefined)(
    "a fresh project with only the tarball and effect runs the README's memory-store example",
    async () => {
      expect(tarball).not.toBe("")
      Fs.mkdirSync(Path.join(project, "data"), { recursive: true })
      await run("npm", ["init", "-y"], project)
      await run("npm", ["pkg", "set", "type=module"], project)
      await run(
        "npm",
        ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, `effect@${ours("effect")}`],
        project
      )
      // the test key stands in for the file the example would create (RSA-4096 generation is slow)
      Fs.writeFileSync(Path.join(project, "data", "wallet.json"), JSON.stringify(jwk), { mode: 0o600 })
      const { memory, sqlite } = libraryExamples()
      Fs.writeFileSync(Path.join(project, "example.mjs"), memory)
      Fs.writeFileSync(Path.join(project, "example-sqlite.mjs"), sqlite)
      await runExample(project, "example.mjs")
      // the core loads no optional peer
      expect(Fs.existsSync(Path.join(project, "node_modules", "@effect", "sql"))).toBe(false)
      expect(Fs.existsSync(Path.join(project, "node_modules", "@effect", "platform"))).toBe(false)
      report("core", await footprint(project))
    },
    TIMEOUT
  )

  it.skipIf(cannotPack !== undefined)(
    "with the SQLite peers it runs the README's SQLite example on a file",
    async () => {
      await run(
        "npm",
        [
          "install",
          "--no-audit",
          "--no-fund",
          "--prefer-offline",
          `@effect/sql@${ours("@effect/sql")}`,
          `@effect/sql-sqlite-node@${ours("@effect/sql-sqlite-node")}`
        ],
        project
      )
      await runExample(project, "example-sqlite.mjs")
      expect(Fs.statSync(Path.join(project, "data", "su.sqlite")).size).toBeGreaterThan(0)
      report("core + SQLite", await footprint(project))
    },
    TIMEOUT
  )

  it.skipIf(cannotPack !== undefined)(
    "with the node peers `npx su` prints its version and lists serve",
    async () => {
      await run(
        "npm",
        [
          "install",
          "--no-audit",
          "--no-fund",
          "--prefer-offline",
          `@effect/platform@${ours("@effect/platform")}`,
          `@effect/platform-node@${ours("@effect/platform-node")}`,
          `@effect/cli@${ours("@effect/cli")}`
        ],
        project
      )
      const version = (JSON.parse(Fs.readFileSync(Path.join(ROOT, "package.json"), "utf8")) as { version: string })
        .version
      expect((await run("npx", ["--no-install", "su", "--version"], project)).trim()).toBe(version)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the help's ANSI colours
      const help = (await run("npx", ["--no-install", "su", "--help"], project)).replace(/\u001b\[[0-9;]*m/g, "")
      expect(help).toMatch(/^ {2}- serve .*Run the scheduler unit node/m)
      expect(help).toMatch(/^ {2}- wallet create /m)
      report("core + SQLite + node", await footprint(project))
    },
    TIMEOUT
  )
})
