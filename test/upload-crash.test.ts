/**
 * Crash test of durable uploads (issue 14, item 3): the real node (`src/node/bin.ts`, bundled, run by plain Node)
 * in `--mode remote_confirmation` on a SQLite data directory, uploading to the Arweave double's bundler and
 * looking items up on its gateway, is killed with SIGKILL RESTARTS times while clients post messages, and
 * restarted on the same directory. A last run drains the outbox; then every assignment the store holds and every
 * message data item it holds, every acknowledged message among them, is in the bundler exactly once per id.
 *
 * Each run's kill comes a random 0 to MAX_KILL_DELAY_MS ms after its first acknowledgement; the delays come from
 * a seeded PRNG (the seed is printed; `UPLOAD_CRASH_SEED=<seed>` replays them).
 */
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as AssignmentStore from "../src/AssignmentStore.js"
import type { ProcessId } from "../src/ProcessId.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import { startArweaveDouble } from "./fixtures/arweave/index.js"
import { bundleEntry } from "./fixtures/child.js"
import { messageItem, processItem } from "./fixtures/dataItems.js"
import { fixtureWallet, tempDir } from "./fixtures/node.js"
import { mulberry32, seedFromEnv } from "./fixtures/seed.js"

const RESTARTS = 20
const PROCESSES = 2
/** Concurrent posting clients per process. */
const CLIENTS = 2
const MAX_KILL_DELAY_MS = 1_000
const PAGE = 1_000

interface Node {
  readonly child: ChildProcess.ChildProcess
  readonly url: string
  readonly address: string
  readonly output: () => string
  readonly closed: Promise<void>
}

