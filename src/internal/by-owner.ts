/**
 * A small cache of `make(owner)` keyed by an owner's bytes (an RSA public modulus, 512 bytes), holding at most
 * `size` entries, newest first. A hit does not reorder the entries; a miss adds one at the front and, when the
 * cache is full, drops the oldest added (first in, first out). The cache keeps its own copy of the key; `make`
 * gets a view of the caller's bytes and must copy what it keeps. A node sees many items from few owners
 * (itself, a few clients and MUs), so a linear scan with `Buffer.equals` (a `memcmp`) beats deriving a text key
 * from the bytes for every lookup.
 */
export const cacheByOwner = <A>(size: number, make: (owner: Buffer) => A): ((owner: Uint8Array) => A) => {
  const entries: Array<{ readonly owner: Buffer; readonly value: A }> = []
  return (owner) => {
    const bytes = Buffer.from(owner.buffer, owner.byteOffset, owner.byteLength)
    for (const entry of entries) if (entry.owner.equals(bytes)) return entry.value
    const value = make(bytes)
    if (entries.length >= size) entries.pop()
    entries.unshift({ owner: Buffer.from(bytes), value })
    return value
  }
}
