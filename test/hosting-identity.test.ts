/**
 * A node never signs another SU's schedule: a stored process whose `Scheduler` tag names an address the node holds
 * no wallet for (a store imported from another SU, or a data directory given a new wallet) is not hosted. And an
 * assign of a message the process already holds is a retry: its original assignment, not a conflict.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { messageItem, processItem } from "./fixtures/dataItems.js"
import { post, request, startNode, tempDir } from "./fixtures/node.js"

const sqlite = (dir: string) => ({ kind: "sqlite" as const, filename: Path.join(dir, "su.sqlite") })

describe("hosting: the node's own identities only", () => {
  it.scopedLive("a stored process scheduled by another address is refused (400), its schedule untouched", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const first = yield* Scope.make()
      const a = yield* startNode({ dataDir: dir, store: sqlite(dir) }).pipe(Scope.extend(first))
      const spawned = yield* Effect.promise(() => processItem(a.address))
      expect((yield* post(a.url, spawned.getRaw())).status).toBe(200)
      const one = yield* Effect.promise(() => messageItem(spawned.id, 1))
      expect((yield* post(a.url, one.getRaw())).status).toBe(200)
      yield* Scope.close(first, Exit.void)

      // the same store under another wallet (as after `su import` into a directory without the old key)
      const otherWallet = Path.join(dir, "other-wallet.json")
      Fs.copyFileSync(new URL("./fixtures/wallet-2.json", import.meta.url), otherWallet)
      Fs.chmodSync(otherWallet, 0o600)
      const b = yield* startNode({ dataDir: dir, store: sqlite(dir), walletPath: otherWallet })
      expect(b.address).not.toBe(a.address)
      const two = yield* Effect.promise(() => messageItem(spawned.id, 2))
      const refused = yield* post(b.url, two.getRaw())
      expect(refused.status).toBe(400)
      expect(refused.json.error).toContain(a.address)
      const page = yield* request(`${b.url}/${spawned.id}`)
      expect(page.json.edges.map((e: { node: { message: { id: string } } }) => e.node.message.id)).toEqual([
        spawned.id,
        one.id
      ])
    })
  )

  it.scopedLive("an assign of a message the process already holds answers its original assignment", () =>
    Effect.gen(function* () {
      const node = yield* startNode()
      const spawned = yield* Effect.promise(() => processItem(node.address))
      expect((yield* post(node.url, spawned.getRaw())).status).toBe(200)
      const message = yield* Effect.promise(() => messageItem(spawned.id, 1))
      const posted = yield* post(node.url, message.getRaw())
      expect(posted.status).toBe(200)
      const assigned = yield* request(`${node.url}/?process-id=${spawned.id}&assign=${message.id}`, { method: "POST" })
      expect(assigned.status).toBe(200)
      const page = yield* request(`${node.url}/${spawned.id}`)
      expect(page.json.edges).toHaveLength(2)
      expect(assigned.json.timestamp).toBe(posted.json.timestamp)
    })
  )
})
