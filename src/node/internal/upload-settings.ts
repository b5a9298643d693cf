/**
 * The upload settings of `serve` (`Config.ts`), one spec each: `--upload-url` (env `SU_UPLOAD_URL`, else the legacy
 * SU's `UPLOAD_NODE_URL`), `--upload-concurrency`, `--upload-timeout-ms`. Kept here so that Config.ts stays small.
 */
import { HelpDoc, ValidationError } from "@effect/cli"
import { Schema } from "effect"
import type { UploadConfig } from "../Node.js"
import * as Setting from "./setting.js"

const PositiveInt = Schema.Int.pipe(Schema.positive())

/** The upload settings, spread into `Config.ts`'s `settings`. */
export const settings = {
  uploadUrl: Setting.optionalText({
    flag: "upload-url",
    env: "SU_UPLOAD_URL",
    legacyEnv: "UPLOAD_NODE_URL",
    shown: "none: no uploads",
    text:
      "ANS-104 bundler that every scheduled message and assignment is uploaded to (POST {url}/tx/arweave, through " +
      "a durable outbox), and the Scheduler-Location record of --public-url; needed by --mode remote_confirmation"
  }),
  uploadConcurrency: Setting.integer({
    flag: "upload-concurrency",
    env: "SU_UPLOAD_CONCURRENCY",
    rule: PositiveInt,
    what: "a positive integer",
    default: 8,
    text: "Uploads to the bundler in flight at once"
  }),
  uploadTimeoutMs: Setting.integer({
    flag: "upload-timeout-ms",
    env: "SU_UPLOAD_TIMEOUT_MS",
    rule: PositiveInt,
    what: "a positive integer (ms)",
    default: 30_000,
    text: "ms one upload attempt may take before it is retried (with backoff: 1 s doubling to 32 s)"
  })
}

/** Why the upload settings cannot run, as one line: `remote_confirmation` without a bundler, or with `--cluster`. */
export const refusal = (s: {
  readonly mode: string
  readonly uploadUrl: string | undefined
  readonly cluster: boolean
}): ValidationError.ValidationError | undefined => {
  if (s.mode === "remote_confirmation" && s.uploadUrl === undefined) {
    return ValidationError.missingValue(
      HelpDoc.p(
        "--mode remote_confirmation needs --upload-url (or SU_UPLOAD_URL / UPLOAD_NODE_URL): a bundler to confirm"
      )
    )
  }
  if (s.cluster && s.uploadUrl !== undefined) {
    return ValidationError.invalidValue(HelpDoc.p("--upload-url is not supported with --cluster yet"))
  }
  return undefined
}

/** The node's `UploadConfig`, or `undefined` without an upload URL. */
export const uploadConfig = (s: {
  readonly uploadUrl: string | undefined
  readonly uploadConcurrency: number
  readonly uploadTimeoutMs: number
}): UploadConfig | undefined =>
  s.uploadUrl === undefined
    ? undefined
    : { url: s.uploadUrl, concurrency: s.uploadConcurrency, timeoutMs: s.uploadTimeoutMs }
