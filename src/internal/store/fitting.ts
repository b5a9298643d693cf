/**
 * The byte bound of a page read (`AssignmentStore.PageQuery.maxBytes`), shared by the memory and SQL stores.
 */

/**
 * How many of `sizes` (bytes, in order) fit in `maxBytes`: the longest prefix whose total stays within it, but
 * one at least, so that an entry larger than the bound is still read, alone; 0 only when `sizes` is empty.
 */
export const fitting = (sizes: ReadonlyArray<number>, maxBytes: number): number => {
  let total = 0
  for (let i = 0; i < sizes.length; i++) {
    total += sizes[i]!
    if (total > maxBytes && i > 0) return i
  }
  return sizes.length
}
