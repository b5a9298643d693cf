/**
 * Moving schedules between stores: `export` streams one process or all of them out of any `AssignmentStore` as
 * NDJSON (docs/export-format.md), `import` streams such a file into any other store, verifying every row first.
 * With it a node's schedules go from SQLite to PostgreSQL, into a backup file, and back (`su export`,
 * `su import`).
 *
 * - Export reads each process a page at a time (`AssignmentStore.range` by slot), so memory holds one page.
 * - Import checks each process's hash chain from slot 0 (the legacy ao SU / CU algorithm, `Assignment.verifyChain`),
 *   each assignment's ANS-104 signature, id, signer (the header's SU) and ao.TN.1 tags against its columns, and
 *   each message data item's signature and id, before it appends the row. Rows are appended in slot order, so a
 *   store only ever holds a verified prefix of each schedule.
 * - Import is resumable: a slot the target already holds is compared byte for byte and skipped when equal; a
 *   different one is an `ImportFork`. Re-running an interrupted import continues where it stopped, and importing
 *   into a store that holds a prefix of a process appends the rest.
 *
 * Our addition: neither HyperBEAM (`dev_scheduler_cache`) nor the legacy ao SU has an export; the rows are those
 * of the legacy SU's `messages` table as `AssignmentStore` keeps them.
 *
 * @since 0.3.0
 */
import { Context, Effect, Layer, type Stream } from "effect"
import type { Assignment } from "./Assignment.js"
import { AssignmentStore } from "./AssignmentStore.js"
import type { ImportFork, ImportGap, ImportInvalid, StoreError, TransferFormatError, UnknownProcess } from "./errors.js"
import * as Export from "./internal/transfer/export.js"
import * as Import from "./internal/transfer/import.js"
import type { ProcessId } from "./ProcessId.js"

/**
 * The first line of an export: `{"format":"ao-su-schedule","version":1,"su":…}`; `su` is the exporting SU's
 * 43-character address (the signer of its assignments), or null for an empty export.
 *
 * @since 0.3.0
 * @category models
 */
export interface Header {
  readonly format: "ao-su-schedule"
  readonly version: 1
  readonly su: string | null
}

/**
 * One exported row: the assignment (its `raw` data item and its columns) and the message data item bytes, or
 * `undefined` for an assignment of an Arweave transaction.
 *
 * @since 0.3.0
 * @category models
 */
export interface Row {
  readonly assignment: Assignment
  readonly message: Uint8Array | undefined
}

/**
 * What to export.
 *
 * - `processId`: only this process (an `UnknownProcess` failure if the store has no row of it); all by default,
 *   in process id order.
 * - `su`: the address written in the header; by default the signer of the first exported assignment.
 * - `pageSize`: rows per store read, default 1,000.
 *
 * @since 0.3.0
 * @category models
 */
export interface ExportOptions {
  readonly processId?: ProcessId | undefined
  readonly su?: string | undefined
  readonly pageSize?: number | undefined
}

/**
 * How to import. `inFlight`: rows verified and handed to the store at once (default 512), so the SQL stores'
 * group-commit writer fills its transactions.
 *
 * @since 0.3.0
 * @category models
 */
export interface ImportOptions {
  readonly inFlight?: number | undefined
}

/**
 * What an import did: `processes` and `assignments` read, of which `appended` were written and `skipped` were
 * already in the store, byte for byte.
 *
 * @since 0.3.0
 * @category models
 */
export interface ImportSummary {
  readonly processes: number
  readonly assignments: number
  readonly appended: number
  readonly skipped: number
}

/**
 * Every way an import can refuse its input (besides `StoreError` and the input stream's own errors).
 *
 * @since 0.3.0
 * @category errors
 */
export type ImportError = TransferFormatError | ImportGap | ImportFork | ImportInvalid

/**
 * The transfer service over one store.
 *
 * - `export(options)`: the NDJSON bytes, a page of rows per chunk; fails with `StoreError` or `UnknownProcess`.
 * - `import(input, options)`: reads `input` (NDJSON bytes, any chunking) into the store and returns the
 *   `ImportSummary`; fails with an `ImportError`, `StoreError`, or the input's error `E`. Rows verified before
 *   a failure are kept, so running it again resumes.
 *
 * @since 0.3.0
 * @category models
 */
export class Transfer extends Context.Tag("effect-scheduler-registry/Transfer")<
  Transfer,
  {
    readonly export: (options?: ExportOptions | undefined) => Stream.Stream<Uint8Array, StoreError | UnknownProcess>
    readonly import: <E>(
      input: Stream.Stream<Uint8Array, E>,
      options?: ImportOptions | undefined
    ) => Effect.Effect<ImportSummary, E | ImportError | StoreError>
  }
>() {}

/**
 * The transfer service over the `AssignmentStore` in context.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { AssignmentStore, Transfer } from "effect-scheduler-registry"
 *
 * // copy every schedule of one store into another
 * const copy = (from: AssignmentStore.AssignmentStore["Type"], to: AssignmentStore.AssignmentStore["Type"]) =>
 *   Effect.gen(function* () {
 *     const source = yield* Effect.provideService(Transfer.make, AssignmentStore.AssignmentStore, from)
 *     const target = yield* Effect.provideService(Transfer.make, AssignmentStore.AssignmentStore, to)
 *     return yield* target.import(source.export()) // { processes, assignments, appended, skipped }
 *   })
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const make: Effect.Effect<Transfer["Type"], never, AssignmentStore> = Effect.map(AssignmentStore, (store) => ({
  export: (options) => Export.exportStream(store, options ?? {}),
  import: (input, options) => Import.importStream(store, input, options ?? {})
}))

/**
 * `make` as a Layer.
 *
 * @example
 * ```ts
 * import { NodeSink } from "@effect/platform-node"
 * import { Effect, Layer, Stream } from "effect"
 * import { AssignmentStore, Transfer } from "effect-scheduler-registry"
 *
 * // the NDJSON export of the memory store, on standard output
 * const program = Effect.gen(function* () {
 *   const transfer = yield* Transfer.Transfer
 *   yield* Stream.run(transfer.export(), NodeSink.stdout)
 * }).pipe(Effect.provide(Transfer.layer.pipe(Layer.provide(AssignmentStore.layerMemory))))
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layer: Layer.Layer<Transfer, never, AssignmentStore> = Layer.effect(Transfer, make)
