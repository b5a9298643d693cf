/**
 * Cases 5–7: signed `schedule` against raw signing and raw SQLite inserts, measured in the same run.
 *
 * 5. One process, in-line signing (RSA-4096), memory store, against a raw `crypto.sign` RSA-PSS loop with a
 *    `KeyObject` parsed once, on one core.
 * 6. Eight processes at once, signing on the `SignerPool`, against the same raw single-core rate.
 * 7. Eight processes at once on SQLite (`synchronous = FULL`), signing on the `SignerPool`, against a raw
 *    better-sqlite3 loop of single-row autocommit inserts of the same rows with the same `synchronous`.
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Message } from "../../src/Assignment.js"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import * as NameService from "../../src/NameService.js"
import * as SignerPool from "../../src/node/SignerPool.js"
import * as SchedulerRegistry from "../../src/SchedulerRegistry.js"
import * as SqliteStore from "../../src/sqlite/SqliteStore.js"
import * as Wallet from "../../src/Wallet.js"
import { randomMessageId, randomProcessId } from "../../test/fixtures/assignments.js"
import { walletJwk } from "../../test/fixtures/wallet.js"
import { bestOf, type Options, type Row } from "../lib.js"

/** The part of better-sqlite3 (the driver under `@effect/sql-sqlite-node`; it ships no types) used here. */
interface RawDatabase {
  pragma(statement: string): unknown
  exec(sql: string): unknown
  prepare(sql: string): { run(...params: ReadonlyArray<unknown>): unknown }
  close(): unknown
}
const Database = createRequire(import.meta.url)("better-sqlite3") as new (file: string) => RawDatabase

const wallet = Effect.runSync(Effect.orDie(Wallet.make(walletJwk)))
const WalletLive = Layer.succeed(Wallet.Wallet, wallet)

/** The baseline: `count` RSA-PSS SHA-256 signatures (salt 32) of 48-byte inputs, one after another; ms. */
export const rawSign = (count: number): number => {
  const data = Crypto.randomBytes(48)
  const start = performance.now()
  for (let i = 0; i < count; i++) {
    data[0] = i & 0xff
    Crypto.sign("sha256", data, {
      key: wallet.privateKey,
      padding: Crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32
    })
  }
  return performance.now() - start
}

/** A registry (plus a signer pool when `pooled`) over `store`, built in its own scope. */
const open = async (store: Layer.Layer<AssignmentStore.AssignmentStore, unknown>, pooled: boolean) => {
  const scope = Effect.runSync(Scope.make())
  const base = Layer.mergeAll(NameService.layer, WalletLive, Layer.orDie(store))
  const registry = pooled
    ? Layer.unwrapEffect(Effect.map(SignerPool.SignerPool, (signer) => SchedulerRegistry.layer({ signer }))).pipe(
        Layer.provideMerge(Layer.orDie(SignerPool.layer()).pipe(Layer.provide(WalletLive)))
      )
    : SchedulerRegistry.layer()
  const context = await Effect.runPromise(Layer.buildWithScope(Layer.provide(registry, base), scope))
  return {
    registry: Context.get(context, SchedulerRegistry.SchedulerRegistry),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** Schedules `perProcess` messages on each of `processes` new processes, all processes at once; ms. */
const scheduleRun = (
  registry: SchedulerRegistry.SchedulerRegistry["Type"],
  processes: number,
  perProcess: number
): Promise<number> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const schedulers = yield* Effect.forEach(Array.from({ length: processes }, randomProcessId), (p) =>
        registry.find(p, true)
      )
      const messages = schedulers.map(() =>
        Array.from({ length: perProcess }, () => new Message({ id: randomMessageId(), raw: Crypto.randomBytes(100) }))
      )
      const start = performance.now()
      yield* Effect.forEach(
        schedulers,
        (s, i) => Effect.forEach(messages[i]!, (m) => s.schedule(m), { discard: true }),
        { concurrency: "unbounded", discard: true }
      )
      return performance.now() - start
    })
  )

