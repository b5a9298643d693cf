/**
 * Start-up with the real binary as a child process (issue 11, items 2 and 6):
 * - every invalid configuration or failed start prints ONE line naming the setting and its fix, exits 1, with
 *   no stack trace and no "SU stopped" line;
 * - `wallet address` never creates a key, `wallet create` never overwrites one; key file permissions;
 * - one writer per store: a second node on the same SQLite file or PostgreSQL schema is refused, naming the
 *   holder's pid and host; a SIGKILLed holder does not block a restart.
 */
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { bin, type Child, finished, listening, scopedBin } from "./fixtures/bin.js"
import { fixtureWallet, request, tempDir } from "./fixtures/node.js"
import { dropSchemaOnClose, pgUnavailable, pgUrl, randomSchema, redacted } from "./fixtures/pg.js"

const unavailable = await pgUnavailable(pgUrl)
if (unavailable !== undefined) console.warn(`SKIPPED PostgreSQL start-up tests: no server at ${redacted(pgUrl)}`)

const NODE_ADDRESS = "b1ayEFhXXqrS30fIn5k8ARPglHDKWXkVp_0wbTwo5UI"
const OFFLINE = ["--gateway-url", "none"]
/** Offline on any free port (a flag given twice keeps its first value, so the port is added only here). */
const ANY_PORT = [...OFFLINE, "--port", "0"]

/** The failure is one line, starting with `prefix`, naming each of `parts`; exit 1; no trace, no "stopped". */
const refusedWith = (
  result: { readonly code: number | null; readonly out: string },
  prefix: string,
  parts: ReadonlyArray<string>
) => {
  expect(result.code, result.out).toBe(1)
  const lines = result.out.trim().split("\n")
  expect(lines, result.out).toHaveLength(1)
  expect(lines[0]!.startsWith(prefix), result.out).toBe(true)
  for (const part of parts) expect(lines[0]).toContain(part)
  expect(result.out).not.toMatch(/SU stopped|^\s+at /m)
}

