/**
 * One writer per store, in-process: while one Layer holds a store's lock, a second one fails with
 * `StoreLocked` naming the holder (this process's pid and host); once the first is released, the second
 * takes it. For SQLite (a lock file beside the database) and PostgreSQL (an advisory lock per schema).
 * The SIGKILL case, with the real node as a child process, is in test/Cli.start.test.ts.
 */
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { StoreLocked } from "../src/errors.js"
import * as PgStore from "../src/pg/PgStore.js"
import * as StoreLock from "../src/StoreLock.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import { tempDir } from "./fixtures/node.js"
import { pgUnavailable, pgUrl, randomSchema, redacted } from "./fixtures/pg.js"

const unavailable = await pgUnavailable(pgUrl)
if (unavailable !== undefined) console.warn(`SKIPPED PostgreSQL lock tests: no server at ${redacted(pgUrl)}`)

/** Builds `lock` in a scope of its own; returns the scope, to release it. */
const hold = (lock: Layer.Layer<StoreLock.StoreLock, unknown>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(lock, scope)
    return { scope, held: context.unsafeMap.get(StoreLock.StoreLock.key) as StoreLock.StoreLock["Type"] }
  })

/** The first holds, the second is refused naming this process, and takes the lock once it is released. */
const oneWriter = (lock: () => Layer.Layer<StoreLock.StoreLock, unknown>, store: string) =>
  Effect.gen(function* () {
    const first = yield* hold(lock())
    expect(first.held.holder).toEqual(StoreLock.self())
    const refused = yield* Effect.flip(hold(lock()))
    expect(refused).toBeInstanceOf(StoreLocked)
    expect((refused as StoreLocked).store).toBe(store)
    expect((refused as StoreLocked).holder).toMatchObject({ pid: process.pid, host: Os.hostname() })
    expect((refused as StoreLocked).message).toContain(
      `${store} is in use by another node (pid ${process.pid} on host ${Os.hostname()} since `
    )
    yield* Scope.close(first.scope, Exit.void)
    const second = yield* hold(lock())
    expect(second.held.store).toBe(store)
    yield* Scope.close(second.scope, Exit.void)
  })

describe("StoreLock", () => {
  it.scopedLive("SQLite: one holder per file; the lock file sits beside the database", () =>
    Effect.gen(function* () {
      const filename = Path.join(yield* tempDir(), "nested", "su.sqlite")
      yield* oneWriter(() => SqliteStore.layerLock({ filename }), `the SQLite store ${filename}`)
      // another file is another lock
      const other = yield* hold(SqliteStore.layerLock({ filename: `${filename}-2` }))
      yield* Scope.close(other.scope, Exit.void)
    })
  )

  it.scopedLive("SQLite: an in-memory database has nothing to share, and any number of holders", () =>
    Effect.gen(function* () {
      const a = yield* hold(SqliteStore.layerLock({ filename: ":memory:" }))
      const b = yield* hold(SqliteStore.layerLock({ filename: ":memory:" }))
      expect([a.held.store, b.held.store]).toEqual(["the SQLite store :memory:", "the SQLite store :memory:"])
    })
  )

  it.scopedLive("SQLite: a directory that cannot be made is a StoreError naming it, not a hang", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(hold(SqliteStore.layerLock({ filename: "/proc/x/su.sqlite" })))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("cannot create the directory /proc/x (ENOENT)")
    })
  )

  it.scopedLive.skipIf(unavailable !== undefined)("PostgreSQL: one holder per schema", () =>
    Effect.gen(function* () {
      const schema = randomSchema("su_lock")
      yield* oneWriter(() => PgStore.layerLock({ url: pgUrl, schema }), `the PostgreSQL schema "${schema}"`)
      const other = yield* hold(PgStore.layerLock({ url: pgUrl, schema: `${schema}_b` }))
      yield* Scope.close(other.scope, Exit.void)
    })
  )
})