/** Case 5. */
const oneProcess = async (options: Options): Promise<Row> => {
  const n = options.quick ? 40 : 600
  const { registry, close } = await open(AssignmentStore.layerMemory, false)
  await scheduleRun(registry, 1, 20) // warm up
  rawSign(20)
  const best = await bestOf(
    options.quick ? 2 : 3,
    () => scheduleRun(registry, 1, n),
    async () => rawSign(n)
  )
  await close()
  return {
    id: "5",
    name: "signed `schedule`, one process, RSA-4096 (in-line signer, memory store)",
    unit: "assignments/s",
    figure: (n / best.candidate) * 1000,
    baseline: (n / best.baseline) * 1000,
    baselineName: "raw `crypto.sign` RSA-PSS loop, `KeyObject` parsed once, one core",
    target: { op: ">=", ratio: 0.9 }
  }
}

/** Case 6. */
const eightProcesses = async (options: Options): Promise<Row> => {
  const per = options.quick ? 15 : 250
  const { registry, close } = await open(AssignmentStore.layerMemory, true)
  await scheduleRun(registry, 8, 5) // warm up the workers
  const best = await bestOf(
    options.quick ? 2 : 3,
    () => scheduleRun(registry, 8, per),
    async () => rawSign(8 * per)
  )
  await close()
  return {
    id: "6",
    name: `signed \`schedule\`, 8 processes at once (\`SignerPool\`, ${Os.availableParallelism()} worker threads, memory store)`,
    unit: "assignments/s",
    figure: ((8 * per) / best.candidate) * 1000,
    baseline: ((8 * per) / best.baseline) * 1000,
    baselineName: "raw `crypto.sign` rate on one core",
    target: { op: ">=", ratio: 1.7 }
  }
}

/** The baseline of case 7: `count` single-row autocommit inserts of rows like the store's; ms. */
const rawInserts = (dir: string, count: number): number => {
  const file = Path.join(dir, `raw-${Crypto.randomBytes(4).toString("hex")}.sqlite`)
  const db = new Database(file)
  try {
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = FULL")
    db.exec(`CREATE TABLE assignments (process_id TEXT NOT NULL, slot BIGINT NOT NULL, epoch BIGINT NOT NULL,
      timestamp BIGINT NOT NULL, block_height BIGINT NOT NULL, hash_chain TEXT NOT NULL, assignment_id TEXT NOT NULL,
      message_id TEXT NOT NULL, assignment BLOB NOT NULL, message BLOB, PRIMARY KEY (process_id, slot),
      UNIQUE (assignment_id), UNIQUE (process_id, message_id))`)
    db.exec("CREATE INDEX assignments_process_timestamp ON assignments (process_id, timestamp, slot)")
    db.exec("CREATE INDEX assignments_message_id ON assignments (message_id)")
    const insert = db.prepare("INSERT INTO assignments VALUES (?, ?, 0, ?, 0, ?, ?, ?, ?, ?)")
    const p = randomProcessId()
    const rows = Array.from({ length: count }, (_, slot) => [
      p,
      slot,
      Date.now() + slot,
      randomMessageId(),
      randomMessageId(),
      randomMessageId(),
      Crypto.randomBytes(1_150),
      Crypto.randomBytes(100)
    ])
    const start = performance.now()
    for (const row of rows) insert.run(...row)
    return performance.now() - start
  } finally {
    db.close()
    for (const suffix of ["", "-wal", "-shm"]) Fs.rmSync(file + suffix, { force: true })
  }
}

/** Case 7. */
const durable = async (options: Options): Promise<Row> => {
  const per = options.quick ? 8 : 120
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "su-bench-"))
  try {
    const { registry, close } = await open(
      SqliteStore.layer({ filename: Path.join(dir, "su.sqlite"), synchronous: "FULL" }),
      true
    )
    await scheduleRun(registry, 8, 3)
    const best = await bestOf(
      options.quick ? 1 : 2,
      () => scheduleRun(registry, 8, per),
      async () => rawInserts(dir, 8 * per)
    )
    await close()
    return {
      id: "7",
      name: "durable `schedule` on SQLite (WAL, `synchronous = FULL`), 8 processes (`SignerPool`)",
      unit: "assignments/s",
      figure: ((8 * per) / best.candidate) * 1000,
      baseline: ((8 * per) / best.baseline) * 1000,
      baselineName: "raw better-sqlite3 autocommit insert loop, same rows, `synchronous = FULL`",
      target: { op: ">=", ratio: 0.5 }
    }
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

export const cases = { oneProcess, eightProcesses, durable }