/** A TCP server on a free port of 127.0.0.1, closed with the scope; returns the port. */
const busyPort = Effect.acquireRelease(
  Effect.async<Net.Server>((resume) => {
    const server = Net.createServer().listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
).pipe(Effect.map((server) => (server.address() as Net.AddressInfo).port))

/** A directory no one may write, root included: a read-only sysfs directory as root, else a mode 0500 one. */
const unwritableDir = (dir: string): string => {
  if (process.getuid?.() === 0) return "/sys/fs"
  const locked = Path.join(dir, "locked")
  Fs.mkdirSync(locked, { mode: 0o500 })
  return locked
}

/** Starts `su serve …args`, SIGKILLed when the scope closes if still running. */
const serve = (script: string, args: ReadonlyArray<string>) => scopedBin(script, ["serve", ...ANY_PORT, ...args])

/** SIGKILLs a node and waits until it is gone. */
const kill = (child: Child) =>
  Effect.promise(async () => {
    child.process.kill("SIGKILL")
    await child.exit
  })

describe("Cli: start-up failures", () => {
  it.scopedLive(
    "each invalid setting or failed start is one line naming the setting and the fix, exit 1",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const wallet = fixtureWallet(dir)
        const garbage = Path.join(dir, "garbage.json")
        Fs.writeFileSync(garbage, "not json at all", { mode: 0o600 })
        const wrong = Path.join(dir, "wrong.json")
        Fs.writeFileSync(wrong, JSON.stringify({ kty: "RSA", n: "abc" }), { mode: 0o600 })
        const port = yield* busyPort
        const script = yield* bin
        // one at a time: each start costs a second or two of CPU
        const run = (...args: ReadonlyArray<string>) => Effect.promise(() => finished(script, ["serve", ...args]))
        const memory = ["--store", "memory", "--wallet", wallet, ...OFFLINE]

        refusedWith(yield* run("--store", "pg", ...ANY_PORT), "su: cannot start: --store pg needs --pg-url", [
          "SU_PG_URL",
          "--store sqlite"
        ])
        refusedWith(yield* run("--cluster", ...ANY_PORT), "su: cannot start: --cluster needs PostgreSQL", [
          "--store pg and --pg-url",
          "drop --cluster"
        ])
        refusedWith(
          yield* run(...memory, "--port", String(port)),
          `su: cannot start: --port ${port}: cannot listen on 127.0.0.1:${port}`,
          ["EADDRINUSE", "choose another --port (SU_PORT)"]
        )
        refusedWith(
          yield* run("--store", "pg", "--pg-url", "postgres://postgres:secret@127.0.0.1:1/test", ...ANY_PORT),
          "su: cannot start: --pg-url postgres://postgres:***@127.0.0.1:1/test: cannot open the store",
          ["ECONNREFUSED", "check that PostgreSQL runs"]
        )
        refusedWith(
          yield* run("--store", "memory", "--wallet", garbage, ...ANY_PORT),
          `su: cannot start: --wallet ${garbage}: the key file is not valid JSON`,
          ["point --wallet (SU_WALLET) at a valid Arweave JWK key file"]
        )
        refusedWith(
          yield* run("--store", "memory", "--wallet", wrong, ...ANY_PORT),
          `su: cannot start: --wallet ${wrong}: missing or empty field "e"`,
          ["--wallet (SU_WALLET)"]
        )
        // today's main hangs here: fs.mkdir(…, { recursive: true }) loops forever under /proc on Node 20
        refusedWith(yield* run("--data-dir", "/proc/x", ...ANY_PORT), "su: cannot start: --data-dir /proc/x: ", [
          "ENOENT",
          "choose a writable --data-dir (SU_DATA_DIR)"
        ])
        const locked = unwritableDir(dir)
        refusedWith(yield* run("--data-dir", locked, ...ANY_PORT), `su: cannot start: --data-dir ${locked}: `, [
          "choose a writable --data-dir (SU_DATA_DIR)"
        ])
        expect(Fs.existsSync(Path.join(locked, "wallet.json"))).toBe(false)
        // a file where a directory is expected fails in the flag parser, still in one line
        Fs.writeFileSync(Path.join(dir, "file"), "")
        refusedWith(yield* run("--data-dir", Path.join(dir, "file", "sub"), ...ANY_PORT), "su: cannot start: ", [
          "ENOTDIR",
          "--data-dir"
        ])
        // --log-level debug adds the whole cause after the line
        const debug = yield* Effect.promise(() =>
          finished(script, ["--log-level", "debug", "serve", ...memory, "--port", String(port)])
        )
        expect(debug.code).toBe(1)
        expect(debug.out).toContain(`su: cannot start: --port ${port}`)
        expect(debug.out).toMatch(/DEBUG .*the failure in full/)
        expect(debug.out).toMatch(/^\s+at /m)
      }),
    240_000
  )

  it.scopedLive(
    "wallet address never creates a key; wallet create makes a 0600 one and never overwrites",
    () =>
      Effect.gen(function* () {
        const dir = Path.join(yield* tempDir(), "typo")
        const key = Path.join(dir, "wallet.json")
        const script = yield* bin
        const wallet = (...args: ReadonlyArray<string>) =>
          Effect.promise(() => finished(script, ["wallet", ...args, "--data-dir", dir]))
        refusedWith(yield* wallet("address"), `su wallet address: --data-dir ${dir} (wallet ${key})`, [
          "the key file does not exist",
          "su wallet create"
        ])
        expect(Fs.existsSync(key)).toBe(false)
        const created = yield* wallet("create")
        expect(created.code, created.out).toBe(0)
        const address = /^address (\S{43})$/m.exec(created.out)?.[1]
        expect(created.out).toContain(`created ${key}`)
        expect(Fs.statSync(key).mode & 0o777).toBe(0o600)
        const before = Fs.readFileSync(key, "utf8")
        refusedWith(yield* wallet("create"), `su wallet create: --data-dir ${dir} (wallet ${key})`, [
          "the key file already exists; it is not overwritten"
        ])
        expect(Fs.readFileSync(key, "utf8")).toBe(before)
        const printed = yield* wallet("address")
        expect(printed.code).toBe(0)
        expect(printed.out.trim()).toBe(address)
      }),
    120_000
  )

  it.scopedLive(
    "a key file readable by others: a warning naming the fix, or refused under --strict-key-perms",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const key = fixtureWallet(dir)
        Fs.chmodSync(key, 0o644)
        const script = yield* bin
        const args = ["--data-dir", dir, "--store", "memory"]
        refusedWith(
          yield* Effect.promise(() => finished(script, ["serve", ...ANY_PORT, ...args, "--strict-key-perms"])),
          `su: cannot start: --data-dir ${dir} (wallet ${key}): the key file is readable by group or others (mode 0644)`,
          [`run chmod 600 ${key}`]
        )
        const child = yield* serve(script, args)
        const url = yield* Effect.promise(() => listening(child))
        expect(child.stdout()).toMatch(
          new RegExp(`WARN .*Wallet ${key}: the key file is readable by group or others \\(mode 0644\\); run chmod 600`)
        )
        expect((yield* request(`${url}/`)).json.address).toBe(NODE_ADDRESS)
        // 0600: no warning
        Fs.chmodSync(key, 0o600)
        yield* kill(child)
        const quiet = yield* serve(script, args)
        yield* Effect.promise(() => listening(quiet))
        expect(quiet.stdout()).not.toContain("WARN")
      }),
    120_000
  )
})

/** The second node is refused naming the first one's pid and host; the first, SIGKILLed, frees the store. */
const oneWriter = (script: string, args: ReadonlyArray<string>, setting: string, store: string) =>
  Effect.gen(function* () {
    const first = yield* serve(script, args)
    yield* Effect.promise(() => listening(first))
    const second = yield* Effect.promise(() => finished(script, ["serve", ...ANY_PORT, ...args]))
    refusedWith(second, `su: cannot start: ${setting}: ${store} is in use by another node`, [
      `(pid ${first.process.pid} on host ${Os.hostname()} since `,
      "stop that node first"
    ])
    // a stale lock: the holder dies without releasing anything
    yield* kill(first)
    const restarted = yield* serve(script, args)
    const url = yield* Effect.promise(() => listening(restarted))
    expect((yield* request(`${url}/`)).json.address).toBe(NODE_ADDRESS)
  })

describe("Cli: one writer per store", () => {
  it.scopedLive(
    "SQLite: a second node on the data directory is refused; a SIGKILLed holder does not block a restart",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        fixtureWallet(dir)
        const script = yield* bin
        yield* oneWriter(
          script,
          ["--data-dir", dir],
          `--data-dir ${dir}`,
          `the SQLite store ${Path.join(dir, "su.sqlite")}`
        )
      }),
    180_000
  )

  it.scopedLive.skipIf(unavailable !== undefined)(
    "PostgreSQL: a second node on the schema is refused; a SIGKILLed holder does not block a restart",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const wallet = fixtureWallet(dir)
        const schema = randomSchema("su_start")
        yield* Layer.build(dropSchemaOnClose(schema).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(pgUrl) }))))
        const script = yield* bin
        yield* oneWriter(
          script,
          ["--store", "pg", "--pg-url", pgUrl, "--pg-schema", schema, "--wallet", wallet],
          `--pg-schema ${schema}`,
          `the PostgreSQL schema "${schema}"`
        )
      }),
    180_000
  )
})
