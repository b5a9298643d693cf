/**
 * Group commit without blocking the event loop. With `synchronous = FULL` SQLite fsyncs the WAL inside every
 * COMMIT, on the calling thread: better-sqlite3 is synchronous, so the whole node stopped for each fsync (a quarter
 * of its time under load) and no append could join the batch meanwhile. Instead the connection commits with
 * `synchronous = NORMAL` (the WAL is written, not synced) and the writer awaits `flush`, an `fsync` of the WAL
 * file on libuv's thread pool, before it acknowledges the batch; the next batch gathers during it.
 *
 * Why this is as durable as FULL for every acknowledged append: SQLite's WAL frames carry checksums and the
 * WAL header's salt, so after a power loss it replays exactly the transactions whose frames all reached the disk
 * and ignores a torn tail (https://www.sqlite.org/wal.html, https://www.sqlite.org/fileformat2.html#walformat).
 * An fsync of the file, by any descriptor, flushes every frame written before it; the batch is acknowledged only
 * after one that began after its COMMIT. A checkpoint syncs the WAL before it copies pages and the database after
 * (`synchronous = NORMAL` in WAL mode). The first flush also syncs the directory, so that the WAL file's own
 * entry survives.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect } from "effect"

interface Open {
  readonly handle: Fs.promises.FileHandle
  readonly ino: number
}

/**
 * The flush of `filename`'s WAL (`<filename>-wal`) and its closing. One open descriptor, reopened if the WAL
 * file was replaced (SQLite deletes it when the last connection closes).
 */
export const make = (filename: string) => {
  const wal = `${filename}-wal`
  let open: Open | undefined
  let directorySynced = false

  const current = async (): Promise<Open | undefined> => {
    const stat = Fs.statSync(wal, { throwIfNoEntry: false })
    if (stat === undefined) return undefined
    if (open !== undefined && open.ino === stat.ino) return open
    await open?.handle.close()
    open = { handle: await Fs.promises.open(wal, "r"), ino: stat.ino }
    if (!directorySynced) {
      const directory = await Fs.promises.open(Path.dirname(wal), "r")
      try {
        await directory.sync()
      } finally {
        await directory.close()
      }
      directorySynced = true
    }
    return open
  }

  const flush: Effect.Effect<void, string> = Effect.tryPromise({
    try: async () => {
      const file = await current()
      await file?.handle.sync()
    },
    catch: (error) => `fsync of ${wal} failed: ${error instanceof Error ? error.message : String(error)}`
  })

  const close = Effect.promise(async () => {
    const file = open
    open = undefined
    await file?.handle.close().catch(() => undefined)
  })

  return { flush, close }
}
