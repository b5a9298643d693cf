import { Effect, Option } from "effect"
import type { Assignment, Message } from "../../Assignment.js"
import type { AppendOptions, AssignmentStore, Entry, Latest, PageQuery, RangeQuery } from "../../AssignmentStore.js"
import { Fenced, StoreConflict } from "../../errors.js"
import type { ProcessId } from "../../ProcessId.js"
import * as Outbox from "../outbox.js"
import { fitting } from "./fitting.js"
import { PREVIOUS_MISMATCH } from "./reasons.js"

interface Schedule {
  /** Ascending by slot (and so by timestamp, which strictly increases with slot). */
  readonly entries: Array<Entry>
  readonly slots: Set<number>
  /** Entries by message id (unique within a process). */
  readonly byMessage: Map<string, Entry>
}

/** Index of the first entry whose key is greater than `bound` (entries ascend by slot and by timestamp). */
const firstAbove = (entries: ReadonlyArray<Entry>, key: (e: Entry) => number, bound: number): number => {
  let lo = 0
  let hi = entries.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (key(entries[mid]!) > bound) hi = mid
    else lo = mid + 1
  }
  return lo
}

/** The bytes an entry counts for in `PageQuery.maxBytes` (the memory store keeps no node JSON). */
const entryBytes = (e: Entry): number => e.assignment.raw.byteLength + (e.message?.byteLength ?? 0)

const bySlot = (e: Entry) => e.assignment.slot
const byTimestamp = (e: Entry) => e.assignment.timestamp

export const make = (): AssignmentStore["Type"] => {
  const schedules = new Map<ProcessId, Schedule>()
  const byId = new Map<string, Entry>()

  const conflict = (a: Assignment, reason: string) =>
    Effect.fail(new StoreConflict({ processId: a.processId, slot: a.slot, reason }))

  /** The highest block height appended so far (`maxBlockHeight`), kept as rows arrive. */
  let maxHeight: number | undefined

  const outbox = Outbox.makeMemory()

  /** Each process's current epoch (`claim`). */
  const epochs = new Map<ProcessId, number>()

  const claim = (processId: ProcessId) =>
    Effect.sync(() => {
      const epoch = (epochs.get(processId) ?? 0) + 1
      epochs.set(processId, epoch)
      return epoch
    })

  const append = (assignment: Assignment, message: Message, options?: AppendOptions | undefined) =>
    Effect.suspend((): Effect.Effect<void, StoreConflict | Fenced> => {
      const epoch = options?.epoch
      const current = epochs.get(assignment.processId) ?? 0
      if (epoch !== undefined && epoch !== current) {
        return Effect.fail(new Fenced({ processId: assignment.processId, epoch, current }))
      }
      let schedule = schedules.get(assignment.processId)
      if (schedule?.slots.has(assignment.slot)) return conflict(assignment, "slot already written")
      if (byId.has(assignment.id)) return conflict(assignment, "assignment id already written")
      if (schedule?.byMessage.has(message.id)) return conflict(assignment, "message already scheduled")
      const previous = options?.previous
      if (previous !== undefined && assignment.slot > 0) {
        const entries = schedule?.entries ?? []
        const before = entries[firstAbove(entries, bySlot, assignment.slot - 1) - 1]?.assignment
        if (before?.slot !== assignment.slot - 1 || before.id !== previous) {
          return conflict(assignment, PREVIOUS_MISMATCH)
        }
      }
      if (schedule === undefined) {
        schedule = { entries: [], slots: new Set(), byMessage: new Map() }
        schedules.set(assignment.processId, schedule)
      }
      const entry: Entry = { assignment, message: message.raw }
      const at = firstAbove(schedule.entries, bySlot, assignment.slot)
      if (at === schedule.entries.length) schedule.entries.push(entry)
      else schedule.entries.splice(at, 0, entry)
      schedule.slots.add(assignment.slot)
      schedule.byMessage.set(message.id, entry)
      byId.set(assignment.id, entry)
      if (!byId.has(message.id)) byId.set(message.id, entry)
      if (maxHeight === undefined || assignment.blockHeight > maxHeight) maxHeight = assignment.blockHeight
      if (options?.outbox === true) outbox.enqueue(assignment, message)
      return Effect.void
    })

  const latest = (processId: ProcessId) =>
    Effect.sync((): Option.Option<Latest> => {
      const last = schedules.get(processId)?.entries.at(-1)
      if (last === undefined) return Option.none()
      const a = last.assignment
      return Option.some({ slot: a.slot, hashChain: a.hashChain, assignmentId: a.id, timestamp: a.timestamp })
    })

  /** The indexes `[start, end)` of the entries in the query's range, before its limit. */
  const bounds = (entries: ReadonlyArray<Entry>, query: RangeQuery) => {
    const key = query.by === "slot" ? bySlot : byTimestamp
    const start = query.from === undefined ? 0 : firstAbove(entries, key, query.from)
    const end = query.to === undefined ? entries.length : firstAbove(entries, key, query.to)
    return { start, end }
  }

  const range = (processId: ProcessId, query: RangeQuery) =>
    Effect.sync((): ReadonlyArray<Entry> => {
      const entries = schedules.get(processId)?.entries ?? []
      const { end, start } = bounds(entries, query)
      return entries.slice(start, Math.min(end, start + Math.max(0, query.limit)))
    })

  const page = (processId: ProcessId, query: PageQuery) =>
    Effect.sync(() => {
      const entries = schedules.get(processId)?.entries ?? []
      const { end, start } = bounds(entries, query)
      const read = entries.slice(start, Math.min(end, start + Math.max(0, Math.floor(query.limit))))
      const count = query.maxBytes === undefined ? read.length : fitting(read.map(entryBytes), query.maxBytes)
      return { entries: read.slice(0, count), more: start + count < end }
    })

  const getMessage = (id: string, processId?: ProcessId | undefined) =>
    Effect.sync(() => {
      if (processId !== undefined) {
        // by message id within the process, or by assignment id (unique everywhere) if it is this process's;
        // the earlier of the two, as the SQL stores order them
        const byMessage = schedules.get(processId)?.byMessage.get(id)
        const found = byId.get(id)
        const byAssignment = found?.assignment.id === id && found.assignment.processId === processId ? found : undefined
        if (byMessage === undefined || byAssignment === undefined) return Option.fromNullable(byMessage ?? byAssignment)
        return Option.some(byMessage.assignment.slot <= byAssignment.assignment.slot ? byMessage : byAssignment)
      }
      return Option.fromNullable(byId.get(id))
    })

  const getProcess = (processId: ProcessId) =>
    Effect.sync(() => Option.fromNullable(schedules.get(processId)?.entries[0]))

  const listProcesses = () => Effect.sync(() => Array.from(schedules.keys()))

  const maxBlockHeight = () => Effect.sync(() => Option.fromNullable(maxHeight))

  const { enqueue: _, ...outboxService } = outbox
  return {
    append,
    claim,
    latest,
    range,
    page,
    getMessage,
    getProcess,
    listProcesses,
    maxBlockHeight,
    outbox: outboxService
  }
}
