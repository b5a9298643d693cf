import { Either } from "effect"
import { type InvalidProcessId, RegistryClosed } from "../errors.js"
import { type ProcessId, parseEither } from "../ProcessId.js"

/**
 * The prologue every registry's `find` shares: the id normalised to a `ProcessId` (or `InvalidProcessId`), then
 * `RegistryClosed` if the registry is closed, in that order.
 */
export const admit = (input: unknown, closed: boolean): Either.Either<ProcessId, InvalidProcessId | RegistryClosed> => {
  const parsed = parseEither(input)
  if (Either.isLeft(parsed)) return parsed
  return closed ? Either.left(new RegistryClosed()) : parsed
}
