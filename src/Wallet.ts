/**
 * The node wallet: an Arweave RSA key that signs assignments.
 *
 * Mirrors HyperBEAM's `ar_wallet` / `rsa_pss` / `hb:wallet()` (`docs/behaviours.md` §5), with its hazards
 * fixed: the key file is read once, a missing file is created atomically (temporary file, then a hard link
 * that fails if another creator won) with mode 0600, concurrent first calls get the same key, and a malformed
 * file is a typed `WalletError` instead of a crash. The private key never appears in logs, errors, `toString`,
 * `toJSON` or `inspect`.
 *
 * Size: about 454 lines, of which about 224 are code; the rest is the docstrings and `@example`s every
 * export carries. The code alone stays under 300 lines, so the module is kept whole.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { Context, Effect, type Exit, Layer, ParseResult, Schema } from "effect"
import { WalletError } from "./errors.js"
import { cacheByOwner } from "./internal/by-owner.js"
import { makeDirectorySync } from "./internal/directory.js"

const Base64Url = Schema.String.pipe(
  Schema.minLength(1, { message: () => "is empty" }),
  Schema.pattern(/^[A-Za-z0-9_-]+$/, { message: () => "is not unpadded base64url" })
)

/**
 * An Arweave JWK key file as a Schema: `{kty: "RSA", e: "AQAB", n, d, p, q, dp, dq, qi}`, every field unpadded
 * base64url (`kty` may be absent on input and is then taken as `"RSA"`). The one definition of the key's shape:
 * the key file, the wallet and the signer threads all use it.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Jwk = Schema.Struct({
  kty: Schema.optionalWith(Schema.Literal("RSA"), { default: () => "RSA" as const }),
  e: Base64Url,
  n: Base64Url,
  d: Base64Url,
  p: Base64Url,
  q: Base64Url,
  dp: Base64Url,
  dq: Base64Url,
  qi: Base64Url,
  ext: Schema.optional(Schema.Boolean)
})

/**
 * An Arweave JWK key file (`Jwk`'s type).
 *
 * @since 0.1.0
 * @category models
 */
export interface ArweaveJwk extends Schema.Schema.Type<typeof Jwk> {}

/**
 * Length of an RSA-4096 signature and of the owner (public modulus `n`), in bytes.
 *
 * @since 0.1.0
 * @category constants
 */
export const SIGNATURE_LENGTH = 512

/**
 * The wallet service.
 *
 * - `address`: 43-character base64url of sha256(n), the ao/Arweave address.
 * - `owner`: the public modulus n, 512 bytes for RSA-4096 (the ANS-104 `owner` field).
 * - `sign(bytes)`: RSA-PSS with SHA-256, MGF1-SHA-256, salt 32 bytes, as ANS-104 signs its deep hash; 512 bytes.
 * - `signSync`: the same, synchronously, for hot paths that already run inside one step.
 *
 * @since 0.1.0
 * @category models
 */
export class Wallet extends Context.Tag("effect-scheduler-registry/Wallet")<
  Wallet,
  {
    readonly address: string
    readonly owner: Uint8Array
    readonly sign: (data: Uint8Array) => Effect.Effect<Uint8Array>
    readonly signSync: (data: Uint8Array) => Uint8Array
    /** The private key, parsed once, for signing on worker threads. Never logged or serialised. */
    readonly privateKey: Crypto.KeyObject
  }
>() {}

/**
 * The ao/Arweave address of an owner: base64url(sha256(n)), 43 characters. A 32-byte input is already an
 * address and is returned as its text unchanged (behaviour 45, `ar_wallet:to_address`).
 *
 * @since 0.1.0
 * @category utils
 */
export const ownerToAddress = (owner: Uint8Array): string =>
  owner.length === 32
    ? Buffer.from(owner).toString("base64url")
    : Crypto.createHash("sha256").update(owner).digest("base64url")

/**
 * The public keys of the last few owners, found by their bytes: a node verifies many items of few signers (its
 * clients, the MUs), and parsing the JWK again cost as much as the verification.
 */
const publicKeyOf = cacheByOwner(16, (owner) =>
  Crypto.createPublicKey({ key: { kty: "RSA", n: owner.toString("base64url"), e: "AQAB" }, format: "jwk" })
)

