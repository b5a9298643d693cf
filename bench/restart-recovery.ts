/**
 * What a node restart costs a scheduler whose process already has 100,000 assignments: the time
 * `SchedulerRegistry.find(p, true)` takes to start the scheduler (it recovers the slot and hash chain from the
 * store before it returns), on SQLite and on PostgreSQL.
 *
 * Seeds 100,000 assignments of one process (unsigned, with a valid hash chain, 1,100-byte data items and 1 KiB
 * bodies, as real ones are) through the store's group commit, closes the store, then restarts RESTARTS times:
 * each restart opens the store (with the migration check), builds a registry, and times `find(p, true)` (checking
 * that the scheduler is at the last slot) and `find` of a process with no assignments (the baseline), taking
 * turns at being the first call after the open (which also prepares the recovery query); then `latest(p)` on its
 * own and the first `schedule` (checking slot and chain), and closes everything. Figures are medians.
 *
 * Run: `npx tsx bench/restart-recovery.ts [rows]`. PostgreSQL: `PG_URL` or postgres://postgres@127.0.0.1:5432/test,
 * in a throwaway schema that is dropped at the end; skipped (with the reason) when no server answers. Figures go
 * in docs/storage.md ("Restart recovery at 100,000 assignments").
 */
import * as Path from "node:path"
import { Context, Effect, Layer } from "effect"
import { Message, nextHashChain } from "../src/Assignment.js"
import * as AssignmentStore from "../src/AssignmentStore.js"
import type { StoreError } from "../src/errors.js"
import * as NameService from "../src/NameService.js"
import type { ProcessId } from "../src/ProcessId.js"
import * as PgStore from "../src/pg/PgStore.js"
import * as SchedulerRegistry from "../src/SchedulerRegistry.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import { appendFakeChain, randomMessageId, randomProcessId } from "../test/fixtures/assignments.js"
import { WalletTest } from "../test/fixtures/wallet.js"
import { fmt, median, printHeader, printRow, scratchDir, time, withPgSchema } from "./store-measure.js"

const ROWS = Number(process.argv[2] ?? 100_000)
/** Restarts per store: half start `p` first, half a new process first. */
const RESTARTS = 20

type StoreLayer = (seeding: boolean) => Layer.Layer<AssignmentStore.AssignmentStore, StoreError>

/** Seeds ROWS assignments of a new process in a store opened (and closed) for it; returns the process. */
const seed = (layer: StoreLayer) =>
  Effect.gen(function* () {
    const p = randomProcessId()
    const { ms } = yield* time(
      Effect.flatMap(AssignmentStore.AssignmentStore, (store) =>
        appendFakeChain(store, p, ROWS, { rawBytes: 1_100, bodyBytes: 1_024 })
      ).pipe(Effect.provide(layer(true)))
    )
    return { p, seconds: ms / 1_000 }
  })

/** What one restart measured (ms). */
interface Restart {
  readonly open: number
  /** `find(p, true)` as the first call after opening (undefined when the new process went first). */
  readonly findFirst: number | undefined
  /** `find(p, true)` after the registry already started another scheduler. */
  readonly findWarm: number | undefined
  /** `find(new process, true)` as the first call after opening (undefined when `p` went first). */
  readonly emptyFirst: number | undefined
  readonly latest: number
  readonly schedule: number
}

/**
 * One restart on a closed store whose process `p` has its last assignment at `slot`: open the store, build a
 * registry, time `find(p, true)` and `find` of a new process (`p` first when `pFirst`), `latest(p)` on its own,
 * and the first `schedule` of `p` (checking its slot and chain); close everything.
 */
const restart = (layer: StoreLayer, p: ProcessId, slot: number, pFirst: boolean) =>
  Effect.scoped(
    Effect.gen(function* () {
      const opened = yield* time(Layer.build(layer(false)))
      const registryContext = yield* Layer.build(
        SchedulerRegistry.layer().pipe(
          Layer.provide(Layer.mergeAll(NameService.layer, Layer.orDie(WalletTest), Layer.succeedContext(opened.value)))
        )
      )
      const registry = Context.get(registryContext, SchedulerRegistry.SchedulerRegistry)
      const findEmpty = time(registry.find(randomProcessId(), true))
      const empty = pFirst ? undefined : yield* findEmpty
      const found = yield* time(registry.find(p, true))
      if (pFirst) yield* findEmpty
      const info = yield* found.value.info
      if (info.slot !== slot || info.assignmentId === undefined || info.hashChain === undefined) {
        return yield* Effect.dieMessage(`recovered slot ${info.slot}, expected ${slot}`)
      }
      const latest = yield* time(Context.get(opened.value, AssignmentStore.AssignmentStore).latest(p))
      const first = yield* time(found.value.schedule(new Message({ id: randomMessageId() })))
      if (first.value.slot !== slot + 1 || first.value.hashChain !== nextHashChain(info.assignmentId, info.hashChain)) {
        return yield* Effect.dieMessage(`the first schedule after the restart got slot ${first.value.slot}`)
      }
      return {
        open: opened.ms,
        findFirst: pFirst ? found.ms : undefined,
        findWarm: pFirst ? undefined : found.ms,
        emptyFirst: empty?.ms,
        latest: latest.ms,
        schedule: first.ms
      } satisfies Restart
    })
  )

const run = (name: string, layer: StoreLayer) =>
  Effect.gen(function* () {
    const { p, seconds } = yield* seed(layer)
    console.error(`${name}: seeded ${ROWS.toLocaleString("en")} assignments in ${seconds.toFixed(0)} s`)
    const runs: Array<Restart> = []
    for (let i = 0; i < RESTARTS; i++) runs.push(yield* restart(layer, p, ROWS - 1 + i, i % 2 === 0))
    const of = (key: keyof Restart) => runs.flatMap((r) => (r[key] === undefined ? [] : [r[key]]))
    const cells = [
      name,
      ROWS.toLocaleString("en"),
      fmt(median(of("open"))),
      fmt(median(of("findFirst"))),
      fmt(Math.max(...of("findFirst"))),
      fmt(median(of("emptyFirst"))),
      fmt(median(of("findWarm"))),
      fmt(median(of("latest"))),
      fmt(median(of("schedule")))
    ]
    yield* printRow(cells)
  })

const program = Effect.gen(function* () {
  yield* printHeader([
    "store",
    "rows",
    "open (ms)",
    "find(p, true), first call (ms)",
    "find(p, true), first call, max (ms)",
    "find(new process, true), first call (ms)",
    "find(p, true), after another find (ms)",
    "latest(p) (ms)",
    "first schedule (ms)"
  ])
  const dir = yield* scratchDir("su-restart-bench-")
  const filename = Path.join(dir, "su.sqlite")
  // seeded with synchronous NORMAL and big batches to save time; restarted with the defaults (FULL), as a node is
  yield* run("SQLite", (seeding) =>
    SqliteStore.layer(seeding ? { filename, synchronous: "NORMAL", batchSize: 1_000 } : { filename })
  )

  yield* withPgSchema((url, schema) =>
    run("PostgreSQL", (seeding) => PgStore.layer({ url, schema, ...(seeding ? { batchSize: 1_000 } : {}) }))
  )
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
