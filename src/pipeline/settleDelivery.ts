/**
 * Settling deliveries: every delivery ends acknowledged after it is sent, requeued for a later try, or recorded in
 * the `FailureStore` and acknowledged. One event's failure never skips, blocks or loses another (Zulip loses the
 * rest of its batch on a non-retryable error; this does not).
 */
import { Cause, Clock, Effect, Metric } from "effect"
import { parseMailbox } from "../domain/addresses.ts"
import { decodeEmailEvent, type EmailEvent, isJsonObject, parseJsonBody, templateName, withFailedTries } from "../domain/EmailEvent.ts"
import { InvalidEvent, isTransient, type SendEmailError, smtpCodeOf, type Unavailable } from "../domain/errors.ts"
import { checkEventDepth } from "../domain/jsonDepth.ts"
import type { DeliveryReport } from "../domain/OutgoingEmail.ts"
import { eventForRecipients } from "../domain/recipientCopy.ts"
import { isThrottled } from "../domain/throttling.ts"
import { EmailBuilder } from "../email/EmailBuilder.ts"
import { type FailureReason, type FailureRecord, FailureStore } from "../records/FailureStore.ts"
import type { Delivery } from "../queue/QueueConsumer.ts"
import { RealmRepository } from "../realms/RealmRepository.ts"
import { SmtpConnection } from "../smtp/SmtpConnection.ts"
import type { SuppressionList } from "../smtp/SuppressionList.ts"
import { WorkerSettings } from "../config/WorkerSettings.ts"
import { withEventSpan } from "../operations/eventSpan.ts"
import { ErrorTracker } from "../operations/ErrorTracking.ts"
import { mayHaveBeenSent, SentLedger, type SentLedgerShape } from "../limits/SentLedger.ts"
import {
  countFailure,
  deliveriesRetryingFailureStore,
  duplicatesSuppressed,
  eventsConsumed,
  eventsRequeued,
  eventsSettled,
  ledgerWindowSeconds
} from "./metrics.ts"
import { outageSchedule, requeueDelay, storeOutageSchedule } from "./retryPolicy.ts"
import { type DeliveryAnnotations, deliveryAnnotations, deliverEvent, sameAnnotations, type SentEmail } from "./deliverEvent.ts"

export type Outcome = "sent" | "requeued" | "failed" | "released"

export interface Settlement {
  readonly outcome: Outcome
  readonly startedAtMillis: number
  readonly finishedAtMillis: number
}

export type ConsumeServices = RealmRepository | EmailBuilder | SmtpConnection | SuppressionList | FailureStore

/** Ack, logging instead of failing: an ack lost with the connection means the broker redelivers (a duplicate, never a loss). */
const settleQuietly = (operation: string, effect: Effect.Effect<void, { readonly message: string }>) =>
  effect.pipe(
    Effect.catch((error) => Effect.logWarning(`could not ${operation} the delivery; the broker will redeliver it: ${error.message}`))
  )

/**
 * Write a failure record. A failure store that cannot be written (disk full) is an outage like any other: the
 * delivery stays unacked while the record is retried with backoff, so nothing is lost and nothing loops. Meanwhile
 * the delivery is counted in `deliveriesRetryingFailureStore`, which makes `/readyz` say not ready. Nothing about the
 * event itself can fail the store (it cuts what it cannot keep whole), so only the file is retried.
 */
const writeFailure = Effect.fnUntraced(function*(failure: FailureRecord, defect?: Cause.Cause<unknown>) {
  const settings = yield* WorkerSettings
  // this delivery's own flag: set on its first failed write, so the gauge counts each stuck delivery once
  let retrying = false
  const countRetrying = Effect.suspend(() => {
    if (retrying) return Effect.void
    retrying = true
    return Metric.modify(deliveriesRetryingFailureStore, 1)
  })
  yield* (yield* FailureStore).record(failure).pipe(
    Effect.tapError((error) =>
      Effect.andThen(Effect.logError(`could not record a failed event, trying again: ${error.message}`), countRetrying)
    ),
    Effect.retry(storeOutageSchedule(settings)),
    Effect.ensuring(Effect.suspend(() => retrying ? Metric.modify(deliveriesRetryingFailureStore, -1) : Effect.void)),
    // the schedule never gives up: the error cannot get here
    Effect.orDie
  )
  yield* countFailure(failure.reason)
  yield* reportFailure(failure, defect)
})

