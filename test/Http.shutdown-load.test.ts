/**
 * SIGTERM under keep-alive load: clients that keep sending on pooled connections (Node's `http.Agent` with
 * `keepAlive`, and the global `fetch`, undici's pool) are answered 503 with `connection: close` and then refused;
 * none sees a reset.
 */
import * as NodeHttp from "node:http"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { bin, listening, scopedBin } from "./fixtures/bin.js"
import { agentGet, expectDrained, fetchGet, keepSending } from "./fixtures/keep-sending.js"
import { fixtureWallet, tempDir } from "./fixtures/node.js"
import { send, spawn } from "./fixtures/su.js"

const NODE_ADDRESS = "b1ayEFhXXqrS30fIn5k8ARPglHDKWXkVp_0wbTwo5UI"

describe("Http: shutdown under keep-alive load", () => {
  it.scopedLive(
    "SIGTERM: every pooled client's last answer before ECONNREFUSED is a 503 with connection: close; no reset",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        fixtureWallet(dir)
        const script = yield* bin
        const child = yield* scopedBin(script, [
          "serve",
          ...["--port", "0", "--data-dir", dir, "--store", "memory", "--gateway-url", "none"]
        ])
        const url = yield* Effect.promise(() => listening(child))
        const pid = yield* spawn(url, NODE_ADDRESS)
        yield* send(url, pid, 1, 5)
        const page = `${url}/${pid}?limit=50`

        // 10 clients: 5 on their own keep-alive agent (one socket each), 5 sharing fetch's pool
        const agents = Array.from({ length: 5 }, () => new NodeHttp.Agent({ keepAlive: true, maxSockets: 1 }))
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const agent of agents) agent.destroy()
          })
        )
        const clients = [
          ...agents.map((agent) => keepSending(agentGet(agent), page, 3)),
          ...Array.from({ length: 5 }, () => keepSending(fetchGet, page, 3))
        ]
        yield* Effect.promise(() => Promise.all(clients.map((client) => client.warm)))
        child.process.kill("SIGTERM")
        const seen = yield* Effect.promise(() => Promise.all(clients.map((client) => client.done)))

        const all = seen.flat()
        const figures = {
          ok: all.filter((o) => o.status === 200).length,
          unavailable: all.filter((o) => o.status === 503).length,
          refused: all.filter((o) => o.body === "ECONNREFUSED").length,
          errors: all.filter((o) => o.status === 0 && o.body !== "ECONNREFUSED").map((o) => o.body)
        }
        console.log("shutdown under keep-alive load:", JSON.stringify(figures))
        expect(figures.errors).toEqual([])
        for (const outcomes of seen) expectDrained(outcomes)
        expect(yield* Effect.promise(() => child.exit)).toBe(0)
        expect(child.stdout()).toContain("SU stopped")
      }),
    120_000
  )
})
