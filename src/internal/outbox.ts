/**
 * What an append queues for upload, and the outbox of the memory store. The SQL stores keep theirs in the
 * `outbox` table (`sql/internal/outbox.ts`).
 */
import { Effect } from "effect"
import type { Assignment, Message } from "../Assignment.js"
import type { Outbox, OutboxItem, OutboxStatus } from "../AssignmentStore.js"

/** One item an append queues: the data item's id and what it is. */
export interface Queued {
  readonly id: string
  readonly kind: OutboxItem["kind"]
}

/**
 * The items of an entry, in upload order (the legacy SU posts the message, then the assignment): the message's
 * data item when its bytes are held (an assigned Arweave transaction is already on Arweave), then the assignment.
 */
export const itemsOf = (assignment: Assignment, message: Message): ReadonlyArray<Queued> =>
  message.raw === undefined
    ? [{ id: assignment.id, kind: "assignment" }]
    : [
        { id: message.id, kind: "message" },
        { id: assignment.id, kind: "assignment" }
      ]

interface Row {
  readonly item: OutboxItem
  attempts: number
  nextAttemptAt: number
}

/** The memory store's outbox; `enqueue` is called by its `append`, in the same synchronous step. */
export const makeMemory = (): Outbox & {
  readonly enqueue: (assignment: Assignment, message: Message) => void
} => {
  /** Items not yet uploaded, in queue order. */
  const pending = new Map<string, Row>()
  const uploadedIds = new Set<string>()

  const enqueue = (assignment: Assignment, message: Message) => {
    for (const { id, kind } of itemsOf(assignment, message)) {
      if (pending.has(id) || uploadedIds.has(id)) continue
      const bytes = kind === "message" ? message.raw! : assignment.raw
      const item: OutboxItem = {
        id,
        kind,
        processId: assignment.processId,
        slot: assignment.slot,
        bytes,
        createdAt: assignment.timestamp,
        attempts: 0
      }
      pending.set(id, { item, attempts: 0, nextAttemptAt: 0 })
    }
  }

  const due = (now: number, limit: number) =>
    Effect.sync(() => {
      const out: Array<OutboxItem> = []
      for (const row of pending.values()) {
        if (out.length >= limit) break
        if (row.nextAttemptAt <= now) out.push({ ...row.item, attempts: row.attempts })
      }
      return out
    })

  const markUploaded = (ids: ReadonlyArray<string>) =>
    Effect.sync(() => {
      for (const id of ids) {
        if (pending.delete(id)) uploadedIds.add(id)
      }
    })

  const markFailed = (id: string, attempts: number, nextAttemptAt: number) =>
    Effect.sync(() => {
      const row = pending.get(id)
      if (row === undefined) return
      row.attempts = attempts
      row.nextAttemptAt = nextAttemptAt
    })

  const uploaded = (ids: ReadonlyArray<string>) =>
    Effect.sync((): ReadonlySet<string> => new Set(ids.filter((id) => uploadedIds.has(id))))

  const status = (options?: { readonly uploaded?: boolean | undefined } | undefined) =>
    Effect.sync((): OutboxStatus => {
      let retrying = 0
      let oldestPendingAt: number | undefined
      let nextAttemptAt: number | undefined
      for (const row of pending.values()) {
        if (row.attempts > 0) retrying++
        if (oldestPendingAt === undefined || row.item.createdAt < oldestPendingAt) oldestPendingAt = row.item.createdAt
        if (nextAttemptAt === undefined || row.nextAttemptAt < nextAttemptAt) nextAttemptAt = row.nextAttemptAt
      }
      return {
        pending: pending.size - retrying,
        retrying,
        uploaded: options?.uploaded === true ? uploadedIds.size : undefined,
        oldestPendingAt,
        nextAttemptAt
      }
    })

  const redrive = () =>
    Effect.sync(() => {
      let count = 0
      for (const row of pending.values()) {
        if (row.attempts === 0) continue
        row.attempts = 0
        row.nextAttemptAt = 0
        count++
      }
      return count
    })

  return { enqueue, due, markUploaded, markFailed, uploaded, status, redrive }
}