/** Error tracking (Sentry, when configured) hears of the failure by its reason, template and realm alone. */
const reportFailure = (failure: FailureRecord, defect: Cause.Cause<unknown> | undefined) =>
  Effect.flatMap(ErrorTracker, (tracker) => {
    const event = isJsonObject(failure.event) ? failure.event : {}
    return tracker.failed({
      reason: failure.reason,
      template: typeof event.template_prefix === "string" ? event.template_prefix : null,
      realm: typeof event.realm_id === "number" ? String(event.realm_id) : null,
      defect
    })
  })

/** Record the event as failed, then ack. */
const recordFailure = Effect.fnUntraced(function*(
  delivery: Delivery,
  event: unknown,
  reason: FailureReason,
  defect?: Cause.Cause<unknown>
) {
  yield* writeFailure({ event, reason, body: delivery.body }, defect)
  yield* settleQuietly("ack", delivery.ack)
  return "failed" as const
})

type Refusal = DeliveryReport["rejected"][number]

/** A refusal names only its first few recipients: the copy in the record lists them all. */
const REFUSALS_NAMED = 5

const describeRefusals = (refusals: ReadonlyArray<Refusal>): string => {
  const named = refusals.slice(0, REFUSALS_NAMED).map((r) => `${r.address} (${r.smtpCode ?? "?"} ${r.response})`).join(", ")
  return refusals.length > REFUSALS_NAMED ? `${named} and ${refusals.length - REFUSALS_NAMED} more` : named
}

/** Only a 5xx is final; a 4xx (or a refusal without a code) may pass later, as for a whole message. */
const isPermanentRefusal = (refusal: Refusal): boolean => refusal.smtpCode !== null && refusal.smtpCode >= 500

/**
 * The user id of each address of an event that named users (lower-cased), so a copy for some of them names them
 * too. Looked up again, only when a message was partly refused; without an answer the copy names addresses.
 */
const userIdsByAddress = Effect.fnUntraced(function*(event: EmailEvent) {
  if (event.recipients._tag !== "UserIds") return new Map<string, number>()
  const users = yield* (yield* RealmRepository).usersByIds(event.recipients.userIds).pipe(Effect.orElseSucceed(() => []))
  return new Map(users.flatMap((user) => {
    const mailbox = parseMailbox(user.deliveryEmail)
    return mailbox === null ? [] : [[mailbox.address.toLowerCase(), user.id] as const]
  }))
})

/** The event's JSON for `refusals`' recipients alone. */
const copyFor = (event: EmailEvent, sent: SentEmail, refusals: ReadonlyArray<Refusal>) =>
  Effect.map(
    userIdsByAddress(event),
    (userIds) => eventForRecipients(event, sent.message.messageId, refusals.map((r) => r.address), userIds)
  )

/** A copy of the event for the refused recipients only, recorded with the reason (replaying it sends only to them). */
const recordRefusals = Effect.fnUntraced(function*(
  event: EmailEvent,
  sent: SentEmail,
  refusals: ReadonlyArray<Refusal>,
  tag: string,
  attempts: number
) {
  yield* writeFailure({
    event: yield* copyFor(event, sent, refusals),
    reason: {
      tag,
      message: `recipients refused: ${describeRefusals(refusals)}`,
      attempts,
      smtpCode: refusals[0]?.smtpCode ?? null
    }
  })
})

/**
 * The recipients the server deferred (4xx) while accepting the others get a copy of the event for them alone,
 * requeued with `failed_tries + 1` (this acks the delivery); past `MAX_REQUEST_RETRIES`, or when the copy cannot be
 * queued, the copy is recorded instead. Either way the accepted recipients are not sent the email again.
 */
