/**
 * `Transfer.export`: the header, every process's rows in slot order read a page at a time through
 * `AssignmentStore.range`, then the end line. At most one page of rows is in memory.
 */
import { Effect, Option, Stream } from "effect"
import type { AssignmentStore } from "../../AssignmentStore.js"
import * as DataItem from "../../DataItem.js"
import { type StoreError, UnknownProcess } from "../../errors.js"
import type { ProcessId } from "../../ProcessId.js"
import type { ExportOptions } from "../../Transfer.js"
import { endLine, headerLine, rowLine } from "./format.js"

/** Rows per `range` read. */
export const DEFAULT_PAGE_SIZE = 1_000

/** The owner address of the first process's slot-0 assignment, or null when there is none. */
const firstOwner = (store: AssignmentStore["Type"], processIds: ReadonlyArray<ProcessId>) =>
  processIds.length === 0
    ? Effect.succeed(null)
    : Effect.map(store.getProcess(processIds[0]!), (entry) =>
        Option.match(entry, {
          onNone: () => null,
          onSome: (e) => {
            const item = DataItem.decode(e.assignment.raw)
            return item._tag === "Right" ? item.right.ownerAddress : null
          }
        })
      )

const processIdsOf = (store: AssignmentStore["Type"], options: ExportOptions) => {
  const only = options.processId
  if (only === undefined) return Effect.map(store.listProcesses(), (ids) => [...ids].sort())
  return Effect.flatMap(store.latest(only), (head) =>
    Option.isNone(head) ? Effect.fail(new UnknownProcess({ processId: only })) : Effect.succeed([only])
  )
}

export const exportStream = (
  store: AssignmentStore["Type"],
  options: ExportOptions
): Stream.Stream<Uint8Array, StoreError | UnknownProcess> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const processIds = yield* processIdsOf(store, options)
      const su = options.su ?? (yield* firstOwner(store, processIds))
      const pageSize = Math.max(1, options.pageSize ?? DEFAULT_PAGE_SIZE)
      let assignments = 0
      const rows = (processId: ProcessId) =>
        Stream.paginateEffect(-1, (after: number) =>
          Effect.map(store.range(processId, { by: "slot", from: after, limit: pageSize }), (page) => {
            assignments += page.length
            let text = ""
            for (const entry of page) text += `${rowLine(entry)}\n`
            const last = page.at(-1)
            return [
              text,
              page.length < pageSize || last === undefined ? Option.none() : Option.some(last.assignment.slot)
            ] as const
          })
        )
      return Stream.make(`${headerLine(su)}\n`).pipe(
        Stream.concat(Stream.flatMap(Stream.fromIterable(processIds), rows).pipe(Stream.filter((text) => text !== ""))),
        Stream.concat(Stream.suspend(() => Stream.make(`${endLine(processIds.length, assignments)}\n`))),
        Stream.encodeText
      )
    })
  )
