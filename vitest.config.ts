import type { RunnerTask, RunnerTestFile } from "vitest"
import { defineConfig } from "vitest/config"
import type { Reporter } from "vitest/reporters"

/** Prints the plain closing line `N passed, N failed, N skipped` that CI reads, after vitest's own summary. */
class ClosingLine implements Reporter {
  onFinished(files: ReadonlyArray<RunnerTestFile> = []) {
    const count = { passed: 0, failed: 0, skipped: 0 }
    const visit = (task: RunnerTask) => {
      if (task.type === "suite") for (const child of task.tasks) visit(child)
      else if (task.result?.state === "pass") count.passed++
      else if (task.result?.state === "fail") count.failed++
      else count.skipped++
    }
    for (const file of files) {
      visit(file)
      if (file.result?.state === "fail" && file.tasks.length === 0) count.failed++ // a file that failed to load
    }
    process.stdout.write(`\n${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`)
  }
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default", new ClosingLine()]
  }
})