const requeueDeferred = Effect.fnUntraced(function*(
  delivery: Delivery,
  event: EmailEvent,
  sent: SentEmail,
  deferred: ReadonlyArray<Refusal>,
  attempts: number
) {
  const settings = yield* WorkerSettings
  const failedTries = event.failedTries + 1
  if (failedTries <= settings.maxRequestRetries) {
    const copy = yield* copyFor(event, sent, deferred)
    yield* Effect.logWarning(
      `${deferred.length} recipient(s) deferred: ${describeRefusals(deferred)}; a copy for them is requeued (failed_tries=${failedTries})`
    )
    const requeued = yield* delivery.requeue({ ...copy, failed_tries: failedTries }, requeueDelay(settings, failedTries)).pipe(
      Effect.as(true),
      Effect.catch((queueError) =>
        Effect.logWarning(`could not requeue the copy for the deferred recipients, recording it: ${queueError.message}`).pipe(
          Effect.as(false)
        )
      )
    )
    if (requeued) return yield* Metric.update(eventsRequeued, 1)
  }
  yield* recordRefusals(event, sent, deferred, "NotDelivered", attempts)
  yield* settleQuietly("ack", delivery.ack)
})

/** A ledger operation, waiting while its store is down with `REDIS_OUTAGE=stop` (with `fallback` it does not fail). */
const waitForLedger = <A>(operation: Effect.Effect<A, Unavailable>) =>
  Effect.flatMap(Effect.service(WorkerSettings), (settings) =>
    operation.pipe(
      Effect.tapError((error) => Effect.logWarning(`${error.dependency} unavailable, waiting before trying again: ${error.message}`)),
      Effect.retry(outageSchedule(settings)),
      // the outage schedule never gives up
      Effect.catchTag("Unavailable", (error) => Effect.die(error))
    ))

/**
 * The Message-ID goes into the ledger: a crash after this point redelivers (if the ack is lost too) an event the
 * ledger knows. The time from the server's 250 to this write is measured.
 */
const recordSent = Effect.fnUntraced(function*(ledger: SentLedgerShape, messageId: string) {
  const start = yield* Clock.currentTimeNanos
  yield* waitForLedger(ledger.recordSent(messageId))
  yield* Metric.update(ledgerWindowSeconds, Number((yield* Clock.currentTimeNanos) - start) / 1e9)
})

const settleSent = Effect.fnUntraced(function*(delivery: Delivery, event: EmailEvent, sent: SentEmail, attempts: number) {
  yield* Effect.logInfo(`Sent ${sent.message.template} email to ${sent.report.accepted.length} recipient(s)${sent.message.realm === null ? "" : ` in ${sent.message.realm}`}`)
  // the accepted recipients have it; the refused ones are recorded or retried so nothing is silently dropped
  const refused = sent.report.rejected.filter(isPermanentRefusal)
  const deferred = sent.report.rejected.filter((refusal) => !isPermanentRefusal(refusal))
  if (refused.length > 0) yield* recordRefusals(event, sent, refused, "Rejected", attempts)
  if (deferred.length > 0) yield* requeueDeferred(delivery, event, sent, deferred, attempts)
  else yield* settleQuietly("ack", delivery.ack)
  return "sent" as const
})

/**
 * With a ledger, its write and the ack go out together, right after the 250: the event is sent twice only if a crash
 * loses both, within the shorter of the two (written first, the ledger would add its round trip to the ack's window).
 */
const onSent = (delivery: Delivery, event: EmailEvent, sent: SentEmail, attempts: number, ledger: SentLedgerShape | null) =>
  ledger === null
    ? settleSent(delivery, event, sent, attempts)
    : Effect.map(
      Effect.all([recordSent(ledger, sent.message.messageId), settleSent(delivery, event, sent, attempts)], { concurrency: 2 }),
      ([, outcome]) => outcome
    )

const describeEvent = (event: EmailEvent): string =>
  `${templateName(event)} (failed_tries=${event.failedTries + 1}${event.messageId === null ? "" : `, message_id=${event.messageId}`})`

