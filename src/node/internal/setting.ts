/**
 * One spec per setting: a setting's flag and its environment variable are made from the same description,
 * default and rule, so they cannot drift apart. The flag falls back to the variable, which falls back to the
 * default; the rule (a Schema) is checked once, on whichever of the two gave the value.
 */
import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Config, ConfigError, Effect, Either, Option, Schema } from "effect"

/** A setting: the `serve` flag (with its fallback) and the environment `Config` alone. */
export interface Setting<A> {
  readonly flag: Options.Options<A>
  readonly env: Config.Config<A>
}

const described = (text: string, env: string, shown: unknown) =>
  `${text} (env ${env}${shown === undefined ? "" : `, default ${String(shown)}`})`

/** Checks the rule on the variable's value, with a message naming the variable and the rule. */
const checked = <A>(config: Config.Config<A>, env: string, rule: Schema.Schema<A> | undefined, what: string) =>
  rule === undefined
    ? config
    : Config.validate(config, { message: `${env} must be ${what}`, validation: Schema.is(rule) })

const make = <A>(
  flag: Options.Options<A>,
  env: Config.Config<A>,
  spec: { readonly env: string; readonly text: string; readonly shown?: unknown }
): Setting<A> => ({
  env,
  flag: flag.pipe(Options.withFallbackConfig(env), Options.withDescription(described(spec.text, spec.env, spec.shown)))
})

/** Checks a flag's value against `rule`, failing with one line that names the flag, the rule and the value. */
export const ruled =
  <A>(flag: string, rule: Schema.Schema<A>, what: string) =>
  (value: A): Effect.Effect<A, ValidationError.ValidationError> =>
    Schema.is(rule)(value)
      ? Effect.succeed(value)
      : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${flag} must be ${what}, got ${String(value)}`)))

/**
 * An integer variable: unset or empty gives `fallback`; anything but decimal digits (an optional minus sign) is
 * refused with one message naming the variable (`Config.integer` took "" as 0, and "1e1" or "0x3" as numbers).
 */
const integerEnv = (env: string, fallback: number, what: string): Config.Config<number> =>
  Config.string(env).pipe(
    Config.withDefault(""),
    Config.mapOrFail((raw) => {
      const text = raw.trim()
      if (text === "") return Either.right(fallback)
      return /^-?\d+$/.test(text)
        ? Either.right(Number(text))
        : Either.left(ConfigError.InvalidData([], `${env} must be ${what}, got ${JSON.stringify(raw)}`))
    })
  )

/** An integer setting with a rule (e.g. a port, a positive count) and a default. */
export const integer = (spec: {
  readonly flag: string
  readonly env: string
  readonly rule: Schema.Schema<number>
  readonly what: string
  readonly default: number
  readonly text: string
}): Setting<number> =>
  make(
    Options.integer(spec.flag).pipe(Options.mapEffect(ruled(spec.flag, spec.rule, spec.what))),
    checked(integerEnv(spec.env, spec.default, spec.what), spec.env, spec.rule, spec.what),
    { ...spec, shown: spec.default }
  )

/** A text setting with a default. */
export const text = (spec: {
  readonly flag: string
  readonly env: string
  readonly default: string
  readonly text: string
  readonly kind?: "text" | "directory" | "file" | undefined
}): Setting<string> =>
  make(
    spec.kind === "directory"
      ? Options.directory(spec.flag)
      : spec.kind === "file"
        ? Options.file(spec.flag)
        : Options.text(spec.flag),
    Config.string(spec.env).pipe(Config.withDefault(spec.default)),
    { ...spec, shown: spec.default }
  )

/**
 * A text setting that may be absent (`undefined`); `shown` is what the help says happens then. `legacyEnv` is a
 * further variable read when `env` is unset (e.g. the legacy ao SU's name); `rule`, when given, is checked on the
 * flag's or the variable's value.
 */
export const optionalText = (spec: {
  readonly flag: string
  readonly env: string
  readonly legacyEnv?: string | undefined
  readonly rule?: { readonly schema: Schema.Schema<string>; readonly what: string } | undefined
  readonly text: string
  readonly shown?: string | undefined
  readonly kind?: "text" | "file" | undefined
}): Setting<string | undefined> => {
  const legacy = spec.legacyEnv
  const names = legacy === undefined ? spec.env : `${spec.env}, or ${legacy}`
  const read =
    legacy === undefined
      ? Config.string(spec.env)
      : Config.string(spec.env).pipe(Config.orElse(() => Config.string(legacy)))
  const env = spec.rule === undefined ? read : checked(read, names, spec.rule.schema, spec.rule.what)
  const plain = spec.kind === "file" ? Options.file(spec.flag) : Options.text(spec.flag)
  const rule = spec.rule
  const flag = (
    rule === undefined ? plain : plain.pipe(Options.mapEffect(ruled(spec.flag, rule.schema, rule.what)))
  ).pipe(
    Options.withFallbackConfig(env),
    Options.optional,
    Options.withDescription(described(spec.text, names, spec.shown)),
    Options.map(Option.getOrUndefined)
  )
  return { flag, env: Config.map(Config.option(env), Option.getOrUndefined) }
}

/** One of `choices`, with a default. */
export const choice = <const C extends ReadonlyArray<string>>(spec: {
  readonly flag: string
  readonly env: string
  readonly choices: C
  readonly default: C[number]
  readonly text: string
}): Setting<C[number]> =>
  make(
    Options.choice(spec.flag, spec.choices),
    Config.literal(...spec.choices)(spec.env).pipe(Config.withDefault(spec.default)) as Config.Config<C[number]>,
    { ...spec, shown: spec.default }
  )

/** A switch, off by default. */
export const boolean = (spec: {
  readonly flag: string
  readonly env: string
  readonly text: string
}): Setting<boolean> =>
  make(Options.boolean(spec.flag), Config.boolean(spec.env).pipe(Config.withDefault(false)), { ...spec, shown: false })

/** The flags of a record of settings. */
export const flags = <S extends Record<string, Setting<unknown>>>(
  settings: S
): { readonly [K in keyof S]: S[K]["flag"] } =>
  Object.fromEntries(Object.entries(settings).map(([k, s]) => [k, s.flag])) as never

/** The environment `Config` of a record of settings, with every rule checked. */
export const env = <S extends Record<string, Setting<unknown>>>(
  settings: S
): Config.Config<{ readonly [K in keyof S]: Config.Config.Success<S[K]["env"]> }> =>
  Config.all(Object.fromEntries(Object.entries(settings).map(([k, s]) => [k, s.env]))) as never
