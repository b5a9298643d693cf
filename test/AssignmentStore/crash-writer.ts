/**
 * Child process for the SIGKILL test: appends to the SQLite store at argv[2] (synchronous argv[3]) for 8
 * processes concurrently, forever, and prints "<process id> <slot> <assignment id>" after each acknowledged
 * append. The parent kills it with SIGKILL and checks that every printed append is in the file.
 */
import { Effect } from "effect"
import * as AssignmentStore from "../../src/AssignmentStore.js"
import * as SqliteStore from "../../src/sqlite/SqliteStore.js"
import { fake, randomProcessId } from "../fixtures/assignments.js"

const [filename, synchronous] = process.argv.slice(2) as [string, "FULL" | "NORMAL"]

const writer = (processId: ReturnType<typeof randomProcessId>) =>
  Effect.flatMap(AssignmentStore.AssignmentStore, (store) =>
    Effect.iterate(0, {
      while: () => true,
      body: (slot) => {
        const { assignment, message } = fake(processId, slot)
        return store.append(assignment, message).pipe(
          Effect.tap(() => Effect.sync(() => process.stdout.write(`${processId} ${slot} ${assignment.id}\n`))),
          Effect.as(slot + 1)
        )
      }
    })
  )

Effect.forEach(Array.from({ length: 8 }, randomProcessId), writer, { concurrency: "unbounded" }).pipe(
  Effect.provide(SqliteStore.layer({ filename, synchronous })),
  Effect.runPromise
)