const onFailed = Effect.fnUntraced(function*(delivery: Delivery, event: EmailEvent, error: SendEmailError, attempts: number) {
  const settings = yield* WorkerSettings
  const reason: FailureReason = { tag: error._tag, message: error.message, attempts, smtpCode: smtpCodeOf(error) }
  if (isTransient(error)) {
    // the provider's rate limit (the limiter slows down for it) is no fault of the event: it spends no try
    const failedTries = isThrottled(error) ? event.failedTries : event.failedTries + 1
    if (failedTries <= settings.maxRequestRetries) {
      const delay = requeueDelay(settings, failedTries)
      yield* Effect.logWarning(`${error._tag}: ${error.message}; requeued (failed_tries=${failedTries})`)
      const requeued = yield* delivery.requeue(withFailedTries(event, failedTries), delay).pipe(
        Effect.as(true),
        Effect.catch((queueError) =>
          Effect.logWarning(`could not requeue, returning the delivery to the queue: ${queueError.message}`).pipe(Effect.as(false))
        )
      )
      if (!requeued) {
        // unacked on a live channel it would sit there until a reconnect; handed back, it is tried again
        yield* settleQuietly("release", delivery.release)
        return "released" as const
      }
      yield* Metric.update(eventsRequeued, 1)
      return "requeued" as const
    }
    // Zulip logs the event itself; its context holds tokens and personal data, so only its identity is named here
    yield* Effect.logError(`Event ${describeEvent(event)} failed due to exception ${error._tag}`)
    return yield* recordFailure(delivery, event.original, reason)
  }
  yield* Effect.logError(`Problem handling data on queue ${settings.queueName}: ${error._tag}: ${error.message}`)
  return yield* recordFailure(delivery, event.original, reason)
})

/** The delivery's outcome settled, its lines annotated with the last attempt and, once built, the email's identity. */
const settleDelivered = (delivery: Delivery, event: EmailEvent, initial: DeliveryAnnotations, ledger: SentLedgerShape | null) =>
  Effect.flatMap(Effect.result(deliverEvent(event)), (result) => {
    const { attempts } = result._tag === "Success" ? result.success : result.failure
    const message = result._tag === "Success" ? result.success.sent.message : result.failure.message
    const settled = result._tag === "Success"
      // the server has the email: the ack must happen even if shutdown interrupts now, or it would be sent twice
      ? Effect.uninterruptible(onSent(delivery, event, result.success.sent, attempts, ledger))
      : onFailed(delivery, event, result.failure.error, attempts)
    const now = deliveryAnnotations(event, attempts, message)
    // most deliveries learn nothing new along the way
    return sameAnnotations(now, initial) ? settled : Effect.annotateLogs(settled, now)
  })

/** An event the ledger knows was sent before: acknowledged without sending it again. */
const settleUnlessSent = Effect.fnUntraced(function*(
  ledger: SentLedgerShape,
  delivery: Delivery,
  event: EmailEvent,
  initial: DeliveryAnnotations
) {
  const messageId = ledger.messageIdOf(event)
  if (!(yield* waitForLedger(ledger.wasSent(messageId)))) return yield* settleDelivered(delivery, event, initial, ledger)
  yield* Effect.logWarning(`Event ${describeEvent(event)} was sent before (Message-ID ${messageId} is in the ledger): acknowledged without sending it again`)
  yield* Metric.update(duplicatesSuppressed, 1)
  yield* settleQuietly("ack", delivery.ack)
  return "sent" as const
})

const currentLedger = Effect.service(SentLedger)

/** With a ledger, an event that may have been sent already is checked first (`mayHaveBeenSent`). */
const settleOnce = (delivery: Delivery, event: EmailEvent, initial: DeliveryAnnotations) =>
  Effect.flatMap(currentLedger, (ledger) =>
    ledger === null || !mayHaveBeenSent(delivery.redelivered, event.failedTries)
      ? settleDelivered(delivery, event, initial, ledger)
      : settleUnlessSent(ledger, delivery, event, initial))

/** Every log line about the event carries its template, realm, `failed_tries`, attempt and (once known) Message-ID. */
const settleDecoded = (delivery: Delivery, event: EmailEvent) => {
  const initial = deliveryAnnotations(event, 1, null)
  return Effect.annotateLogs(settleOnce(delivery, event, initial), {
    template: templateName(event),
    realm_id: event.realmId ?? "none",
    failed_tries: event.failedTries,
    // the broker delivered it before: a crash may have cut in after the send, so this email may be a duplicate
    ...(delivery.redelivered ? { redelivered: true } : {}),
    ...initial
  })
}