/**
 * Verifies an RSA-PSS SHA-256 signature of `data` by `owner` (the public modulus n, e = 65537).
 * Accepts any salt length, as `rsa_pss:verify` does (behaviour 46). Returns `false` for malformed input.
 *
 * @since 0.1.0
 * @category utils
 */
export const verify = (owner: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean => {
  try {
    const key = publicKeyOf(owner)
    return Crypto.verify(
      "sha256",
      data,
      {
        key,
        padding: Crypto.constants.RSA_PKCS1_PSS_PADDING,
        saltLength: Crypto.constants.RSA_PSS_SALTLEN_AUTO
      },
      signature
    )
  } catch {
    return false
  }
}

const decodeJwk = Schema.decodeUnknownEither(Jwk)

/**
 * Checks that `input` is an RSA Arweave JWK (`Jwk`) and says what is wrong otherwise.
 *
 * @since 0.1.0
 * @category utils
 */
export const validateJwk = (input: unknown): ArweaveJwk | string => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return "the key is not a JSON object"
  const kty = (input as { readonly kty?: unknown }).kty
  if (kty !== undefined && kty !== "RSA") return `unsupported key type ${JSON.stringify(kty)}`
  const decoded = decodeJwk(input)
  if (decoded._tag === "Right") return decoded.right
  const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
  const field = `field "${issue?.path.join(".") ?? "?"}"`
  return issue?.message === "is not unpadded base64url"
    ? `${field} is not unpadded base64url`
    : `missing or empty ${field}`
}

const hidden = { toString: () => "Wallet(<redacted>)", toJSON: () => "Wallet(<redacted>)" }

/**
 * Builds the service from a JWK. Fails with `WalletError` (naming `path` when given) if the key is malformed.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 *
 * const program = Effect.gen(function* () {
 *   const jwk = yield* Wallet.generateJwk
 *   const wallet = yield* Wallet.make(jwk)
 *   return wallet.address
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (jwk: unknown, path?: string | undefined): Effect.Effect<Wallet["Type"], WalletError> =>
  Effect.suspend(() => {
    const fail = (reason: string) => Effect.fail(new WalletError({ ...(path === undefined ? {} : { path }), reason }))
    const valid = validateJwk(jwk)
    if (typeof valid === "string") return fail(valid)
    let privateKey: Crypto.KeyObject
    try {
      privateKey = Crypto.createPrivateKey({ key: { ...valid }, format: "jwk" })
    } catch (e) {
      return fail(`the key does not parse as an RSA private key (${(e as Error).message.split("\n")[0]})`)
    }
    const owner = new Uint8Array(Buffer.from(valid.n, "base64url"))
    const signSync = (data: Uint8Array): Uint8Array =>
      Crypto.sign("sha256", data, {
        key: privateKey,
        padding: Crypto.constants.RSA_PKCS1_PSS_PADDING,
        saltLength: 32
      })
    const probe = signSync(Buffer.from("effect-scheduler-registry"))
    if (!verify(owner, Buffer.from("effect-scheduler-registry"), probe)) {
      return fail("the private key does not match the public modulus n")
    }
    const service: Wallet["Type"] = Object.assign(Object.create(hidden), {
      address: ownerToAddress(owner),
      owner,
      signSync,
      sign: (data: Uint8Array) => Effect.sync(() => signSync(data)),
      privateKey,
      [Symbol.for("nodejs.util.inspect.custom")]: () => `Wallet(${ownerToAddress(owner)})`
    })
    return Effect.succeed(service)
  })

/**
 * Generates a new RSA-4096 Arweave JWK (e = 65537). Takes about a second or more of CPU.
 *
 * @since 0.1.0
 * @category constructors
 */
export const generateJwk: Effect.Effect<ArweaveJwk> = Effect.async<ArweaveJwk>((resume) => {
  Crypto.generateKeyPair("rsa", { modulusLength: 4096, publicExponent: 65537 }, (err, _pub, priv) => {
    if (err) return resume(Effect.die(err))
    const jwk = priv.export({ format: "jwk" }) as Record<string, string>
    resume(Effect.succeed({ kty: "RSA", ext: true, ...jwk } as ArweaveJwk))
  })
})

const inFlight = new Map<string, Promise<Exit.Exit<boolean, WalletError>>>()

