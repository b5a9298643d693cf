/**
 * The command line: configuration precedence (flag > environment > default) in-process, and the real binary as
 * a child process: `--help`, `--version`, `wallet`, and `serve` with a graceful SIGTERM under load.
 */
import { type ChildProcess, spawn as spawnChild } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Exit } from "effect"
import * as Config from "../src/node/Config.js"
import { bundleEntry } from "./fixtures/child.js"
import * as Client from "./fixtures/client.js"
import { messageItem, processItem } from "./fixtures/dataItems.js"
import { fixtureWallet, post, request, startNode, tempDir } from "./fixtures/node.js"
import { type Edge, tag, walk } from "./fixtures/su.js"

/** The version `--version` must print: the package's own. */
const packageVersion = (
  JSON.parse(Fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version

const ROOT = Path.resolve(import.meta.dirname, "..")
const NODE_ADDRESS = "b1ayEFhXXqrS30fIn5k8ARPglHDKWXkVp_0wbTwo5UI"

/** Parses `args` with `serve`'s options under the environment `env`; returns the settings. */
const parse = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    let settings: Config.Settings | undefined
    const command = Command.make("su", Config.serveOptions, (s) =>
      Effect.sync(() => {
        settings = s
      })
    )
    yield* Command.run(command, { name: "su", version: "test" })(["node", "su", ...args]).pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
      Effect.provide(NodeContext.layer)
    )
    return settings!
  })

describe("Config", () => {
  it.effect("defaults, then environment, then flags", () =>
    Effect.gen(function* () {
      const defaults = yield* parse([])
      expect(defaults).toEqual({
        port: 9000,
        host: "127.0.0.1",
        dataDir: "./data",
        wallet: undefined,
        store: "sqlite",
        pgUrl: undefined,
        mode: "local_confirmation",
        bodyLimit: 10 * 1024 * 1024,
        blockHeight: 0,
        gatewayUrl: "https://arweave.net",
        idleTtl: 300_000,
        otlpUrl: undefined,
        signers: 0,
        identities: [],
        cluster: false,
        pgSchema: undefined,
        runnerHost: "localhost",
        runnerPort: 34431,
        shards: 300,
        shardLockExpirationMs: 6_000,
        shardLockRefreshMs: 2_000
      })
      const env = {
        SU_PORT: "9100",
        SU_HOST: "0.0.0.0",
        SU_DATA_DIR: "/tmp/su-env",
        SU_WALLET: "/tmp/key.json",
        SU_STORE: "pg",
        SU_PG_URL: "postgres://u:p@localhost:5432/su",
        SU_MODE: "aggressive",
        SU_BODY_LIMIT: "2048",
        SU_BLOCK_HEIGHT: "1500000",
        SU_GATEWAY_URL: "none",
        SU_IDLE_TTL: "0",
        SU_OTLP_URL: "http://127.0.0.1:4318/v1/traces",
        SU_SIGNERS: "2",
        SU_IDENTITIES: "/tmp/a.json,/tmp/b.json",
        SU_CLUSTER: "true",
        SU_PG_SCHEMA: "su_a",
        SU_RUNNER_HOST: "10.0.0.5",
        SU_RUNNER_PORT: "34500",
        SU_SHARDS: "64",
        SU_SHARD_LOCK_EXPIRATION_MS: "9000",
        SU_SHARD_LOCK_REFRESH_MS: "3000"
      }
      const fromEnv = yield* parse([], env)
      expect(fromEnv).toEqual({
        port: 9100,
        host: "0.0.0.0",
        dataDir: "/tmp/su-env",
        wallet: "/tmp/key.json",
        store: "pg",
        pgUrl: "postgres://u:p@localhost:5432/su",
        mode: "aggressive",
        bodyLimit: 2048,
        blockHeight: 1_500_000,
        gatewayUrl: "none",
        idleTtl: 0,
        otlpUrl: "http://127.0.0.1:4318/v1/traces",
        signers: 2,
        identities: ["/tmp/a.json", "/tmp/b.json"],
        cluster: true,
        pgSchema: "su_a",
        runnerHost: "10.0.0.5",
        runnerPort: 34500,
        shards: 64,
        shardLockExpirationMs: 9_000,
        shardLockRefreshMs: 3_000
      })
      const flags = yield* parse(
        [
          "--port",
          "9200",
          "--store",
          "memory",
          "--mode",
          "remote_confirmation",
          "--body-limit",
          "100",
          "--idle-ttl",
          "60000",
          "--identity",
          "/tmp/c.json",
          "--gateway-url",
          "http://127.0.0.1:1984"
        ],
        env
      )
      expect(flags).toMatchObject({
        port: 9200,
        store: "memory",
        mode: "remote_confirmation",
        bodyLimit: 100,
        idleTtl: 60_000,
        identities: ["/tmp/c.json"],
        gatewayUrl: "http://127.0.0.1:1984"
      })
      expect(flags.host).toBe("0.0.0.0")
      // invalid values are refused, whether from a flag or the environment
      expect(Exit.isFailure(yield* Effect.exit(parse(["--port", "70000"])))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse(["--mode", "disabled"])))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse([], { SU_STORE: "mysql" })))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse(["--body-limit", "0"])))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse([], { SU_GATEWAY_URL: "ftp://x" })))).toBe(true)
    })
  )

  it.effect("resolve derives the wallet and SQLite paths; pg needs a URL; fromEnv reads SU_*", () =>
    Effect.gen(function* () {
      const settings = yield* parse(["--data-dir", "/srv/su"])
      const config = Either.getOrThrow(Config.resolve(settings))
      expect(config.walletPath).toBe("/srv/su/wallet.json")
      expect(config.store).toEqual({ kind: "sqlite", filename: "/srv/su/su.sqlite" })
      expect(Either.isLeft(Config.resolve({ ...settings, store: "pg" }))).toBe(true)
      const pg = Either.getOrThrow(Config.resolve({ ...settings, store: "pg", pgUrl: "postgres://x" }))
      expect(pg.store).toEqual({ kind: "pg", url: "postgres://x" })
      // the node is online by default; "none" is offline; anything else must be an http(s) URL
      expect(config.gateway).toEqual({ kind: "online", url: "https://arweave.net" })
      expect(Either.getOrThrow(Config.resolve({ ...settings, gatewayUrl: "none" })).gateway).toEqual({
        kind: "offline"
      })
      expect(Either.isLeft(Config.resolve({ ...settings, gatewayUrl: "not a url" }))).toBe(true)
      const env = yield* Config.nodeConfigFromEnv.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["SU_PORT", "9300"]])))
      )
      expect(env.port).toBe(9300)
      expect(env.walletPath).toBe(Path.join("./data", "wallet.json"))
      const bad = yield* Effect.exit(
        Config.nodeConfigFromEnv.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["SU_PORT", "-1"]]))))
      )
      expect(Exit.isFailure(bad)).toBe(true)
    })
  )
})