const rejectInvalid = (delivery: Delivery, event: unknown, error: InvalidEvent) =>
  Effect.logError(`Problem handling data: ${error.message}`).pipe(
    Effect.andThen(recordFailure(delivery, event, { tag: error._tag, message: error.message, attempts: 0, smtpCode: null }))
  )

/** A body parsed and no deeper than `MAX_EVENT_DEPTH`, or why not. */
const parseShallowBody = (body: string, maxEventDepth: number) =>
  parseJsonBody(body).pipe(Effect.tap((json) => checkEventDepth(json, maxEventDepth)))

/** What the failure record keeps of a body: its JSON when it parses within the depth limit, else the raw text. */
const recordableEvent = Effect.fnUntraced(function*(body: string) {
  const { maxEventDepth } = yield* WorkerSettings
  const json = yield* Effect.result(parseShallowBody(body, maxEventDepth))
  return json._tag === "Success" ? json.success : body
})

const settle = Effect.fnUntraced(function*(delivery: Delivery) {
  if (delivery.deadLettered !== undefined) {
    // never sent: it may be what crashed the worker; recorded, so `replay --tag DeliveryLimit` can send it again
    yield* Effect.logError(`Problem handling data: ${delivery.deadLettered}; recording it`)
    const reason = { tag: "DeliveryLimit", message: delivery.deadLettered, attempts: 0, smtpCode: null }
    return yield* recordFailure(delivery, yield* recordableEvent(delivery.body), reason)
  }
  const { maxEventBytes, maxEventDepth } = yield* WorkerSettings
  const size = Buffer.byteLength(delivery.body)
  if (size > maxEventBytes) {
    // not parsed (it may be megabytes, nested at any depth): the store keeps the start of its text, cut to fit
    const message = `invalid email event: the body is ${size} bytes, over MAX_EVENT_BYTES (${maxEventBytes})`
    return yield* rejectInvalid(delivery, delivery.body, new InvalidEvent({ message, field: null }))
  }
  // a body too deep is recorded as its text: the parsed value is what nothing after this point could walk
  const json = yield* Effect.result(parseShallowBody(delivery.body, maxEventDepth))
  if (json._tag === "Failure") return yield* rejectInvalid(delivery, delivery.body, json.failure)
  const event = yield* Effect.result(decodeEmailEvent(json.success))
  if (event._tag === "Failure") return yield* rejectInvalid(delivery, json.success, event.failure)
  return yield* settleDecoded(delivery, event.success)
})

/** A bug must not lose the event either: it is recorded with the defect as the reason. */
const recordDefect = Effect.fnUntraced(function*(delivery: Delivery, cause: Cause.Cause<never>) {
  yield* Effect.logError("Problem handling data: unexpected defect", cause)
  return yield* recordFailure(delivery, yield* recordableEvent(delivery.body), {
    tag: "Defect",
    message: String(Cause.squash(cause)),
    attempts: 0,
    smtpCode: null
  }, cause)
})

/**
 * Settle one delivery. Never fails: every outcome is handled here (an interruption leaves it unacked for the broker).
 * It runs for every event, so it opens its span itself rather than through `Effect.fn`, which also records a stack
 * frame on each call, and only when tracing is on.
 */
export const settleDelivery = Effect.fnUntraced(function*(delivery: Delivery) {
  yield* Metric.update(eventsConsumed, 1)
  const startedAtMillis = yield* Clock.currentTimeMillis
  const outcome: Outcome = yield* settle(delivery).pipe(
    Effect.catchCause((cause) => Cause.hasInterrupts(cause) ? Effect.failCause(cause) : recordDefect(delivery, cause))
  )
  yield* Metric.update(eventsSettled, 1)
  const finishedAtMillis = yield* Clock.currentTimeMillis
  return { outcome, startedAtMillis, finishedAtMillis } satisfies Settlement
}, withEventSpan("settleDelivery"))

/** Settle a batch of deliveries with bounded concurrency (`CONCURRENCY`); each settles on its own. */
export const consumeBatch = Effect.fn("consumeBatch")(function*(deliveries: Iterable<Delivery>) {
  const settings = yield* WorkerSettings
  return yield* Effect.forEach(deliveries, settleDelivery, { concurrency: settings.concurrency })
})
