/**
 * A small client of an SU's legacy API, doing what the ao CU does with it: walk a process's schedule page by
 * page (`loadMessages`: next `from` = the last edge's cursor while `has_next_page`), and check what it reads:
 * each assignment's signature from its JSON alone, and the hash chain (`hashChain()`, permaweb/ao#1112).
 * Used by `scripts/demo.ts` and the end-to-end tests.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { createData, type Signer } from "@dha-team/arbundles"
import { Effect, Schema } from "effect"
import type { AssignmentJson, MessageNode, Page } from "./Api.js"
import { initialHashChain, nextHashChain } from "./Assignment.js"
import { addressOf } from "./DataItem.js"
import { verify as verifySignature } from "./Wallet.js"

/**
 * A request to the SU failed: no answer, a non-200 status (`status`, with the body's `error`), or a page that
 * breaks the protocol (e.g. `has_next_page` with no edges, which would make a CU loop forever).
 *
 * @since 0.1.0
 */
export class ClientError extends Schema.TaggedError<ClientError>()("ClientError", {
  url: Schema.String,
  status: Schema.optional(Schema.Number),
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.url}: ${this.status === undefined ? "" : `${this.status} `}${this.reason}`
  }
}

/**
 * GETs `url` and parses the JSON body. Fails with `ClientError` on a network error, a non-200 status or a body
 * that is not JSON.
 *
 * @since 0.1.0
 */
export const getJson = (url: string): Effect.Effect<unknown, ClientError> =>
  Effect.tryPromise({
    try: async () => {
      const res = await fetch(url)
      return { status: res.status, text: await res.text() }
    },
    catch: (e) => new ClientError({ url, reason: (e as Error).message })
  }).pipe(
    Effect.flatMap(({ status, text }) =>
      Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: () => new ClientError({ url, status, reason: `not JSON: ${text.slice(0, 200)}` })
      }).pipe(
        Effect.filterOrFail(
          () => status === 200,
          (body) =>
            new ClientError({
              url,
              status,
              reason: String((body as { error?: unknown } | null)?.error ?? text.slice(0, 200))
            })
        )
      )
    )
  )

/**
 * One edge of a schedule page.
 *
 * @since 0.1.0
 */
export type Edge = (typeof Page.Type)["edges"][number]

/**
 * The value of an assignment tag of a schedule entry (`{message, assignment}`), e.g. `"Nonce"`.
 *
 * @since 0.1.0
 */
export const assignmentTag = (node: typeof MessageNode.Type, name: string): string | undefined =>
  node.assignment.tags.find((t) => t.name === name)?.value

/**
 * Walks the whole schedule of `processId` at `baseUrl`, `limit` entries per page (default 1000, the CU's page
 * size), with extra query parameters `query` (e.g. `process-id`). Returns every edge and the number of pages.
 * Fails with `ClientError` on a failed request or a page with `has_next_page` and no edges.
 *
 * @since 0.1.0
 */
export const walkSchedule = (
  baseUrl: string,
  processId: string,
  options: { readonly limit?: number | undefined; readonly query?: Record<string, string> | undefined } = {}
): Effect.Effect<{ readonly edges: ReadonlyArray<Edge>; readonly pages: number }, ClientError> =>
  Effect.gen(function* () {
    const edges: Array<Edge> = []
    let from: string | undefined
    let pages = 0
    while (true) {
      const params = new URLSearchParams({
        ...options.query,
        limit: String(options.limit ?? 1000),
        ...(from === undefined ? {} : { from })
      })
      const url = `${baseUrl}/${processId}?${params}`
      const page = (yield* getJson(url)) as typeof Page.Type
      pages++
      edges.push(...page.edges)
      if (!page.page_info.has_next_page) return { edges, pages }
      const last = page.edges.at(-1)
      if (last === undefined) return yield* new ClientError({ url, reason: "has_next_page with no edges" })
      from = last.cursor
    }
  })

const verificationOnly = (owner: Uint8Array): Signer =>
  ({
    publicKey: Buffer.from(owner),
    signatureType: 1,
    signatureLength: 512,
    ownerLength: 512,
    sign: () => {
      throw new Error("verification only")
    }
  }) as unknown as Signer

/**
 * Checks an assignment from its JSON alone, as a client without the bytes can: rebuilds the ANS-104 item from
 * `owner.key`, `tags` and an empty payload (no target, no anchor) with arbundles, verifies the RSA-PSS signature
 * over its deep hash, and checks `id` = sha256(signature) and `owner.address` = sha256(owner.key). Returns what
 * is wrong, or `undefined` when it holds.
 *
 * @since 0.1.0
 */
export const verifyAssignmentJson = (json: typeof AssignmentJson.Type): Effect.Effect<string | undefined> =>
  Effect.promise(async () => {
    if (json.anchor !== null || json.target !== null) return "an assignment carries no anchor or target"
    const owner = Buffer.from(json.owner.key, "base64url")
    const item = createData("", verificationOnly(owner), { tags: [...json.tags] })
    const signature = Buffer.from(json.signature, "base64url")
    if (!verifySignature(owner, await item.getSignatureData(), signature)) return "the signature does not verify"
    if (Crypto.createHash("sha256").update(signature).digest("base64url") !== json.id) return "id ≠ sha256(signature)"
    if (addressOf(owner) !== json.owner.address) return "owner.address ≠ sha256(owner.key)"
    return undefined
  })

/**
 * Checks the hash chain of a schedule read from nonce 0, as the CU does link by link (plus the starting value,
 * which the CU only checks for presence). Returns the index of the first entry that breaks (a wrong
 * `Hash-Chain`, or a `Nonce` out of sequence), or `undefined` when the chain holds.
 *
 * @since 0.1.0
 */
export const verifyScheduleChain = (
  processId: string,
  nodes: ReadonlyArray<typeof MessageNode.Type>
): number | undefined => {
  let expected = initialHashChain(processId)
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!
    const chain = assignmentTag(node, "Hash-Chain")
    if (assignmentTag(node, "Nonce") !== String(i) || chain !== expected) return i
    expected = nextHashChain(node.assignment.id, chain)
  }
  return undefined
}
