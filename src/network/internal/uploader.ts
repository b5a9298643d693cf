/**
 * The uploader's drain loop: takes due items from the store's outbox, posts each to the bundler
 * (`POST {url}/tx/arweave`, the raw ANS-104 bytes as `application/octet-stream`, as the legacy SU's uploader does)
 * with a timeout and bounded concurrency (a pipeline: a new item starts as soon as a permit is free), checks the
 * reply (2xx and the item's own `id`), and records the outcomes: the uploaded items together in one update, failed
 * ones with their next attempt after a capped exponential backoff. Callers waiting in `remote_confirmation` are woken as soon as the bundler acknowledged their items.
 */
import { HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import {
  Cause,
  Chunk,
  Clock,
  Deferred,
  Duration,
  Effect,
  Either,
  Metric,
  Option,
  Queue,
  Schedule,
  Schema,
  type Scope
} from "effect"
import { AssignmentStore, type OutboxItem, type OutboxStatus } from "../../AssignmentStore.js"
import { StoreError } from "../../errors.js"
import type { Upload } from "../../Scheduler.js"
import type { Options, Uploader } from "../Uploader.js"
import { reasonOf } from "./gateway-http.js"

export const DEFAULT_CONCURRENCY = 8
export const DEFAULT_TIMEOUT_MS = 30_000
export const DEFAULT_BACKOFF_BASE_MS = 1_000
export const DEFAULT_BACKOFF_CAP_MS = 32_000
export const DEFAULT_POLL_INTERVAL_MS = 1_000

/** 1 ms to ~65 s, doubling. */
const latencyBoundaries = Array.from({ length: 17 }, (_, i) => 2 ** i)

/** Items queued and not yet uploaded (pending and retrying), sampled by the drain loop. */
export const outboxDepth = Metric.gauge("su_upload_outbox_depth", {
  description: "Outbox items not yet acknowledged by the bundler"
})

/** Age of the oldest item not yet uploaded, in ms (0 when the outbox is empty), sampled by the drain loop. */
export const outboxOldestAge = Metric.gauge("su_upload_outbox_oldest_age_ms", {
  description: "Age in ms of the oldest outbox item not yet uploaded"
})

/** Duration of one upload attempt that succeeded, in ms. */
export const uploadLatency = Metric.timerWithBoundaries(
  "su_upload_latency",
  latencyBoundaries,
  "Bundler upload latency in ms (successful attempts)"
)

/** Items acknowledged by the bundler. */
export const uploads = Metric.counter("su_uploads_total", {
  description: "Data items acknowledged by the bundler",
  incremental: true
})

/** Failed upload attempts, tagged `kind`: status, wrong_id, timeout, transport, body. */
export const uploadFailures = Metric.counter("su_upload_failures_total", {
  description: "Failed upload attempts, by kind (status, wrong_id, timeout, transport, body)",
  incremental: true
})

/** The bundler's reply: only `id` is checked (Turbo, the legacy SU and the MU all read it). */
const BundlerReply = Schema.Struct({ id: Schema.String })

/** Why an attempt failed, as a bounded metric tag, and a one-line reason for the log and the outbox row. */
interface Failure {
  readonly kind: "status" | "wrong_id" | "timeout" | "transport" | "body"
  readonly reason: string
}

/** The bundler path relative to the upload URL, resolved as the legacy SU does (`https://x/v1` → `https://x/tx/arweave`). */
export const bundlerUrl = (url: string): string => new URL("tx/arweave", url).toString()

/** The delay before attempt `attempts + 1`, in ms: `base`, doubling, capped at `cap` (a `Schedule`). */
const backoffMs = (base: number, cap: number) => {
  const policy = Schedule.delays(
    Schedule.exponential(Duration.millis(base)).pipe(Schedule.either(Schedule.spaced(Duration.millis(cap))))
  )
  return (attempts: number): Effect.Effect<number> =>
    Effect.map(Schedule.run(policy, 0, Array.from({ length: Math.max(1, Math.min(attempts, 64)) })), (delays) =>
      Duration.toMillis(Option.getOrElse(Chunk.last(delays), () => Duration.millis(cap)))
    )
}

interface Waiter {
  readonly remaining: Set<string>
  readonly done: Deferred.Deferred<void>
}

/**
 * Starts the drain loop in the current scope and returns the service. Fails with `StoreError` when the store has
 * no outbox.
 */
export const make = (
  options: Options
): Effect.Effect<Uploader["Type"], StoreError, AssignmentStore | HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function* () {
    const outbox = (yield* AssignmentStore).outbox
    if (outbox === undefined) {
      return yield* Effect.fail(new StoreError({ operation: "outbox", reason: "this store keeps no upload outbox" }))
    }
    const client = yield* HttpClient.HttpClient
    const target = bundlerUrl(options.url)
    const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY)
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const pollMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS
    const backoff = backoffMs(
      options.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS,
      options.backoffCapMs ?? DEFAULT_BACKOFF_CAP_MS
    )
    const startedAt = yield* Clock.currentTimeMillis
    const wake = yield* Queue.sliding<void>(1)
    const waiters = new Map<string, Set<Waiter>>()

    const acknowledged = (id: string) => {
      const set = waiters.get(id)
      if (set === undefined) return
      waiters.delete(id)
      for (const waiter of set) {
        waiter.remaining.delete(id)
        if (waiter.remaining.size === 0) Deferred.unsafeDone(waiter.done, Effect.void)
      }
    }

    const attempt = (item: OutboxItem): Effect.Effect<void, Failure> =>
      client
        .execute(
          HttpClientRequest.post(target, { acceptJson: true }).pipe(
            HttpClientRequest.bodyUint8Array(item.bytes, "application/octet-stream")
          )
        )
        .pipe(
          Effect.mapError((error): Failure => ({ kind: "transport", reason: reasonOf(error) })),
          Effect.flatMap((response) =>
            response.status < 200 || response.status > 299
              ? Effect.fail<Failure>({ kind: "status", reason: `the bundler answered ${response.status}` })
              : Effect.mapError(
                  HttpClientResponse.schemaBodyJson(BundlerReply)(response),
                  (): Failure => ({ kind: "body", reason: "the bundler's reply has no id" })
                )
          ),
          Effect.flatMap((reply) =>
            reply.id === item.id
              ? Effect.void
              : Effect.fail<Failure>({
                  kind: "wrong_id",
                  reason: `the bundler acknowledged ${reply.id}, not ${item.id}`
                })
          ),
          Effect.timeoutFail({
            duration: Duration.millis(timeoutMs),
            onTimeout: (): Failure => ({ kind: "timeout", reason: `no answer within ${timeoutMs} ms` })
          })
        )

    /**
     * Whether `item` is already on the network: only for items queued before this start, which a crashed run may
     * have posted without recording it (`HEAD {checkUrl}/{id}`, a gateway's G6). Any doubt means "no".
     */
    const alreadyThere = (item: OutboxItem): Effect.Effect<boolean> =>
      options.checkUrl === undefined || item.createdAt > startedAt
        ? Effect.succeed(false)
        : client.head(new URL(item.id, `${options.checkUrl.replace(/\/+$/, "")}/`).toString()).pipe(
            Effect.map((response) => response.status >= 200 && response.status <= 299),
            Effect.timeout(Duration.millis(timeoutMs)),
            Effect.orElseSucceed(() => false)
          )

    /** One item: `Right` when the bundler acknowledged it (or it was already there). */
    const uploadOne = (item: OutboxItem) =>
      Effect.gen(function* () {
        if (yield* alreadyThere(item)) return Either.right(item.id)
        const result = yield* Effect.either(Metric.trackDuration(attempt(item), uploadLatency))
        if (Either.isRight(result)) {
          acknowledged(item.id)
          yield* Metric.increment(uploads)
          return Either.right(item.id)
        }
        yield* Metric.increment(Metric.tagged(uploadFailures, "kind", result.left.kind))
        return Either.left({ item, failure: result.left })
      })

    const sample = (status: OutboxStatus, now: number) =>
      Effect.zipRight(
        Metric.set(outboxDepth, status.pending + status.retrying),
        Metric.set(
          outboxOldestAge,
          status.oldestPendingAt === undefined ? 0 : Math.max(0, now - status.oldestPendingAt)
        )
      )

    /** Items handed to an upload fiber and not yet recorded in the outbox: never fetched twice meanwhile. */
    const inFlight = new Set<string>()
    /** Outcomes the loop records next: the successes in one update. */
    let finished: Array<Either.Either<string, { readonly item: OutboxItem; readonly failure: Failure }>> = []
    const permits = yield* Effect.makeSemaphore(concurrency)
    /** When the gauges were last sampled (ms); at most once per `pollMs` under load. */
    let sampledAt = Number.NEGATIVE_INFINITY

    const record = Effect.suspend(() => {
      const batch = finished
      finished = []
      if (batch.length === 0) return Effect.void
      return Effect.gen(function* () {
        const at = yield* Clock.currentTimeMillis
        const uploaded = batch.flatMap((r) => (Either.isRight(r) ? [r.right] : []))
        yield* outbox.markUploaded(uploaded, at)
        // recorded: a waiter that registered since the acknowledgement now finds it in the store, or is woken here
        for (const id of uploaded) acknowledged(id)
        for (const result of batch) {
          if (Either.isRight(result)) continue
          const { item, failure } = result.left
          const attempts = item.attempts + 1
          const delay = yield* backoff(attempts)
          yield* outbox.markFailed(item.id, attempts, at + delay, failure.reason)
          if (attempts === 1 || attempts % 10 === 0) {
            yield* Effect.logWarning(`upload of ${item.kind} ${item.id} failed: ${failure.reason}`).pipe(
              Effect.annotateLogs({ processId: item.processId, slot: item.slot, attempts, retryInMs: delay })
            )
          }
        }
      }).pipe(
        // recorded or not, the items may be fetched again (an unrecorded success is then looked up or re-posted)
        Effect.ensuring(
          Effect.sync(() => {
            for (const r of batch) inFlight.delete(Either.isRight(r) ? r.right : r.left.item.id)
          })
        )
      )
    })

    /** Waits for a wake-up (a new item, a finished upload, a redrive) or the next due attempt, at most `pollMs`. */
    const pause = (now: number) =>
      Effect.gen(function* () {
        let wait = pollMs
        if (inFlight.size === 0) {
          const status = yield* outbox.status()
          sampledAt = now
          yield* sample(status, now)
          if (status.nextAttemptAt !== undefined) wait = Math.min(pollMs, Math.max(1, status.nextAttemptAt - now))
        }
        yield* Effect.timeout(Queue.take(wake), Duration.millis(wait)).pipe(Effect.ignore)
      })

    /**
     * One turn of the loop: records what finished, then starts uploads for due items while fewer than twice
     * `concurrency` are in flight (each waits for one of `concurrency` permits), else pauses.
     */
    const turn = Effect.gen(function* () {
      yield* record
      const now = yield* Clock.currentTimeMillis
      if (now - sampledAt >= pollMs) {
        sampledAt = now
        yield* sample(yield* outbox.status(), now)
      }
      const free = concurrency * 2 - inFlight.size
      const due =
        free <= 0
          ? []
          : (yield* outbox.due(now, free + inFlight.size)).filter((item) => !inFlight.has(item.id)).slice(0, free)
      if (due.length === 0) return yield* pause(now)
      for (const item of due) {
        inFlight.add(item.id)
        yield* Effect.forkScoped(
          permits
            .withPermits(1)(uploadOne(item))
            .pipe(
              // a defect is one more failed attempt: the item must leave `inFlight` to be tried again
              Effect.catchAllCause((cause) =>
                Effect.succeed(
                  Either.left({
                    item,
                    failure: { kind: "transport" as const, reason: Cause.pretty(cause).split("\n")[0]! }
                  })
                )
              ),
              Effect.flatMap((result) =>
                Effect.sync(() => {
                  finished.push(result)
                  wake.unsafeOffer(undefined)
                })
              )
            )
        )
      }
    })

    const loop = Effect.forever(
      turn.pipe(
        Effect.catchAllCause((cause) =>
          Effect.zipRight(
            Effect.logWarning("the upload outbox could not be drained", cause),
            Effect.sleep(Duration.millis(pollMs))
          )
        )
      )
    )
    yield* Effect.forkScoped(loop)

    const confirmed = (ids: ReadonlyArray<string>): Effect.Effect<void> =>
      Effect.flatMap(Deferred.make<void>(), (done) => {
        const waiter: Waiter = { remaining: new Set(ids), done }
        const unregister = Effect.sync(() => {
          for (const id of ids) {
            const set = waiters.get(id)
            set?.delete(waiter)
            if (set?.size === 0) waiters.delete(id)
          }
        })
        return Effect.gen(function* () {
          for (const id of ids) {
            const set = waiters.get(id)
            if (set === undefined) waiters.set(id, new Set([waiter]))
            else set.add(waiter)
          }
          // registered first, then checked: an item acknowledged in between is seen by one or the other
          const already = yield* Effect.orElseSucceed(outbox.uploaded(ids), () => new Set<string>())
          for (const id of already) waiter.remaining.delete(id)
          if (waiter.remaining.size > 0) yield* Deferred.await(done)
        }).pipe(Effect.ensuring(unregister))
      })

    const upload: Upload = { queued: () => void wake.unsafeOffer(undefined), confirmed }

    return {
      upload,
      status: (statusOptions) => outbox.status(statusOptions),
      redrive: Effect.tap(outbox.redrive(), () => wake.offer(undefined))
    }
  })