const readKeyFile = (path: string): Effect.Effect<unknown, WalletError> =>
  Effect.tryPromise({
    try: () => Fs.readFile(path, "utf8"),
    catch: (e) =>
      new WalletError({
        path,
        reason:
          (e as NodeJS.ErrnoException).code === "ENOENT"
            ? "the key file does not exist"
            : `cannot read the key file (${(e as NodeJS.ErrnoException).code})`
      })
  }).pipe(
    Effect.flatMap((text) =>
      Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: () => new WalletError({ path, reason: "the key file is not valid JSON" })
      })
    )
  )

/** Creates the key file; `true` if this call's key is the one on disk, `false` if another creator won. */
const createKeyFile = (path: string): Effect.Effect<boolean, WalletError> =>
  Effect.gen(function* () {
    const jwk = yield* generateJwk
    const tmp = `${path}.${process.pid}.${Crypto.randomBytes(6).toString("hex")}.tmp`
    return yield* Effect.tryPromise({
      try: async () => {
        makeDirectorySync(Path.dirname(path))
        await Fs.writeFile(tmp, JSON.stringify(jwk), { mode: 0o600, flag: "wx" })
        try {
          // link() fails with EEXIST if another creator won the race: then both read the winner's key.
          await Fs.link(tmp, path)
          return true
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
          return false
        } finally {
          await Fs.rm(tmp, { force: true })
        }
      },
      catch: (e) =>
        new WalletError({
          path,
          reason: `cannot create the key file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`
        })
    })
  })

const exists = (path: string) =>
  Effect.promise(() =>
    Fs.stat(path).then(
      () => true,
      () => false
    )
  )

/**
 * Loads the JWK at `path`, creating an RSA-4096 key there first if the file is missing. Concurrent first
 * calls in one process share one creation; across processes the hard-link step lets exactly one file win.
 *
 * `created` is `true` only for the call whose key ended up on disk; callers that waited for, or lost the race
 * to, another creator read that key and get `false`.
 *
 * Fails with `WalletError` (naming the file) if the file cannot be read or created, or is not JSON (`make`
 * checks that it is an RSA Arweave JWK). Mirrors `hb:wallet()` / `ar_wallet:load_keyfile`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadOrCreate = (
  path: string
): Effect.Effect<{ readonly jwk: unknown; readonly created: boolean }, WalletError> =>
  Effect.gen(function* () {
    const absolute = Path.resolve(path)
    let created = false
    if (!(yield* exists(absolute))) {
      const pending = inFlight.get(absolute)
      if (pending !== undefined) {
        // A waiter fails with the creator's error, not with a confusing read error for a missing file.
        yield* Effect.asVoid(yield* Effect.promise(() => pending))
      } else {
        const run = Effect.runPromiseExit(createKeyFile(absolute))
        inFlight.set(absolute, run)
        const exit = yield* Effect.promise(() => run).pipe(
          Effect.ensuring(Effect.sync(() => inFlight.delete(absolute)))
        )
        created = yield* exit
      }
    }
    const jwk = yield* readKeyFile(absolute)
    return { jwk, created }
  })

/**
 * Loads the JWK at `path` without ever creating one: a missing file fails with `WalletError` ("the key file
 * does not exist"), so a mistyped path cannot silently give a new identity. As `loadOrCreate`, `make` checks
 * the key itself.
 *
 * @since 0.3.0
 * @category constructors
 */
export const load = (path: string): Effect.Effect<unknown, WalletError> =>
  Effect.suspend(() => readKeyFile(Path.resolve(path)))

/**
 * Creates an RSA-4096 key file at `path` (mode 0600, its directory created if missing) and returns its JWK.
 * Never overwrites: fails with `WalletError` ("the key file already exists") when the file is there, or when
 * another creator wins the race to it; or when the file cannot be written.
 *
 * @since 0.3.0
 * @category constructors
 */
export const create = (path: string): Effect.Effect<unknown, WalletError> =>
  Effect.gen(function* () {
    const absolute = Path.resolve(path)
    const exists_ = new WalletError({ path: absolute, reason: "the key file already exists; it is not overwritten" })
    if (yield* exists(absolute)) return yield* exists_
    if (!(yield* createKeyFile(absolute))) return yield* exists_
    return yield* readKeyFile(absolute)
  })

