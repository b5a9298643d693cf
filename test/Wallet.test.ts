/**
 * Wallet: RSA-PSS signing and verification, addresses, the key file (`docs/behaviours.md` §5,
 * behaviours 44–46) and that the private key never leaks.
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Util from "node:util"
import { describe, expect, it, vi } from "@effect/vitest"
import Arweave from "arweave"
import { Context, Effect, Layer, Logger } from "effect"
import * as Wallet from "../src/Wallet.js"
import { clientJwk, WalletTest, walletJwk, walletJwk2 } from "./fixtures/wallet.js"

const arweave = Arweave.init({})

/** A fresh directory, removed when the test's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "wallet-test-"))),
  (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
)

const writeFile = (path: string, text: string) => Effect.promise(() => Fs.writeFile(path, text))

const readJson = (path: string) =>
  Effect.promise(() => Fs.readFile(path, "utf8")).pipe(Effect.map((text) => JSON.parse(text) as Wallet.ArweaveJwk))

/** Builds `layerFile(path)` on its own and returns the wallet. */
const loadFile = (path: string) => Effect.provide(Wallet.Wallet, Wallet.layerFile(path))

/** Builds `layerFile(path)` on its own and returns its failure. */
const loadFileError = (path: string) => Effect.flip(loadFile(path))

const flipBit = (bytes: Uint8Array, index: number, bit: number): Uint8Array => {
  const copy = Uint8Array.from(bytes)
  copy[index] = copy[index]! ^ (1 << bit)
  return copy
}

const message = new TextEncoder().encode("an ANS-104 deep hash stand-in")

