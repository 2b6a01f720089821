/** One event from JSON to the SMTP server: decode → resolve realm and users → build → send, with retries. */
import { Effect, identity, Metric, Ref, Schedule } from "effect"
import { decodeEmailEvent, type EmailEvent } from "../domain/EmailEvent.ts"
import { isTransient, type SendEmailError, smtpCodeOf, type Unavailable } from "../domain/errors.ts"
import { messageIdFor } from "../domain/MessageId.ts"
import type { DeliveryReport, OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { EmailBuilder } from "../email/EmailBuilder.ts"
import { RealmRepository } from "../realms/RealmRepository.ts"
import { SmtpConnection } from "../smtp/SmtpConnection.ts"
import { SuppressionList } from "../smtp/SuppressionList.ts"
import { WorkerSettings, type WorkerSettingsShape } from "../config/WorkerSettings.ts"
import { emailsSent, eventsWaitingOnOutage, observeDeliveryLatency, sendRetries, timeSmtpSend } from "./metrics.ts"
import { withAttemptDeadline } from "./attemptDeadline.ts"
import { attemptRetrySchedule, outageSchedule, retryOnFailure } from "./retryPolicy.ts"

export interface SentEmail {
  readonly message: OutgoingEmail
  readonly report: DeliveryReport
}

/** An event delivered, and the attempts that reached a verdict (an outage wait is not one). */
export interface Delivered {
  readonly sent: SentEmail
  readonly attempts: number
}

/** An event not delivered: the last attempt's error, its number, and the email if it was built. */
export interface Undelivered {
  readonly error: SendEmailError
  readonly attempts: number
  readonly message: OutgoingEmail | null
}

/** What a delivery's log lines say it is: its attempt (counting the one under way), Message-ID and realm. */
export type DeliveryAnnotations = {
  readonly attempt: number
  readonly message_id?: string
  readonly realm?: string
}

/** The annotations of an attempt: the email's Message-ID and realm once built, else the producer's `message_id`. */
export const deliveryAnnotations = (event: EmailEvent, attempt: number, message: OutgoingEmail | null): DeliveryAnnotations => {
  if (message === null) {
    // a producer's message_id gives the header as is, whatever the host
    return event.messageId === null ? { attempt } : { attempt, message_id: messageIdFor(event, "") }
  }
  return message.realm === null
    ? { attempt, message_id: message.messageId }
    : { attempt, message_id: message.messageId, realm: message.realm }
}

const lookUpRecipients = Effect.fnUntraced(function*(event: EmailEvent) {
  const repository = yield* RealmRepository
  const users = event.recipients._tag === "UserIds" ? yield* repository.usersByIds(event.recipients.userIds) : []
  const realmId = event.realmId ?? users[0]?.realmId ?? null
  const realm = realmId === null ? null : yield* repository.realmById(realmId)
  return { realm, users }
})

const nothingToLookUp = Effect.succeed({ realm: null, users: [] })

/** The realm and users an event refers to; an event without `realm_id` takes its users' realm, as Zulip does. */
const resolveRecipients = (event: EmailEvent) =>
  event.recipients._tag === "Emails" && event.realmId === null ? nothingToLookUp : lookUpRecipients(event)

/** The email an event makes, built with its realm and users resolved; nothing is sent (also `render`'s dry run). */
export const buildEmail = Effect.fnUntraced(function*(event: EmailEvent) {
  const { realm, users } = yield* resolveRecipients(event)
  return yield* (yield* EmailBuilder).build({ event, realm, users })
})

/** Zulip's log line for a failed send (§2.9), naming the recipient count instead of the addresses. */
const logSendError = (message: OutgoingEmail, error: SendEmailError | Unavailable) => {
  if (error._tag === "Unavailable") return Effect.void
  const recipients = `${message.envelope.to.length} recipient(s)`
  const code = smtpCodeOf(error)
  const line = code === null
    ? `Error sending ${message.template} email to ${recipients}: ${error.message}`
    : `Error sending ${message.template} email to ${recipients} with error code ${code}: ${error.message}`
  return isTransient(error) ? Effect.logWarning(line) : Effect.logError(line)
}

const sendBuilt = Effect.fnUntraced(function*(message: OutgoingEmail, event: EmailEvent) {
  const report = yield* (yield* SmtpConnection).send(message).pipe(
    timeSmtpSend,
    Effect.tapError((error) => logSendError(message, error))
  )
  yield* Metric.update(emailsSent, 1)
  yield* observeDeliveryLatency(event.date)
  return { message, report } satisfies SentEmail
})

/** `remove_suppressed_destination`: the envelope's bare addresses come off the suppression list (never fails). */
const leaveSuppressionList = Effect.fnUntraced(function*(message: OutgoingEmail) {
  yield* (yield* SuppressionList).remove(message.envelope.to)
})

/** Whether two sets of annotations say the same: annotating makes a new context, so an unchanged one is skipped. */
export const sameAnnotations = (a: DeliveryAnnotations, b: DeliveryAnnotations): boolean =>
  a.attempt === b.attempt && a.message_id === b.message_id && a.realm === b.realm

/**
 * `effect` with the attempt's lines annotated with the email's identity, where building it taught something the
 * lines, annotated before it was built, do not already say (a Message-ID made here, or the realm).
 */
const annotatedWithEmail = <A, E, R>(effect: Effect.Effect<A, E, R>, event: EmailEvent, attempt: number, message: OutgoingEmail) => {
  const now = deliveryAnnotations(event, attempt, message)
  return sameAnnotations(now, deliveryAnnotations(event, attempt, null)) ? effect : Effect.annotateLogs(effect, now)
}

/** One try of an attempt: the email built on the first, its lines annotated from then on, then sent. */
const tryOnce = (event: EmailEvent, attempt: number, built: Ref.Ref<OutgoingEmail | null>) =>
  Effect.flatMap(Ref.get(built), (known) =>
    known !== null
      ? annotatedWithEmail(sendBuilt(known, event), event, attempt, known)
      : Effect.flatMap(buildEmail(event), (message) => {
        const send = event.removeSuppressedDestination ? Effect.andThen(leaveSuppressionList(message), sendBuilt(message, event)) : sendBuilt(message, event)
        return Effect.andThen(Ref.set(built, message), annotatedWithEmail(send, event, attempt, message))
      }))

/**
 * One attempt, bounded by `MAX_CONSUME_SECONDS` per try. An outage (`Unavailable`) is logged and waited out, with
 * the event counted in `eventsWaitingOnOutage` meanwhile; it is not a verdict, so the attempt goes on.
 */
const attemptUntilVerdict = (
  event: EmailEvent,
  attempt: number,
  built: Ref.Ref<OutgoingEmail | null>,
  settings: WorkerSettingsShape
) => {
  let waiting = false
  const stopWaiting = Effect.suspend(() => {
    if (!waiting) return Effect.void
    waiting = false
    return Metric.modify(eventsWaitingOnOutage, -1)
  })
  const onOutage = (error: Unavailable) =>
    Effect.flatMap(Ref.get(built), (message) =>
      Effect.logWarning(`${error.dependency} unavailable, waiting before trying again: ${error.message}`).pipe(
        Effect.annotateLogs(deliveryAnnotations(event, attempt, message)),
        Effect.andThen(Effect.suspend(() => {
          if (waiting) return Effect.void
          waiting = true
          return Metric.modify(eventsWaitingOnOutage, 1)
        }))
      ))
  return tryOnce(event, attempt, built).pipe(
    withAttemptDeadline(settings.maxConsumeTime),
    Effect.tapError((error) => error._tag === "Unavailable" ? onOutage(error) : Effect.void),
    retryOnFailure(outageSchedule(settings)),
    // interrupted while waiting out an outage, or a verdict: no longer waiting
    Effect.ensuring(stopWaiting),
    // the outage schedule never gives up, so an `Unavailable` cannot get here
    Effect.catchTag("Unavailable", (error) => Effect.die(error))
  )
}

/**
 * Deliver a decoded event: attempt after attempt while the error is one the send schedule retries in process (a lost
 * connection, a timeout, a DNS failure; a 4xx reply is left to the caller to requeue, `isRetriedInProcess`). The
 * attempt's number is the schedule's own; an attempt beyond the first counts as a retry in `sendRetries`.
 */
export const deliverEvent = Effect.fnUntraced(function*(
  event: EmailEvent
): Effect.fn.Return<Delivered, Undelivered, RealmRepository | EmailBuilder | SmtpConnection | SuppressionList> {
  const settings = yield* WorkerSettings
  const built = yield* Ref.make<OutgoingEmail | null>(null)
  const attempt = (number: number) => {
    const verdict = attemptUntilVerdict(event, number, built, settings).pipe(
      Effect.map((sent): Delivered => ({ sent, attempts: number })),
      Effect.mapError((error) => ({ error, attempts: number })),
      number > 1 ? Effect.ensuring(Metric.update(sendRetries, 1)) : identity
    )
    // the first attempt's lines are annotated by the caller; a retry's say which it is
    return number > 1
      ? Effect.flatMap(Ref.get(built), (message) => Effect.annotateLogs(verdict, deliveryAnnotations(event, number, message)))
      : verdict
  }
  // a retry's number is the schedule's own: its first retry is the schedule's attempt 1
  const retried = Effect.flatMap(Schedule.CurrentMetadata, ({ attempt: retries }) => attempt(retries + 1))
  return yield* attempt(1).pipe(
    retryOnFailure(attemptRetrySchedule(settings), retried),
    Effect.catch(({ attempts, error }) =>
      Effect.flatMap(Ref.get(built), (message): Effect.Effect<never, Undelivered> => Effect.fail({ error, attempts, message })))
  )
})

/** Decode a JSON value as an `email_senders` event and deliver it. */
export const sendEmail = Effect.fn("sendEmail")(function*(input: unknown) {
  const event = yield* decodeEmailEvent(input)
  const delivered = yield* deliverEvent(event).pipe(Effect.mapError(({ error }) => error))
  return delivered.sent
})
