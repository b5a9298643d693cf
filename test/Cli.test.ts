/**
 * The command line: configuration precedence (flag > environment > default) in-process, and the real binary as
 * a child process: `--help`, `--version`, `wallet`, and `serve` with a graceful SIGTERM under load.
 */

import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Command, HelpDoc, type ValidationError } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Exit } from "effect"
import * as Config from "../src/node/Config.js"
import * as SignerPool from "../src/node/SignerPool.js"
import { bin, finished, listening, scopedBin } from "./fixtures/bin.js"
import * as Client from "./fixtures/client.js"
import { messageItem, processItem } from "./fixtures/dataItems.js"
import { fixtureWallet, post, request, startNode, tempDir } from "./fixtures/node.js"
import { type Edge, tag, walk } from "./fixtures/su.js"

/** The version `--version` must print: the package's own. */
const packageVersion = (
  JSON.parse(Fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version

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
        signers: SignerPool.defaultSize(), // one per core, 0 on a single core
        identities: [],
        cluster: false,
        pgSchema: undefined,
        runnerHost: "localhost",
        runnerPort: 34431,
        shards: 300,
        shardLockExpirationMs: 6_000,
        shardLockRefreshMs: 2_000,
        maxPageBytes: 16 * 1024 * 1024,
        headersTimeout: 30_000,
        requestTimeout: 120_000,
        logFormat: "pretty",
        uploadUrl: undefined,
        publicUrl: undefined,
        locationTtl: 3_600_000,
        strictKeyPerms: false,
        uploadConcurrency: 8,
        uploadTimeoutMs: 30_000
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
        SU_SHARD_LOCK_REFRESH_MS: "3000",
        SU_MAX_PAGE_BYTES: "1048576",
        SU_HEADERS_TIMEOUT: "5000",
        SU_REQUEST_TIMEOUT: "60000",
        SU_LOG_FORMAT: "json",
        SU_UPLOAD_URL: "http://127.0.0.1:1985",
        SU_PUBLIC_URL: "https://su.example.com",
        SU_LOCATION_TTL: "600000",
        SU_STRICT_KEY_PERMS: "true",
        SU_UPLOAD_CONCURRENCY: "3",
        SU_UPLOAD_TIMEOUT_MS: "5000"
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
        shardLockRefreshMs: 3_000,
        maxPageBytes: 1_048_576,
        headersTimeout: 5_000,
        requestTimeout: 60_000,
        logFormat: "json",
        uploadUrl: "http://127.0.0.1:1985",
        publicUrl: "https://su.example.com",
        locationTtl: 600_000,
        strictKeyPerms: true,
        uploadConcurrency: 3,
        uploadTimeoutMs: 5_000
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
      // one line naming the flag, the rule and the value, not a schema tree
      const port = yield* Effect.flip(parse(["--port", "70000"]))
      expect(
        HelpDoc.toAnsiText((port as ValidationError.ValidationError & { error: HelpDoc.HelpDoc }).error).trim()
      ).toBe("--port must be 0–65535, got 70000")
      expect(Exit.isFailure(yield* Effect.exit(parse(["--mode", "disabled"])))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse([], { SU_STORE: "mysql" })))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse(["--body-limit", "0"])))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse([], { SU_GATEWAY_URL: "ftp://x" })))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse(["--max-page-bytes", "0"])))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse([], { SU_LOG_FORMAT: "xml" })))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse(["--request-timeout", "-1"])))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse(["--location-ttl", "0"])))).toBe(true)
    })
  )

  it.effect("--upload-url falls back to the legacy UPLOAD_NODE_URL; --public-url needs it and a bare origin", () =>
    Effect.gen(function* () {
      expect((yield* parse([], { UPLOAD_NODE_URL: "http://legacy:1984" })).uploadUrl).toBe("http://legacy:1984")
      const both = { UPLOAD_NODE_URL: "http://legacy:1984", SU_UPLOAD_URL: "http://new:1984" }
      expect((yield* parse([], both)).uploadUrl).toBe("http://new:1984")
      expect((yield* parse(["--upload-url", "http://flag:1984"], both)).uploadUrl).toBe("http://flag:1984")

      const settings = yield* parse(["--public-url", "https://su.example.com/", "--upload-url", "http://up:1984"])
      expect(Either.getOrThrow(Config.resolve(settings))).toMatchObject({
        publicUrl: "https://su.example.com",
        upload: { url: "http://up:1984" },
        locationTtlMs: 3_600_000
      })
      const refused = (s: Config.Settings) => Either.flip(Config.resolve(s)).pipe(Either.getOrThrow)
      expect(JSON.stringify(refused({ ...settings, uploadUrl: undefined }))).toMatch(/--public-url needs --upload-url/)
      expect(JSON.stringify(refused({ ...settings, publicUrl: "https://su.example.com/su" }))).toMatch(/bare origin/)
      expect(JSON.stringify(refused({ ...settings, uploadUrl: "ftp://up" }))).toMatch(/--upload-url must be an http/)
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
      // the page bound and the timeouts reach the node; headers may not take longer than the whole request
      expect(config).toMatchObject({
        maxPageBytes: 16 * 1024 * 1024,
        headersTimeoutMs: 30_000,
        requestTimeoutMs: 120_000
      })
      expect(Either.isLeft(Config.resolve({ ...settings, headersTimeout: 5_000, requestTimeout: 1_000 }))).toBe(true)
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

  it.effect("signers: one per core by default, at most 4 per core; an empty variable is the default", () =>
    Effect.gen(function* () {
      expect((yield* parse([], { SU_SIGNERS: "" })).signers).toBe(SignerPool.defaultSize())
      expect((yield* parse([], { SU_SIGNERS: " 1 " })).signers).toBe(1)
      expect((yield* parse(["--signers", "0"])).signers).toBe(0)
      const max = 4 * Os.availableParallelism()
      expect((yield* parse(["--signers", String(max)])).signers).toBe(max)
      expect(Exit.isFailure(yield* Effect.exit(parse(["--signers", String(max + 1)])))).toBe(true)
      for (const bad of ["abc", "1e1", "0x3", "2.0", "-1", String(max + 1)]) {
        expect(Exit.isFailure(yield* Effect.exit(parse([], { SU_SIGNERS: bad })))).toBe(true)
      }
    })
  )

  it.effect("uploads: --upload-url > SU_UPLOAD_URL > UPLOAD_NODE_URL; remote_confirmation needs one", () =>
    Effect.gen(function* () {
      expect((yield* parse([], { UPLOAD_NODE_URL: "https://legacy.example/" })).uploadUrl).toBe(
        "https://legacy.example/"
      )
      const both = { UPLOAD_NODE_URL: "https://legacy.example", SU_UPLOAD_URL: "https://su.example" }
      expect((yield* parse([], both)).uploadUrl).toBe("https://su.example")
      expect((yield* parse(["--upload-url", "http://127.0.0.1:1984"], both)).uploadUrl).toBe("http://127.0.0.1:1984")
      expect(Exit.isFailure(yield* Effect.exit(parse(["--upload-url", "ftp://x"])))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse([], { UPLOAD_NODE_URL: "not a url" })))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse(["--upload-concurrency", "0"])))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(parse([], { SU_UPLOAD_TIMEOUT_MS: "-5" })))).toBe(true)

      const settings = yield* parse(["--data-dir", "/srv/su", "--upload-url", "https://up.example"])
      expect(Either.getOrThrow(Config.resolve(settings)).upload).toEqual({
        url: "https://up.example",
        concurrency: 8,
        timeoutMs: 30_000
      })
      expect(Either.getOrThrow(Config.resolve({ ...settings, uploadUrl: undefined })).upload).toBeUndefined()
      // remote_confirmation without a bundler would be local_confirmation in disguise: refused with one line
      const refused = Config.resolve({ ...settings, mode: "remote_confirmation", uploadUrl: undefined })
      expect(Either.isLeft(refused) && HelpDoc.toAnsiText(refused.left.error).trim()).toBe(
        "--mode remote_confirmation needs --upload-url (or SU_UPLOAD_URL / UPLOAD_NODE_URL): a bundler to confirm"
      )
      expect(Either.isRight(Config.resolve({ ...settings, mode: "remote_confirmation" }))).toBe(true)
      expect(Either.isLeft(Config.resolve({ ...settings, cluster: true, store: "pg", pgUrl: "postgres://x" }))).toBe(
        true
      )
    })
  )
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
          "--gateway-url",
          "--max-page-bytes",
          "--headers-timeout",
          "--request-timeout",
          "--log-format",
          "--strict-key-perms"
        ]) {
          expect(help.out).toContain(flag)
        }
        expect(help.out).toMatch(/serve/)
        expect(help.out).toMatch(/wallet/)
        expect(address.code).toBe(0)
        expect(address.out.trim()).toBe(NODE_ADDRESS)
        // an existing key is never overwritten (test/Cli.start.test.ts covers creation)
        expect(create.code).toBe(1)
        expect(create.out).toContain(`(wallet ${Path.join(dir, "wallet.json")}): the key file already exists`)
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
        const child = yield* scopedBin(script, ["serve", "--port", "0", "--data-dir", dir, "--gateway-url", "none"])
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
