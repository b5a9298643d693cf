/**
 * The Scheduler-Location record on the wire: the item `publish` signs, its upload to an ANS-104 bundler, and the
 * GraphQL query `resolve` runs (through the Gateway's `graphql`, timeouts and retries).
 *
 * - The record's tags are those of the reference deploy script (`permaweb/ao@ff178d51:
 *   .devcontainer/services/su/deploy-scheduler/index.js`): `Content-Type`, `Type: Scheduler-Location`,
 *   `Time-To-Live`, `Url`, `Data-Protocol: ao`, `Variant: ao.TN.1`, data `1984`.
 * - The query is scheduler-utils' `GetSchedulerLocation` (`scheduler-utils/src/client/gateway.js`) with `first: 10`
 *   and the owner, id and block asked for too, so that records of another owner are skipped and expired ones told.
 * - The upload is the legacy SU's `POST {UPLOAD_NODE_URL}/tx/arweave` (`servers/su/src/domain/clients/uploader.rs`).
 */
import * as Crypto from "node:crypto"
import { createData } from "@dha-team/arbundles"
import { HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { Effect, Schema } from "effect"
import { layoutSigner, signatureData } from "../../internal/signature-data.js"
import type { Wallet } from "../../Wallet.js"
import * as GatewayHttp from "./gateway-http.js"
import { attempts, join, type RequestOptions, reasonOf } from "./gateway-http.js"

/** The tags of a record for `url` (a bare origin) and `ttlMs`. */
export const recordTags = (url: string, ttlMs: number): Array<{ name: string; value: string }> => [
  { name: "Content-Type", value: "text/plain" },
  { name: "Type", value: "Scheduler-Location" },
  { name: "Time-To-Live", value: String(ttlMs) },
  { name: "Url", value: url },
  { name: "Data-Protocol", value: "ao" },
  { name: "Variant", value: "ao.TN.1" }
]

/** The signed record: its id and raw ANS-104 bytes. A random anchor makes each record a new item. */
export const buildRecord = (
  wallet: Wallet["Type"],
  url: string,
  ttlMs: number
): Effect.Effect<{ readonly id: string; readonly raw: Uint8Array }> =>
  Effect.suspend(() => {
    const anchor = Crypto.randomBytes(32).toString("base64url").slice(0, 32)
    const item = createData("1984", layoutSigner(wallet.owner), { tags: recordTags(url, ttlMs), anchor })
    const data = signatureData({
      signatureType: 1,
      owner: wallet.owner,
      target: new Uint8Array(0),
      anchor: Buffer.from(anchor),
      tags: item.rawTags,
      data: Buffer.from("1984")
    })
    return Effect.map(wallet.sign(data), (signature) => {
      const raw = new Uint8Array(item.getRaw())
      raw.set(signature, 2)
      return { id: Crypto.createHash("sha256").update(signature).digest("base64url"), raw }
    })
  })

const UploadReply = Schema.Struct({ id: Schema.String })

/**
 * `POST {uploadUrl}/tx/arweave` with the raw item; fails with a reason unless the bundler answers 2xx with the
 * item's own `id`.
 */
export const upload = (
  client: HttpClient.HttpClient,
  uploadUrl: string,
  item: { readonly id: string; readonly raw: Uint8Array },
  options: RequestOptions
): Effect.Effect<void, string> =>
  HttpClient.filterStatusOk(client)
    .execute(
      HttpClientRequest.post(join(uploadUrl, "/tx/arweave"), { acceptJson: true }).pipe(
        HttpClientRequest.bodyUint8Array(item.raw, "application/octet-stream")
      )
    )
    .pipe(
      Effect.flatMap(HttpClientResponse.schemaBodyJson(UploadReply)),
      attempts(options),
      Effect.mapError(reasonOf),
      Effect.flatMap((reply) =>
        reply.id === item.id
          ? Effect.void
          : Effect.fail(`the bundler acknowledged id ${reply.id}, not the record's ${item.id}`)
      )
    )

const Node = Schema.Struct({
  id: Schema.String,
  owner: Schema.Struct({ address: Schema.String, key: Schema.optional(Schema.NullOr(Schema.String)) }),
  tags: Schema.Array(Schema.Struct({ name: Schema.String, value: Schema.String })),
  block: Schema.optional(Schema.NullOr(Schema.Struct({ height: Schema.Number, timestamp: Schema.Number })))
})

/** A record as GraphQL returns it. */
export type RecordNode = typeof Node.Type

const Reply = Schema.Struct({
  data: Schema.Struct({ transactions: Schema.Struct({ edges: Schema.Array(Schema.Struct({ node: Node })) }) })
})

/** scheduler-utils' `GetSchedulerLocation`, asking for the ten latest records with their owner and block. */
export const locationQuery = `query GetSchedulerLocation($owner: String!) {
  transactions(owners: [$owner], tags: [{name: "Data-Protocol", values: ["ao"]}, {name: "Type", values: ["Scheduler-Location"]}], sort: HEIGHT_DESC, first: 10) {
    edges { node { id owner { address key } tags { name value } block { height timestamp } } }
  }
}`

/** The latest records of `owner`, newest first (pending ones first, as ar.io sorts). */
export const records = (
  client: HttpClient.HttpClient,
  gatewayUrl: string,
  owner: string,
  options: RequestOptions
): Effect.Effect<ReadonlyArray<RecordNode>, string> =>
  Effect.map(
    GatewayHttp.graphql(client, gatewayUrl, { query: locationQuery, variables: { owner } }, Reply, options),
    (reply) => reply.data.transactions.edges.map((e) => e.node)
  )
