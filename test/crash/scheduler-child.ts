/**
 * Child process of test/crash.test.ts: a node that runs a SchedulerRegistry (NameService, the wallet in the
 * JWK file argv[2], the SQLite store at argv[3] with `synchronous: "NORMAL"`) and schedules fresh messages for
 * the processes argv[4..], CALLERS concurrent callers per process, until it is killed. It prints on stdout:
 *
 * - `recovered <process> <slot> <assignment id> <hash chain>` once per process, when `find(p, true)` has
 *   started its scheduler: the head it recovered from the store (`-1 - -` for an empty schedule), printed
 *   before anything is scheduled;
 * - `ack <process> <slot> <assignment id> <hash chain> <timestamp>` after each `schedule` returned: an
 *   acknowledged assignment.
 *
 * It starts once its modules are loaded and a line ("go") arrives on stdin, so the parent can start the next
 * child while the current one runs. Any failure ends it with exit code 1 and the cause on stderr. It exits when
 * its stdin closes (the parent is gone), so it never outlives the test. The test runs it bundled, with plain `node`
 * (test/fixtures/child.ts).
 */
import * as Crypto from "node:crypto"
import { Effect, Layer } from "effect"
import { Message } from "../../src/Assignment.js"
import * as NameService from "../../src/NameService.js"
import type * as Scheduler from "../../src/Scheduler.js"
import * as SchedulerRegistry from "../../src/SchedulerRegistry.js"
import * as SqliteStore from "../../src/sqlite/SqliteStore.js"
import * as Wallet from "../../src/Wallet.js"
import { randomMessageId } from "../fixtures/assignments.js"

/** Concurrent callers per process: enough to keep every scheduler's mailbox non-empty. */
const CALLERS = 4

const [walletFile, filename, ...processIds] = process.argv.slice(2)
if (walletFile === undefined || filename === undefined || processIds.length === 0) {
  process.stderr.write("usage: scheduler-child.ts <wallet file> <sqlite file> <process id>...\n")
  process.exit(1)
}
process.stdin.on("end", () => process.exit(2))
// Loaded: wait for the parent's "go" line before touching the store (see test/crash.test.ts, standby children).
await new Promise<void>((resolve) => {
  let input = ""
  process.stdin.setEncoding("utf8")
  process.stdin.on("data", (chunk: string) => {
    input += chunk
    if (input.includes("\n")) resolve()
  })
})

const print = (line: string) => Effect.sync(() => process.stdout.write(`${line}\n`))

/** Schedules fresh messages (64-byte bodies) one after another, printing each acknowledged assignment. */
const caller = (scheduler: Scheduler.Scheduler) =>
  Effect.forever(
    Effect.suspend(() => scheduler.schedule(new Message({ id: randomMessageId(), raw: Crypto.randomBytes(64) }))).pipe(
      Effect.flatMap((a) => print(`ack ${a.processId} ${a.slot} ${a.id} ${a.hashChain} ${a.timestamp}`))
    )
  )

const program = Effect.gen(function* () {
  const schedulers = yield* Effect.forEach(processIds, (p) => SchedulerRegistry.find(p, true))
  for (const scheduler of schedulers) {
    const info = yield* scheduler.info
    yield* print(`recovered ${info.processId} ${info.slot} ${info.assignmentId ?? "-"} ${info.hashChain ?? "-"}`)
  }
  const callers = schedulers.flatMap((scheduler) => Array.from({ length: CALLERS }, () => scheduler))
  return yield* Effect.forEach(callers, caller, { concurrency: "unbounded", discard: true })
})

const layer = SchedulerRegistry.layer().pipe(
  Layer.provide(
    Layer.mergeAll(
      NameService.layer,
      Wallet.layerFile(walletFile),
      SqliteStore.layer({ filename, synchronous: "NORMAL" })
    )
  )
)

Effect.runPromise(Effect.provide(program, layer)).catch((error: unknown) => {
  process.stderr.write(`scheduler-child failed: ${String(error)}\n`)
  process.exit(1)
})
