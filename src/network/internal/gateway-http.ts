/**
 * The Gateway's HTTP requests, on `@effect/platform`'s `HttpClient`, each with a timeout and `Schedule` retries,
 * every response decoded with a `Schema`:
 * - `GET {url}/block/current` (HyperBEAM's `ar_timestamp` / `hb_client:arweave_timestamp/0`);
 * - `POST {url}/graphql` with the legacy SU's `gql_tx` query (`servers/su/src/domain/clients/gateway.rs`);
 * - `GET {url}/tx/{id}/status` (AOP-2 `base-layer`).
 */
import { HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { Duration, Effect, Option, Schedule, Schema } from "effect"

/** How each request is made: `timeoutMs` per attempt, then up to `retries` more attempts `retryDelayMs` apart. */
export interface RequestOptions {
  readonly timeoutMs: number
  readonly retries: number
  readonly retryDelayMs: number
}

/** `GET /block/current`: the fields HyperBEAM reads (extra fields are ignored). */
export const BlockJson = Schema.Struct({
  height: Schema.NonNegativeInt,
  indep_hash: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{43,64}$/)),
  timestamp: Schema.NonNegativeInt
})

/** A transaction as the legacy SU reads it from `data.transactions.edges[0].node`. */
export const TransactionNode = Schema.Struct({
  id: Schema.String,
  signature: Schema.String,
  anchor: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  recipient: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  owner: Schema.optionalWith(
    Schema.NullOr(
      Schema.Struct({ address: Schema.optional(Schema.String), key: Schema.optional(Schema.NullOr(Schema.String)) })
    ),
    { default: () => null }
  ),
  tags: Schema.optionalWith(Schema.Array(Schema.Struct({ name: Schema.String, value: Schema.String })), {
    default: () => []
  })
})

const GraphqlReply = Schema.Struct({
  data: Schema.Struct({
    transactions: Schema.Struct({ edges: Schema.Array(Schema.Struct({ node: TransactionNode })) })
  })
})

/** `GET /tx/{id}/status` with 200. */
const TxStatusJson = Schema.Struct({
  block_height: Schema.NonNegativeInt,
  number_of_confirmations: Schema.NonNegativeInt
})

/** The legacy SU's `gql_tx` query, with the id inlined as it does (`gateway.rs`). */
export const transactionQuery = (id: string): string =>
  `query { transactions(ids: [${JSON.stringify(id)}]) { edges { node { id signature anchor owner { address key } tags { name value } recipient } } } }`

/** `base` without trailing slashes, then `path` (which starts with `/`). */
export const join = (base: string, path: string): string => `${base.replace(/\/+$/, "")}${path}`

/** A failure's reason as one short line (for logs, `/health` and error bodies). */
export const reasonOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const e = error as {
      _tag?: string
      message?: string
      reason?: unknown
      response?: { status?: number }
      cause?: unknown
    }
    if (e._tag === "TimeoutException") return "timed out"
    if (e._tag === "ParseError") return "the response does not decode"
    if (e._tag === "ResponseError") {
      if (e.reason === "StatusCode") return `the gateway answered ${e.response?.status}`
      return "the response does not decode"
    }
    if (e._tag === "RequestError") {
      const cause = e.cause as { cause?: { code?: string }; message?: string } | undefined
      return `the request failed (${cause?.cause?.code ?? cause?.message ?? "transport error"})`
    }
    if (typeof e.message === "string" && e.message.length > 0) return e.message.split("\n")[0] ?? e.message
  }
  return String(error)
}

/** Applies the timeout to each attempt and the retries around them. */
export const attempts =
  (options: RequestOptions) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, unknown, R> =>
    effect.pipe(
      Effect.timeout(Duration.millis(options.timeoutMs)),
      Effect.retry({ times: options.retries, schedule: Schedule.spaced(Duration.millis(options.retryDelayMs)) })
    )

/** The current block; fails with the reason of the last attempt. */
export const currentBlock = (
  client: HttpClient.HttpClient,
  url: string,
  options: RequestOptions
): Effect.Effect<typeof BlockJson.Type, string> =>
  HttpClient.filterStatusOk(client)
    .get(join(url, "/block/current"), { acceptJson: true })
    .pipe(Effect.flatMap(HttpClientResponse.schemaBodyJson(BlockJson)), attempts(options), Effect.mapError(reasonOf))

/** The transaction `id` through GraphQL: `None` when there is no edge; fails with a reason when it cannot tell. */
export const transaction = (
  client: HttpClient.HttpClient,
  url: string,
  id: string,
  options: RequestOptions
): Effect.Effect<Option.Option<typeof TransactionNode.Type>, string> =>
  graphql(client, url, { query: transactionQuery(id), variables: {} }, GraphqlReply, options).pipe(
    Effect.map((reply) => Option.fromNullable(reply.data.transactions.edges.find((e) => e.node.id === id)?.node))
  )

/**
 * `POST {url}/graphql` with `{query, variables}`, the reply decoded with `reply`; fails with the reason of the last
 * attempt (a non-2xx status, a timeout, a body that does not decode).
 */
export const graphql = <A, I>(
  client: HttpClient.HttpClient,
  url: string,
  body: { readonly query: string; readonly variables: Record<string, unknown> },
  reply: Schema.Schema<A, I>,
  options: RequestOptions
): Effect.Effect<A, string> =>
  HttpClient.filterStatusOk(client)
    .execute(
      HttpClientRequest.post(join(url, "/graphql"), { acceptJson: true }).pipe(HttpClientRequest.bodyUnsafeJson(body))
    )
    .pipe(Effect.flatMap(HttpClientResponse.schemaBodyJson(reply)), attempts(options), Effect.mapError(reasonOf))

/** What `GET /tx/{id}/status` says. */
export type TxStatusReply =
  | { readonly _tag: "Confirmed"; readonly blockHeight: number; readonly confirmations: number }
  | { readonly _tag: "Pending" }
  | { readonly _tag: "NotFound" }

/** The L1 status of `id`: 200 → confirmed, 202 → pending, 404 → not found; anything else fails with a reason. */
export const txStatus = (
  client: HttpClient.HttpClient,
  url: string,
  id: string,
  options: RequestOptions
): Effect.Effect<TxStatusReply, string> =>
  client.get(join(url, `/tx/${id}/status`)).pipe(
    Effect.flatMap(
      (response): Effect.Effect<TxStatusReply, unknown> =>
        response.status === 200
          ? Effect.map(HttpClientResponse.schemaBodyJson(TxStatusJson)(response), (s) => ({
              _tag: "Confirmed" as const,
              blockHeight: s.block_height,
              confirmations: s.number_of_confirmations
            }))
          : response.status === 202
            ? Effect.succeed({ _tag: "Pending" as const })
            : response.status === 404
              ? Effect.succeed({ _tag: "NotFound" as const })
              : Effect.fail(new Error(`the gateway answered ${response.status}`))
    ),
    attempts(options),
    Effect.mapError(reasonOf)
  )