/** Starts the node and waits for its "SU listening" lines; rejects with its output if it exits first. */
const startNode = (script: string, args: ReadonlyArray<string>): Promise<Node> =>
  new Promise((resolve, reject) => {
    const child = ChildProcess.spawn(process.execPath, [script, ...args], {
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    const closed = new Promise<void>((done) => child.on("close", () => done()))
    const onData = (chunk: Buffer) => {
      out = (out + chunk.toString("utf8")).slice(-64_000)
      const url = /SU listening on (http:\/\/\S+)/.exec(out)?.[1]
      const address = /wallet address\s+(\S+)/.exec(out)?.[1]
      if (url !== undefined && address !== undefined) resolve({ child, url, address, output: () => out, closed })
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.on("close", (code, signal) =>
      reject(new Error(`the node ended (${code ?? signal}) before listening:\n${out}`))
    )
  })

const postItem = async (url: string, raw: Uint8Array): Promise<number | undefined> => {
  try {
    const res = await fetch(`${url}/`, {
      method: "POST",
      body: raw,
      headers: { "content-type": "application/octet-stream" }
    })
    await res.arrayBuffer()
    return res.status
  } catch {
    return undefined // the node is gone
  }
}

const until = async (condition: () => boolean | Promise<boolean>): Promise<void> => {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 50))
}

describe("upload crash: SIGKILL of a remote_confirmation node uploading to a bundler", () => {
  it.scopedLive(
    `${RESTARTS} kills under load: every stored message and assignment is in the bundler exactly once`,
    () =>
      Effect.gen(function* () {
        const seed = seedFromEnv("UPLOAD_CRASH_SEED")
        console.log("upload crash test seed", seed, "(replay with UPLOAD_CRASH_SEED)")
        const random = mulberry32(seed)
        const ar = yield* Effect.acquireRelease(
          Effect.promise(() => startArweaveDouble()),
          (double) => Effect.promise(() => double.close())
        )
        const script = yield* bundleEntry(new URL("../src/node/bin.ts", import.meta.url))
        const dir = yield* tempDir("su-upload-crash-")
        fixtureWallet(dir)
        const args = [
          "serve",
          "--port",
          "0",
          "--data-dir",
          dir,
          "--idle-ttl",
          "0",
          "--mode",
          "remote_confirmation",
          "--gateway-url",
          ar.url,
          "--upload-url",
          ar.url,
          "--upload-timeout-ms",
          "10000"
        ]
        const acked: Array<string> = []
        let pending503 = 0
        const processIds: Array<string> = []
        // every child is killed when the test ends, whatever happened
        const children: Array<ChildProcess.ChildProcess> = []
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const c of children) c.kill("SIGKILL")
          })
        )

        const result = yield* Effect.promise(async () => {
          let n = 0
          for (let run = 0; run <= RESTARTS; run++) {
            const node = await startNode(script, args)
            children.push(node.child)
            if (run === 0) {
              for (let p = 0; p < PROCESSES; p++) {
                const item = await processItem(node.address)
                expect(await postItem(node.url, item.getRaw())).toBe(200)
                acked.push(item.id)
                processIds.push(item.id)
              }
            }
            if (run === RESTARTS) return node // the last run is not killed: it drains the outbox
            let alive = true
            let killTimer: NodeJS.Timeout | undefined
            const armKill = () => {
              if (killTimer !== undefined) return
              killTimer = setTimeout(() => node.child.kill("SIGKILL"), random() * MAX_KILL_DELAY_MS)
            }
            const client = async (processId: string) => {
              while (alive) {
                const item = await messageItem(processId, n++)
                const status = await postItem(node.url, item.getRaw())
                if (status === 200) {
                  acked.push(item.id)
                  armKill()
                } else if (status === 503) pending503++
                else if (status === undefined) return
                else throw new Error(`POST / answered ${status}:\n${node.output()}`)
              }
            }
            const clients = processIds.flatMap((p) => Array.from({ length: CLIENTS }, () => client(p)))
            await node.closed
            alive = false
            clearTimeout(killTimer)
            await Promise.all(clients)
            expect(node.child.signalCode, `run ${run} ended by itself:\n${node.output()}`).toBe("SIGKILL")
          }
          throw new Error("unreachable")
        })

        // the last run drains the outbox: wait until every acknowledged message is in the bundler, then stop it
        yield* Effect.promise(() => until(() => acked.every((id) => ar.uploadCount(id) >= 1)))
        const store = Context.get(
          yield* Effect.orDie(Layer.build(SqliteStore.layer({ filename: Path.join(dir, "su.sqlite") }))),
          AssignmentStore.AssignmentStore
        )
        yield* Effect.promise(() =>
          until(() =>
            Effect.runPromise(
              Effect.orDie(Effect.map(store.outbox!.status(), (s) => s.pending === 0 && s.retrying === 0))
            )
          )
        )
        result.child.kill("SIGTERM")
        yield* Effect.promise(() => result.closed)

        const ids: Array<string> = []
        for (const processId of processIds) {
          let from: number | undefined
          while (true) {
            const page = yield* Effect.orDie(store.range(processId as ProcessId, { by: "slot", from, limit: PAGE }))
            for (const entry of page) {
              ids.push(entry.assignment.id)
              if (entry.message !== undefined) ids.push(entry.assignment.messageId)
            }
            if (page.length < PAGE) break
            from = page.at(-1)!.assignment.slot
          }
        }
        const stored = new Set(ids)
        console.log(
          `upload crash: ${RESTARTS} kills, ${acked.length} acknowledged, ${ids.length} items stored, ` +
            `${ar.uploads.length} uploads accepted, ${ar.requests.head} gateway lookups after restarts, ` +
            `${pending503} UploadPending replies`
        )
        expect(
          acked.filter((id) => !stored.has(id)),
          "acknowledged but not stored"
        ).toEqual([])
        const counts = ids.map((id) => [id, ar.uploadCount(id)] as const)
        expect(
          counts.filter(([, count]) => count !== 1),
          "items not in the bundler exactly once"
        ).toEqual([])
        expect(ar.uploads.length).toBe(ids.length)
      }),
    600_000
  )
})
