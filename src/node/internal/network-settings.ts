/**
 * Details of the node's network settings, kept apart so that `Config.ts` stays small: what a `--gateway-url`
 * value means, the Scheduler-Location settings (`--public-url`, `--location-ttl`; `--upload-url` is in
 * `Config.ts`), the `location publish` flags, and the check of the location settings together.
 */
import { Options } from "@effect/cli"
import { Either, Schema } from "effect"
import * as Location from "../../network/Location.js"
import type { GatewayConfig } from "../Node.js"
import * as Setting from "./setting.js"

const PositiveInt = Schema.Int.pipe(Schema.positive())

/** `--public-url` / `SU_PUBLIC_URL`. */
export const publicUrl = Setting.optionalText({
  flag: "public-url",
  env: "SU_PUBLIC_URL",
  text:
    "This SU's public origin, e.g. https://su.example.com: published as its Scheduler-Location on start and " +
    "again every half --location-ttl (needs --upload-url)"
})

/** `--location-ttl` / `SU_LOCATION_TTL`, in ms. */
export const locationTtl = Setting.integer({
  flag: "location-ttl",
  env: "SU_LOCATION_TTL",
  rule: PositiveInt,
  what: "a positive integer (ms)",
  default: Location.DEFAULT_TTL_MS,
  text: "Time-To-Live of the published Scheduler-Location, in ms"
})

/** `location publish`'s own flags: `--url` and `--ttl`. */
export const publishFlags = {
  url: Options.text("url").pipe(
    Options.withDescription("The origin clients reach this SU at, e.g. https://su.example.com (no path)")
  ),
  ttl: Options.integer("ttl").pipe(
    Options.mapEffect(Setting.ruled("ttl", PositiveInt, "a positive integer (ms)")),
    Options.withDefault(Location.DEFAULT_TTL_MS),
    Options.withDescription(`The record's Time-To-Live in ms (default ${Location.DEFAULT_TTL_MS})`)
  )
}

/** The `--gateway-url` value that runs the node offline. */
export const OFFLINE = "none"

/** See `Config.gatewayOf`. */
export const gatewayOf = (value: string): GatewayConfig | undefined => {
  if (value === OFFLINE) return { kind: "offline" }
  try {
    const url = new URL(value)
    return url.protocol === "http:" || url.protocol === "https:" ? { kind: "online", url: value } : undefined
  } catch {
    return undefined
  }
}

/** The checked location settings (see `Config.locationOf`). */
export const locationOf = (s: {
  readonly uploadUrl: string | undefined
  readonly publicUrl: string | undefined
  readonly locationTtl: number
}): Either.Either<
  { readonly uploadUrl: string | undefined; readonly publicUrl?: string; readonly locationTtlMs: number },
  string
> => {
  if (s.uploadUrl !== undefined && gatewayOf(s.uploadUrl)?.kind !== "online") {
    return Either.left(`--upload-url must be an http(s) URL, got ${s.uploadUrl}`)
  }
  if (s.publicUrl === undefined) return Either.right({ uploadUrl: s.uploadUrl, locationTtlMs: s.locationTtl })
  const origin = Location.originOf(s.publicUrl)
  if (Either.isLeft(origin)) return Either.left(`--public-url: ${origin.left}`)
  if (s.uploadUrl === undefined) {
    return Either.left("--public-url needs --upload-url (SU_UPLOAD_URL): the bundler the record is uploaded to")
  }
  return Either.right({ uploadUrl: s.uploadUrl, publicUrl: origin.right, locationTtlMs: s.locationTtl })
}