interface Child {
  readonly process: ChildProcess
  readonly stdout: () => string
  readonly exit: Promise<number | null>
}

/** The CLI bundled once by esbuild: plain `node` starts it in about half the time tsx takes. */
const bin = bundleEntry(new URL("../src/node/bin.ts", import.meta.url))

/** Runs the bundled `src/node/bin.ts …args` directly under node (so signals reach it, not a wrapper). */
const runBin = (script: string, args: ReadonlyArray<string>): Child => {
  const child = spawnChild(process.execPath, [script, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let out = ""
  child.stdout!.on("data", (chunk) => {
    out += chunk
  })
  child.stderr!.on("data", (chunk) => {
    out += chunk
  })
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { process: child, stdout: () => out, exit }
}

const finished = async (script: string, args: ReadonlyArray<string>) => {
  const child = runBin(script, args)
  const code = await child.exit
  return { code, out: child.stdout() }
}

/**
 * Waits until the child prints its URL, checking its output each time it prints; fails if it exits first. No
 * clock: a child that hangs is ended by the test's own timeout (and killed by its finalizer).
 */
const listening = (child: Child): Promise<string> =>
  new Promise((resolve, reject) => {
    const check = () => {
      const match = /SU listening on (http:\/\/\S+)/.exec(child.stdout())
      if (match !== null) {
        stop()
        resolve(match[1]!)
      }
    }
    const exited = () => {
      stop()
      reject(new Error(`the node did not start:\n${child.stdout()}`))
    }
    const stop = () => {
      child.process.stdout!.off("data", check)
      child.process.stderr!.off("data", check)
      child.process.off("close", exited)
    }
    // registered after `runBin`'s own listeners, so `stdout()` already holds the chunk when `check` runs
    child.process.stdout!.on("data", check)
    child.process.stderr!.on("data", check)
    child.process.once("close", exited)
    check()
    if (child.process.exitCode !== null) exited()
  })

describe("Cli: the binary", () => {
  it.scopedLive(
    "--version, --help, wallet address, wallet create and a bad flag",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        fixtureWallet(dir)
        // one at a time: each start transpiles the sources, and in parallel they only compete for the CPUs
        const script = yield* bin
        const run = (...args: ReadonlyArray<string>) => Effect.promise(() => finished(script, args))
        const [version, help, address, create, bad] = yield* Effect.all([
          run("--version"),
          run("--help"),
          run("wallet", "address", "--data-dir", dir),
          run("wallet", "create", "--data-dir", dir),
          run("serve", "--port", "abc")
        ])
        expect(version.code).toBe(0)
        expect(version.out.trim()).toBe(packageVersion)
        expect(help.code).toBe(0)
        for (const flag of [
          "--port",
          "--host",
          "--data-dir",
          "--wallet",
          "--store",
          "--pg-url",
          "--mode",
          "--body-limit",
          "--block-height",
          "--gateway-url"
        ]) {
          expect(help.out).toContain(flag)
        }
        expect(help.out).toMatch(/serve/)
        expect(help.out).toMatch(/wallet/)
        expect(address.code).toBe(0)
        expect(address.out.trim()).toBe(NODE_ADDRESS)
        expect(create.code).toBe(0)
        expect(create.out).toContain(`exists  ${Path.join(dir, "wallet.json")}`)
        expect(create.out).toContain(`address ${NODE_ADDRESS}`)
        expect(bad.code).not.toBe(0)
        expect(bad.out).toContain("abc")
      }),
    120_000
  )

  it.scopedLive(
    "serve: SIGTERM during a burst finishes the requests in flight, exits 0, and the store is intact on restart",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        fixtureWallet(dir)
        const script = yield* bin
        const child = runBin(script, ["serve", "--port", "0", "--data-dir", dir, "--gateway-url", "none"])
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            if (child.process.exitCode === null) child.process.kill("SIGKILL")
          })
        )
        const url = yield* Effect.promise(() => listening(child))
        expect(child.stdout()).toContain(`wallet address  ${NODE_ADDRESS}`)
        expect(child.stdout()).toContain(`store           ${Path.join(dir, "su.sqlite")}`)
        expect((yield* request(`${url}/`)).json.address).toBe(NODE_ADDRESS)

        const process = yield* Effect.promise(() => processItem(NODE_ADDRESS))
        expect((yield* post(url, process.getRaw())).status).toBe(200)
        const items = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 100 }, (_, i) => messageItem(process.id, i + 1)))
        )
        // fire the burst, then SIGTERM once the node has acknowledged its first message of it (so the burst is
        // being served), or once the whole burst has been answered if none succeeds (the assertions then fail)
        let firstAcknowledged: () => void = () => {}
        const acknowledging = new Promise<void>((resolve) => {
          firstAcknowledged = resolve
        })
        const burst = Promise.all(
          items.map((item) =>
            fetch(`${url}/`, { method: "POST", body: item.getRaw() }).then(
              async (res) => {
                const body = await res.text()
                if (res.status === 200) firstAcknowledged()
                return { id: item.id, status: res.status, body }
              },
              (error: Error) => ({ id: item.id, status: 0, body: error.message })
            )
          )
        )
        yield* Effect.promise(() => Promise.race([acknowledging, burst]))
        child.process.kill("SIGTERM")
        const code = yield* Effect.promise(() => child.exit)
        const results = yield* Effect.promise(() => burst)
        expect(code).toBe(0)
        // the shutdown is announced, and its end too, in that order
        const out = child.stdout()
        expect(out.indexOf("SU stopping")).toBeGreaterThan(out.indexOf("SU listening"))
        expect(out.indexOf("SU stopped")).toBeGreaterThan(out.indexOf("SU stopping"))
        const acknowledged = results.filter((r) => r.status === 200).map((r) => r.id)
        // every request got an answer or was refused at the door; none was cut off mid-way with a 5xx
        for (const r of results) expect([0, 200, 503]).toContain(r.status)
        expect(acknowledged.length).toBeGreaterThan(0)

        // restart on the same directory: every acknowledged message is there, nonces contiguous, chain valid
        const node = yield* startNode({
          dataDir: dir,
          store: { kind: "sqlite", filename: Path.join(dir, "su.sqlite") }
        })
        const { edges } = yield* walk(node.url, process.id, 1000)
        const stored = edges.map((e: Edge) => e.node.message?.id)
        expect(stored[0]).toBe(process.id)
        for (const id of acknowledged) expect(stored).toContain(id)
        expect(edges.map((e) => Number(tag(e, "Nonce")))).toEqual(edges.map((_, i) => i))
        expect(
          Client.verifyScheduleChain(
            process.id,
            edges.map((e) => e.node)
          )
        ).toBeUndefined()
        // and the node takes the next message at the next nonce
        const next = yield* Effect.promise(() => messageItem(process.id, 101))
        expect((yield* post(node.url, next.getRaw())).status).toBe(200)
        const latest = (yield* request(`${node.url}/${process.id}/latest`)).json
        expect(tag(latest, "Nonce")).toBe(String(edges.length))
      }),
    120_000
  )
})
