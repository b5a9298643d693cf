/** The `StoreConflict.reason`s every store gives, so that a writer can tell them apart. */

/** An append whose `previous` (`AppendOptions`) is not the assignment at the slot before it: nothing was written. */
export const PREVIOUS_MISMATCH = "the previous slot does not hold the expected assignment"

/** An append of a message the process already holds. */
export const MESSAGE_SCHEDULED = "message already scheduled"
