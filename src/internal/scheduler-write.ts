/**
 * The write stage of a scheduler server: one signed run of assignments (slots k … k+n-1 of one process) sent to
 * the store at once, so that a group commit takes them in one transaction, while the server signs the next run.
 *
 * Every append names the assignment it follows (`AppendOptions.previous`), so the store writes a prefix of the
 * run and never leaves a gap: once one append fails, the later ones fail too, unwritten. The stage reports the
 * first failure; the server decides what it means (`scheduler.ts`, `land`).
 */
import { Cause, Clock, Effect, Exit, Option } from "effect"
import type { Assignment, Message } from "../Assignment.js"
import type { AssignmentStore } from "../AssignmentStore.js"
import type { Fenced, StoreConflict, StoreError } from "../errors.js"

/** How a run's write ended: every append committed, or the first that did not (the ones before it committed). */
export type WriteOutcome =
  | { readonly _tag: "Written" }
  | { readonly _tag: "Broken"; readonly index: number; readonly failure: StoreConflict | StoreError | Fenced }

const written = { _tag: "Written" } as WriteOutcome

/**
 * Appends `assignments[i]` with `messages[i]`, all at once, the first following `previous` (the assignment id at
 * the slot before the run; undefined at slot 0). Calls `committed(i)` for each append of the committed prefix, in
 * order, once every append has answered, with the time (ms, `Clock`) they did.
 */
export const writeRun = (
  store: AssignmentStore["Type"],
  assignments: ReadonlyArray<Assignment>,
  messages: ReadonlyArray<Message>,
  options: { readonly previous: string | undefined; readonly epoch: number | undefined; readonly outbox: boolean },
  committed: (index: number, now: number) => void
): Effect.Effect<WriteOutcome> =>
  Effect.flatMap(
    Effect.all(
      assignments.map((assignment, i) =>
        Effect.exit(
          store.append(assignment, messages[i]!, {
            outbox: options.outbox,
            epoch: options.epoch,
            previous: i === 0 ? options.previous : assignments[i - 1]!.id
          })
        )
      ),
      { concurrency: "unbounded" }
    ),
    (exits): Effect.Effect<WriteOutcome> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        for (let i = 0; i < exits.length; i++) {
          const exit = exits[i]!
          if (Exit.isFailure(exit)) {
            const failure = Cause.failureOption(exit.cause)
            // a defect (or an interruption) of the store is not an answer: the server dies with it
            if (Option.isNone(failure) || Cause.isDie(exit.cause))
              return Effect.failCause(Cause.die(Cause.squash(exit.cause)))
            return Effect.succeed({ _tag: "Broken", index: i, failure: failure.value })
          }
          committed(i, now)
        }
        return Effect.succeed(written)
      })
  )
