/**
 * `npm run demo` (scripts/demo.ts) end to end, as a user runs it: the local gateway and bundler, a node online on
 * them, messages uploaded, the SU located by the real ao-scheduler-utils, and the CU's checks at a real height.
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"

const ROOT = Path.resolve(import.meta.dirname, "..")

const runDemo = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/demo.ts", ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1", SU_URL: undefined },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    child.stdout.on("data", (chunk) => (out += chunk))
    child.stderr.on("data", (chunk) => (out += chunk))
    child.on("close", (code) => resolve({ code, out }))
  })

describe("npm run demo", () => {
  it("shows the whole path: uploads, a located SU and the CU's hash-chain check at the gateway's height", async () => {
    const { code, out } = await runDemo(["--messages", "3"])
    expect(out).toContain("block height 1600000")
    expect(out).toMatch(/the bundler holds all 8 items \(4 messages, 4 assignments\), each uploaded once/)
    expect(out).toMatch(/ao-scheduler-utils locates the process's SU at http:\/\/127\.0\.0\.1:\d+ /)
    expect(out).toContain("the process's block height is 1600000: the CU validates its hash chain")
    expect(out).toContain("all assignments verify and the hash chain holds")
    expect(code).toBe(0)
  }, 120_000)
})
