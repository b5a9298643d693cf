/**
 * Creating a directory and its missing parents without `fs.mkdir(…, { recursive: true })`: on Node 20 that
 * call never returns for a path under `/proc` (it loops on ENOENT, using a core), so a data directory such as
 * `/proc/x` hung the node instead of failing. Each missing level is created on its own, and the first error
 * (ENOENT, EACCES, EROFS, ENOTDIR…) is thrown.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

/** Creates `dir` and its missing parents; throws the first error, as `mkdirSync` does. */
export const makeDirectorySync = (dir: string): void => {
  const missing: Array<string> = []
  for (let current = Path.resolve(dir); ; current = Path.dirname(current)) {
    try {
      if (Fs.statSync(current).isDirectory()) break
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${current}'`), { code: "ENOTDIR" })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
    }
    missing.push(current)
    if (Path.dirname(current) === current) break
  }
  for (const level of missing.reverse()) {
    try {
      Fs.mkdirSync(level)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
    }
  }
}
