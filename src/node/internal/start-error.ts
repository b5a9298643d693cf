/**
 * What the `su` binary prints when a command cannot start: one line naming the setting and the fix, instead of
 * an error dump (the whole cause goes to the log at Debug level, shown with `--log-level debug`). The process
 * then exits 1.
 */
import * as Path from "node:path"
import { HelpDoc, ValidationError } from "@effect/cli"
import { Cause, Console, Effect, FiberRef, LogLevel, Option } from "effect"
import type { Settings } from "../Config.js"

/** Whatever a failure carries, as one line of text. */
const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, " ").trim()

const messageOf = (value: unknown): string => {
  if (value instanceof Error) {
    const cause = (value as { readonly cause?: unknown }).cause
    return cause instanceof Error && !value.message.includes(cause.message)
      ? `${value.message}: ${cause.message}`
      : value.message
  }
  return String(value)
}

/** `url` with its password hidden. */
const redacted = (url: string): string => url.replace(/:[^:@/]*@/, ":***@")

type Tagged = { readonly _tag?: unknown; readonly [key: string]: unknown }

/** The wallet settings that name `path`: `--identity`, `--wallet`, or the default under `--data-dir`. */
/** The settings a failure is explained with: the wallet commands have only the first two. */
type Known = Pick<Settings, "dataDir" | "wallet"> & Partial<Settings>

const walletSetting = (path: string | undefined, s: Known): string => {
  const absolute = path === undefined ? undefined : Path.resolve(path)
  if (absolute !== undefined && (s.identities ?? []).some((p) => Path.resolve(p) === absolute))
    return `--identity ${path}`
  return s.wallet === undefined ? `--data-dir ${s.dataDir} (wallet ${path ?? "?"})` : `--wallet ${s.wallet}`
}

const walletFix = (reason: string): string =>
  reason.startsWith("cannot create")
    ? "choose a writable --data-dir (SU_DATA_DIR) or --wallet (SU_WALLET)"
    : reason.startsWith("the key file does not exist")
      ? "create it with `su wallet create`, or point --wallet (SU_WALLET) or --data-dir (SU_DATA_DIR) at your key file"
      : reason.startsWith("the key file already exists")
        ? "`su wallet address` prints its address; move it away first to make a new one"
        : reason.includes("chmod 600")
          ? "or drop --strict-key-perms (SU_STRICT_KEY_PERMS)"
          : "restore the key file, or point --wallet (SU_WALLET) at a valid Arweave JWK key file"

/** One line naming the setting at fault and its fix, for any error of resolving settings or starting a node. */
export const explain = (error: unknown, s: Known): string => {
  if (ValidationError.isValidationError(error)) return oneLine(HelpDoc.toAnsiText(error.error))
  const e = (typeof error === "object" && error !== null ? error : {}) as Tagged
  const reason = oneLine(typeof e.reason === "string" ? e.reason : messageOf(e.cause ?? error))
  const store =
    s.store === "pg"
      ? {
          setting: `--pg-url ${redacted(s.pgUrl ?? "")}`,
          fix: "check that PostgreSQL runs and that --pg-url (SU_PG_URL) is right"
        }
      : { setting: `--data-dir ${s.dataDir}`, fix: "choose a writable --data-dir (SU_DATA_DIR)" }
  switch (e._tag) {
    case "WalletError":
      return `${walletSetting(e.path as string | undefined, s)}: ${reason}; ${walletFix(reason)}`
    case "StoreLocked":
      return s.store === "pg"
        ? `--pg-schema ${s.pgSchema ?? "public"}: ${messageOf(error)}; stop that node first, or give this one ` +
            "its own --pg-schema (SU_PG_SCHEMA), or run both with --cluster"
        : `--data-dir ${s.dataDir}: ${messageOf(error)}; stop that node first, or give this one its own ` +
            "--data-dir (SU_DATA_DIR)"
    case "StoreError":
      return reason.includes("needs the packages")
        ? reason
        : `${store.setting}: cannot ${e.operation === "migrate" ? "migrate" : "open"} the store (${reason}); ${store.fix}`
    case "ServeError":
      return (
        `--port ${s.port}: cannot listen on ${s.host}:${s.port} (${reason}); stop what uses it, or choose ` +
        "another --port (SU_PORT) or --host (SU_HOST)"
      )
    case "SocketServerError":
      return `--runner-port ${s.runnerPort}: the cluster runner cannot listen (${reason}); choose another --runner-port (SU_RUNNER_PORT)`
    case "SignerPoolError":
      return `--signers ${s.signers}: the signer threads did not start (${reason}); try --signers 0 (SU_SIGNERS)`
    default:
      return `${oneLine(messageOf(error))}; run with --log-level debug for details`
  }
}

/**
 * Runs `self`; if it fails or dies (not if it is interrupted), prints `describe`'s one line for the failure to
 * stderr, logs the whole cause at Debug level and sets the exit code to 1.
 */
export const reportFailure =
  (describe: (error: unknown) => string) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A | undefined, never, R> =>
    Effect.catchAllCause(self, (cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.succeed(undefined)
        : Effect.gen(function* () {
            const line = Option.match(Cause.failureOption(cause), {
              onNone: () => describe(Cause.squash(cause)),
              onSome: describe
            })
            yield* Console.error(line)
            if (LogLevel.lessThanEqual(yield* FiberRef.get(FiberRef.currentMinimumLogLevel), LogLevel.Debug)) {
              yield* Effect.logDebug("the failure in full", cause)
            }
            yield* Effect.sync(() => {
              process.exitCode = 1
            })
            return undefined
          })
    )