describe("Wallet", () => {
  describe("address and owner", () => {
    it.effect("address is 43 characters and equals what the arweave package computes for the fixture", () =>
      Effect.gen(function* () {
        const wallet = yield* Wallet.Wallet
        const expected = yield* Effect.promise(() => arweave.wallets.jwkToAddress(walletJwk))
        expect(wallet.address).toHaveLength(43)
        expect(wallet.address).toBe(expected)
        expect(wallet.address).toBe(Crypto.createHash("sha256").update(wallet.owner).digest("base64url"))
      }).pipe(Effect.provide(WalletTest))
    )

    it.effect("owner is the 512-byte public modulus n of the key", () =>
      Effect.gen(function* () {
        const wallet = yield* Wallet.Wallet
        expect(wallet.owner).toHaveLength(Wallet.SIGNATURE_LENGTH)
        expect(wallet.owner).toHaveLength(512)
        expect(Buffer.from(wallet.owner).toString("base64url")).toBe(walletJwk.n)
      }).pipe(Effect.provide(WalletTest))
    )

    it.effect("different keys have different addresses, each matching the arweave package", () =>
      Effect.gen(function* () {
        const a = yield* Effect.provide(Wallet.Wallet, Wallet.layerJwk(walletJwk2))
        const b = yield* Effect.provide(Wallet.Wallet, Wallet.layerJwk(clientJwk))
        expect(a.address).toBe(yield* Effect.promise(() => arweave.wallets.jwkToAddress(walletJwk2)))
        expect(b.address).toBe(yield* Effect.promise(() => arweave.wallets.jwkToAddress(clientJwk)))
        expect(a.address).not.toBe(b.address)
      })
    )

    it("ownerToAddress of a 32-byte input returns its base64url unchanged (behaviour 45)", () => {
      const bytes = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 3)
      const text = Buffer.from(bytes).toString("base64url")
      expect(Wallet.ownerToAddress(bytes)).toBe(text)
      expect(text).toHaveLength(43)
      // Any other length is hashed: a 31-byte or 33-byte input is not returned as-is.
      const hashed31 = Crypto.createHash("sha256").update(bytes.subarray(0, 31)).digest("base64url")
      expect(Wallet.ownerToAddress(bytes.subarray(0, 31))).toBe(hashed31)
    })
  })

  describe("sign and verify (behaviour 46)", () => {
    it.effect("a signature is 512 bytes and verifies against the owner", () =>
      Effect.gen(function* () {
        const wallet = yield* Wallet.Wallet
        const signature = yield* wallet.sign(message)
        expect(signature).toHaveLength(512)
        expect(Wallet.verify(wallet.owner, message, signature)).toBe(true)
        const syncSignature = wallet.signSync(message)
        expect(syncSignature).toHaveLength(512)
        expect(Wallet.verify(wallet.owner, message, syncSignature)).toBe(true)
      }).pipe(Effect.provide(WalletTest))
    )

    it.effect("signs with RSA-PSS SHA-256 and a random 32-byte salt (salt length = digest length)", () =>
      Effect.gen(function* () {
        const wallet = yield* Wallet.Wallet
        const first = yield* wallet.sign(message)
        const second = yield* wallet.sign(message)
        // A random salt makes every signature of the same data different.
        expect(Buffer.from(first).equals(Buffer.from(second))).toBe(false)
        const publicKey = Crypto.createPublicKey({ key: { kty: "RSA", n: walletJwk.n, e: "AQAB" }, format: "jwk" })
        const verifyWithSalt = (saltLength: number) =>
          Crypto.verify(
            "sha256",
            message,
            { key: publicKey, padding: Crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength },
            first
          )
        expect(verifyWithSalt(32)).toBe(true)
        expect(verifyWithSalt(20)).toBe(false)
        expect(verifyWithSalt(0)).toBe(false)
      }).pipe(Effect.provide(WalletTest))
    )

    it.effect("a signature with one bit flipped is rejected", () =>
      Effect.gen(function* () {
        const wallet = yield* Wallet.Wallet
        const signature = yield* wallet.sign(message)
        expect(Wallet.verify(wallet.owner, message, signature)).toBe(true)
        for (const [index, bit] of [
          [0, 0],
          [100, 3],
          [511, 7]
        ] as const) {
          expect(Wallet.verify(wallet.owner, message, flipBit(signature, index, bit))).toBe(false)
        }
        expect(Wallet.verify(wallet.owner, flipBit(message, 0, 0), signature)).toBe(false)
      }).pipe(Effect.provide(WalletTest))
    )

    it.effect("a signature is rejected under another owner and for malformed input", () =>
      Effect.gen(function* () {
        const wallet = yield* Wallet.Wallet
        const signature = yield* wallet.sign(message)
        const otherOwner = new Uint8Array(Buffer.from(walletJwk2.n, "base64url"))
        expect(Wallet.verify(otherOwner, message, signature)).toBe(false)
        expect(Wallet.verify(wallet.owner, message, signature.subarray(0, 511))).toBe(false)
        expect(Wallet.verify(new Uint8Array(0), message, signature)).toBe(false)
      }).pipe(Effect.provide(WalletTest))
    )

    it("verify accepts a valid signature made with a different salt length (0, 222, 478)", () => {
      const privateKey = Crypto.createPrivateKey({ key: { ...walletJwk }, format: "jwk" })
      const owner = new Uint8Array(Buffer.from(walletJwk.n, "base64url"))
      for (const saltLength of [0, 222, 478]) {
        const signature = Crypto.sign("sha256", message, {
          key: privateKey,
          padding: Crypto.constants.RSA_PKCS1_PSS_PADDING,
          saltLength
        })
        expect(signature).toHaveLength(512)
        expect(Wallet.verify(owner, message, signature)).toBe(true)
        expect(Wallet.verify(owner, message, flipBit(signature, 256, 1))).toBe(false)
      }
    })
  })

  describe("layerFile: the key file (behaviour 44)", () => {
    it.scoped(
      "a missing file is created as an RSA-4096 JWK with mode 0600, and a second load gives the same address",
      () =>
        Effect.gen(function* () {
          const dir = yield* tempDir
          const file = Path.join(dir, "nested", "dirs", "key.json")
          const first = yield* loadFile(file)

          const jwk = yield* readJson(file)
          expect(jwk.kty).toBe("RSA")
          expect(jwk.e).toBe("AQAB")
          expect(Buffer.from(jwk.n, "base64url")).toHaveLength(512)
          for (const field of ["d", "p", "q", "dp", "dq", "qi"] as const) {
            expect(jwk[field]).toMatch(/^[A-Za-z0-9_-]+$/)
          }
          const stat = yield* Effect.promise(() => Fs.stat(file))
          expect(stat.mode & 0o777).toBe(0o600)
          expect(first.address).toBe(yield* Effect.promise(() => arweave.wallets.jwkToAddress(jwk)))
          expect(Buffer.from(first.owner).toString("base64url")).toBe(jwk.n)

          const before = yield* Effect.promise(() => Fs.readFile(file, "utf8"))
          const second = yield* loadFile(file)
          expect(second.address).toBe(first.address)
          expect(yield* Effect.promise(() => Fs.readFile(file, "utf8"))).toBe(before)
          expect(yield* Effect.promise(() => Fs.readdir(Path.dirname(file)))).toEqual(["key.json"])
        }),
      30_000
    )

    it.scoped(
      "5 concurrent first loads of a new file all get the key that is on disk, leaving no temp files",
      () =>
        Effect.gen(function* () {
          const dir = yield* tempDir
          const file = Path.join(dir, "key.json")
          const viaBuild = Layer.build(Wallet.layerFile(file)).pipe(
            Effect.map((context) => Context.get(context, Wallet.Wallet).address)
          )
          const viaProvide = loadFile(file).pipe(Effect.map((wallet) => wallet.address))
          const addresses = yield* Effect.all([viaBuild, viaProvide, viaBuild, viaProvide, viaBuild], {
            concurrency: "unbounded"
          })
          const onDisk = yield* readJson(file)
          const expected = yield* Effect.promise(() => arweave.wallets.jwkToAddress(onDisk))
          expect(addresses).toEqual([expected, expected, expected, expected, expected])
          expect(yield* Effect.promise(() => Fs.readdir(dir))).toEqual(["key.json"])
        }),
      30_000
    )

    it.scoped(
      "two independent loaders (separate module instances, as two processes) racing on a new file agree on the key",
      () =>
        Effect.gen(function* () {
          const dir = yield* tempDir
          const file = Path.join(dir, "key.json")
          // A second copy of the module has its own in-flight map, so it does not share creation with the first:
          // only the atomic create (temporary file, then link) can keep the two from holding different keys.
          vi.resetModules()
          const other = (yield* Effect.promise(() => import("../src/Wallet.js"))) as typeof Wallet
          expect(other.loadOrCreate).not.toBe(Wallet.loadOrCreate)
          const [a, b] = yield* Effect.all([Wallet.loadOrCreate(file), other.loadOrCreate(file)], {
            concurrency: "unbounded"
          })
          const onDisk = yield* readJson(file)
          expect(a.jwk).toEqual(onDisk)
          expect(b.jwk).toEqual(onDisk)
          // Exactly one of them created the file; the other read the winner's key.
          expect([a.created, b.created].filter(Boolean)).toHaveLength(1)
          expect(yield* Effect.promise(() => Fs.readdir(dir))).toEqual(["key.json"])
        }),
      30_000
    )

    it.scoped(
      "when creating the file fails, every concurrent first caller gets the creation error",
      () =>
        Effect.gen(function* () {
          const dir = yield* tempDir
          // The parent "directory" is a regular file, so mkdir fails after the key is generated.
          const blocker = Path.join(dir, "not-a-directory")
          yield* writeFile(blocker, "")
          const file = Path.join(blocker, "key.json")
          const errors = yield* Effect.all([loadFileError(file), loadFileError(file), loadFileError(file)], {
            concurrency: "unbounded"
          })
          for (const error of errors) {
            expect(error._tag).toBe("WalletError")
            expect(error.path).toBe(file)
            expect(error.reason).toMatch(/^cannot create the key file .*(ENOTDIR|EEXIST)/)
          }
          expect(yield* Effect.promise(() => Fs.readdir(dir))).toEqual(["not-a-directory"])
        }),
      30_000
    )

    it.scoped("an existing fixture key file is loaded as-is", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = Path.join(dir, "wallet.json")
        yield* writeFile(file, JSON.stringify(walletJwk))
        const loaded = yield* Wallet.loadOrCreate(file)
        expect(loaded.created).toBe(false)
        const wallet = yield* loadFile(file)
        expect(wallet.address).toBe(yield* Effect.promise(() => arweave.wallets.jwkToAddress(walletJwk)))
      })
    )
  })

  describe("load, create and the key file's mode", () => {
    it.scoped("load never creates; create never overwrites", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = Path.join(dir, "wallet.json")
        const missing = yield* Effect.flip(Wallet.load(file))
        expect(missing).toMatchObject({ _tag: "WalletError", path: file, reason: "the key file does not exist" })
        expect(yield* Effect.promise(() => Fs.readdir(dir))).toEqual([])
        yield* writeFile(file, JSON.stringify(walletJwk))
        expect(yield* Wallet.load(file)).toEqual(walletJwk)
        const refused = yield* Effect.flip(Wallet.create(file))
        expect(refused.reason).toBe("the key file already exists; it is not overwritten")
        expect(yield* readJson(file)).toEqual(walletJwk)
      })
    )

    it.scoped("a key file others may read: a warning naming chmod 600, or refused when strict", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = Path.join(dir, "wallet.json")
        yield* writeFile(file, JSON.stringify(walletJwk))
        yield* Effect.promise(() => Fs.chmod(file, 0o640))
        const reason = `the key file is readable by group or others (mode 0640); run chmod 600 ${file}`
        const strict = yield* Effect.flip(
          Effect.provide(Wallet.Wallet, Wallet.layerFile(file, { strictPermissions: true }))
        )
        expect(strict).toMatchObject({ _tag: "WalletError", path: file, reason })
        const logged: Array<unknown> = []
        const logger = Logger.make(({ logLevel, message }) => logged.push([logLevel.label, message]))
        const wallet = yield* loadFile(file).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
        expect(wallet.address).toBe(yield* Effect.promise(() => arweave.wallets.jwkToAddress(walletJwk)))
        expect(logged).toEqual([["WARN", [`Wallet ${file}: ${reason}`]]])
        yield* Effect.promise(() => Fs.chmod(file, 0o600))
        yield* Wallet.checkPermissions(file, { strictPermissions: true })
      })
    )
  })

  describe("layerFile: a malformed key file is a typed WalletError naming the file", () => {
    it.scoped("a file that is not JSON", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = Path.join(dir, "broken.json")
        // A truncated key: the parse error must not echo the file's content (which holds d and p).
        yield* writeFile(file, JSON.stringify(walletJwk).slice(0, -20))
        const error = yield* loadFileError(file)
        expect(error._tag).toBe("WalletError")
        expect(error.path).toBe(file)
        expect(error.reason).toMatch(/not valid JSON/)
        expect(error.message).toContain(file)
        expect(JSON.stringify(error)).not.toContain(walletJwk.d)
        expect(JSON.stringify(error)).not.toContain(walletJwk.p)
        expect(error.message).not.toContain(walletJwk.d.slice(0, 40))
      })
    )

    it.scoped("JSON without the field d", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = Path.join(dir, "no-d.json")
        const { d: _d, ...withoutD } = walletJwk
        yield* writeFile(file, JSON.stringify(withoutD))
        const error = yield* loadFileError(file)
        expect(error._tag).toBe("WalletError")
        expect(error.path).toBe(file)
        expect(error.reason).toBe('missing or empty field "d"')
        expect(error.message).toBe(`Wallet ${file}: missing or empty field "d"`)
      })
    )

    it.scoped('a key with kty "EC"', () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = Path.join(dir, "ec.json")
        yield* writeFile(file, JSON.stringify({ ...walletJwk, kty: "EC" }))
        const error = yield* loadFileError(file)
        expect(error._tag).toBe("WalletError")
        expect(error.path).toBe(file)
        expect(error.reason).toBe('unsupported key type "EC"')
      })
    )

    it.scoped("a key whose n does not match its d (n from another key)", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const file = Path.join(dir, "mismatch.json")
        yield* writeFile(file, JSON.stringify({ ...walletJwk, n: walletJwk2.n }))
        const error = yield* loadFileError(file)
        expect(error._tag).toBe("WalletError")
        expect(error.path).toBe(file)
        expect(error.reason).toMatch(/does not match the public modulus n/)
        for (const secret of [walletJwk.d, walletJwk.p, walletJwk.q]) {
          expect(error.message).not.toContain(secret)
          expect(JSON.stringify(error)).not.toContain(secret)
          expect(Util.inspect(error, { depth: 10 })).not.toContain(secret)
        }
      })
    )

    it.scoped("a relative path is reported as the absolute file it names, for every kind of failure", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const notJson = Path.join(dir, "not-json.json")
        const noD = Path.join(dir, "no-d.json")
        yield* writeFile(notJson, "{")
        const { d: _d, ...withoutD } = walletJwk
        yield* writeFile(noD, JSON.stringify(withoutD))
        const notJsonError = yield* loadFileError(Path.relative(process.cwd(), notJson))
        const noDError = yield* loadFileError(Path.relative(process.cwd(), noD))
        expect(notJsonError.path).toBe(notJson)
        expect(noDError.path).toBe(noD)
      })
    )

    it.scoped("a path that is a directory cannot be read", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const error = yield* loadFileError(dir)
        expect(error._tag).toBe("WalletError")
        expect(error.path).toBe(dir)
        expect(error.reason).toMatch(/cannot read the key file \(EISDIR\)/)
      })
    )
  })

  describe("the private key never leaks", () => {
    it.effect("String, JSON.stringify and util.inspect of the wallet hold neither d nor p", () =>
      Effect.gen(function* () {
        const wallet = yield* Wallet.Wallet
        const renderings = [
          String(wallet),
          `${wallet}`,
          JSON.stringify(wallet),
          JSON.stringify({ wallet }),
          Util.inspect(wallet, { depth: 10, showHidden: true }),
          Util.inspect({ wallet }, { depth: 10, showHidden: true }),
          Util.inspect(wallet, { depth: 10, showHidden: true, customInspect: false }),
          Util.format("%o %O %j", wallet, wallet, wallet)
        ]
        for (const text of renderings) {
          expect(text).not.toContain(walletJwk.d)
          expect(text).not.toContain(walletJwk.p)
          expect(text).not.toContain(walletJwk.d.slice(0, 32))
          expect(text).not.toContain(walletJwk.p.slice(0, 32))
        }
        expect(String(wallet)).toBe("Wallet(<redacted>)")
        expect(JSON.stringify(wallet)).toBe('"Wallet(<redacted>)"')
        expect(Util.inspect(wallet, { depth: 10, showHidden: true })).toBe(`Wallet(${wallet.address})`)
      }).pipe(Effect.provide(WalletTest))
    )
  })
})