/**
 * Options of `layerFile` and `checkPermissions`. `strictPermissions` [false]: refuse a key file that its group
 * or others may read (any of mode bits 0077) instead of warning about it.
 *
 * @since 0.3.0
 * @category options
 */
export interface FileOptions {
  readonly strictPermissions?: boolean | undefined
}

/**
 * Checks that only its owner may read or write the key file at `path` (mode 0600 or stricter). Otherwise logs a
 * warning naming the file and the fix (`chmod 600 <path>`), or fails with `WalletError` saying the same under
 * `strictPermissions`. A file that cannot be stat'ed is left to the read that follows. Does nothing on Windows,
 * which has no such mode bits.
 *
 * @since 0.3.0
 * @category utils
 */
export const checkPermissions = (path: string, options: FileOptions = {}): Effect.Effect<void, WalletError> =>
  Effect.gen(function* () {
    if (process.platform === "win32") return
    const absolute = Path.resolve(path)
    const stat = yield* Effect.promise(() => Fs.stat(absolute).catch(() => undefined))
    if (stat === undefined || (stat.mode & 0o077) === 0) return
    const mode = (stat.mode & 0o777).toString(8).padStart(4, "0")
    const reason = `the key file is readable by group or others (mode ${mode}); run chmod 600 ${absolute}`
    if (options.strictPermissions === true) return yield* new WalletError({ path: absolute, reason })
    yield* Effect.logWarning(`Wallet ${absolute}: ${reason}`)
  })

/**
 * A Wallet from the JWK key file at `path`, created (RSA-4096, mode 0600) if missing. A key file that its group
 * or others may read gets a warning naming the fix (`chmod 600`), or is refused under
 * `options.strictPermissions` (since 0.3.0; `checkPermissions`). Fails with `WalletError` naming the file and
 * what is wrong.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Wallet } from "effect-scheduler-registry"
 *
 * // created (RSA-4096, mode 0600) if the file is missing
 * const program = Effect.map(Wallet.Wallet, (wallet) => wallet.address).pipe(
 *   Effect.provide(Wallet.layerFile("./data/wallet.json"))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (path: string, options: FileOptions = {}): Layer.Layer<Wallet, WalletError> =>
  Layer.effect(Wallet, fromFile(path, options))

/**
 * The wallet of the key file at `path`, created (RSA-4096, mode 0600) if missing, its mode checked
 * (`checkPermissions`). `layerFile`'s effect, for a node's further identities.
 *
 * @since 0.3.0
 * @category constructors
 */
export const fromFile = (path: string, options: FileOptions = {}): Effect.Effect<Wallet["Type"], WalletError> =>
  Effect.suspend(() => {
    // Every WalletError names the same (absolute) file, as loadOrCreate's read errors do.
    const absolute = Path.resolve(path)
    return Effect.flatMap(loadOrCreate(absolute), ({ jwk }) =>
      Effect.zipRight(checkPermissions(absolute, options), make(jwk, absolute))
    )
  })

/**
 * A Wallet from an in-memory JWK. Fails with `WalletError` if the key is malformed.
 *
 * @example
 * ```ts
 * import * as Fs from "node:fs"
 * import { Wallet } from "effect-scheduler-registry"
 *
 * const WalletLive = Wallet.layerJwk(JSON.parse(Fs.readFileSync("./data/wallet.json", "utf8")))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerJwk = (jwk: unknown): Layer.Layer<Wallet, WalletError> => Layer.effect(Wallet, make(jwk))

/**
 * A Wallet with a freshly generated RSA-4096 key. Slow (a second or more); tests should prefer the fixture key.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { AssignmentStore, NameService, SchedulerRegistry, Wallet } from "effect-scheduler-registry"
 *
 * // a throwaway node identity, e.g. for a demo
 * const RegistryLive = SchedulerRegistry.layer().pipe(
 *   Layer.provide(Layer.mergeAll(NameService.layer, Wallet.layerGenerate, AssignmentStore.layerMemory))
 * )
 * const program = Effect.flatMap(SchedulerRegistry.getWallet(), (wallet) => Effect.log(wallet.address)).pipe(
 *   Effect.provide(RegistryLive)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerGenerate: Layer.Layer<Wallet> = Layer.effect(
  Wallet,
  Effect.flatMap(generateJwk, (jwk) => Effect.orDie(make(jwk)))
)
