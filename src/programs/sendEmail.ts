/** One event from JSON to the SMTP server: decode → resolve realm and users → build → send, with retries. */
import { Effect, Metric } from "effect"
import { decodeEmailEvent, type EmailEvent } from "../domain/EmailEvent.ts"
import { isTransient, type SendEmailError, smtpCodeOf, type Unavailable } from "../domain/errors.ts"
import { messageIdFor } from "../domain/MessageId.ts"
import type { DeliveryReport, OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { EmailBuilder } from "../services/EmailBuilder.ts"
import { RealmRepository } from "../services/RealmRepository.ts"
import { SmtpConnection } from "../services/SmtpConnection.ts"
import { SuppressionList } from "../services/SuppressionList.ts"
import { WorkerSettings } from "../services/WorkerSettings.ts"
import { emailsSent, eventsWaitingOnOutage, observeDeliveryLatency, sendRetries, timeSmtpSend } from "./metrics.ts"
import { outageSchedule, retryAfterFailure, sendRetrySchedule, withAttemptDeadline } from "./retryPolicy.ts"

export interface SentEmail {
  readonly message: OutgoingEmail
  readonly report: DeliveryReport
}

/**
 * What is known about one delivery so far, for the failure record and for log annotations. It belongs to the one
 * fiber delivering the event (attempts run one after another), so it is a plain record rather than a `Ref`.
 */
export interface DeliveryProgress {
  /** attempts that reached a verdict (an outage wait is not one) */
  attempts: number
  /** the Message-ID once the email is built; before that, the producer's `message_id` if it set one */
  messageId: string | null
  /** the realm's string id once resolved */
  realm: string | null
  /** the email once built: later attempts send the same message instead of resolving and rendering it again */
  message: OutgoingEmail | null
  /** waiting for SMTP or the database to come back, and so counted in `eventsWaitingOnOutage` */
  waitingOnOutage: boolean
}

export const startProgress = (event: EmailEvent): DeliveryProgress => ({
  attempts: 0,
  // a producer's message_id gives the header as is, whatever the host
  messageId: event.messageId === null ? null : messageIdFor(event, ""),
  realm: null,
  message: null,
  waitingOnOutage: false
})

export type ProgressAnnotations = {
  readonly attempt: number
  readonly message_id?: string
  readonly realm?: string
}

/** The annotations of log lines about the delivery: its attempt (counting the one under way), Message-ID and realm. */
export const progressAnnotations = (progress: DeliveryProgress, attemptOffset = 0): ProgressAnnotations => ({
  attempt: progress.attempts + attemptOffset,
  ...(progress.messageId === null ? {} : { message_id: progress.messageId }),
  ...(progress.realm === null ? {} : { realm: progress.realm })
})

/**
 * `effect` with its lines annotated with what is known now, unless `around` (the annotations already on the lines
 * around it) says the same: annotating makes a new context, and most deliveries learn nothing new along the way.
 */
export const annotatedAsNow = (progress: DeliveryProgress, attemptOffset: number, around?: ProgressAnnotations) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const now = progressAnnotations(progress, attemptOffset)
  const same = around !== undefined && now.attempt === around.attempt && now.message_id === around.message_id &&
    now.realm === around.realm
  return same ? effect : Effect.annotateLogs(effect, now)
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

/**
 * One attempt: the email built on the first one (kept in `progress` for the next), then sent. Its recipients leave
 * the suppression list once, between the build and the first send, when the event asks for it.
 */
const attemptOnce = (event: EmailEvent, progress: DeliveryProgress) =>
  progress.message === null
    ? Effect.flatMap(buildEmail(event), (message) => {
      // the attempt's lines were annotated before the Message-ID and realm were known; the send's carry them
      const attemptAnnotations = progressAnnotations(progress, 1)
      progress.message = message
      progress.messageId = message.messageId
      progress.realm = message.realm
      const send = sendBuilt(message, event)
      return annotatedAsNow(progress, 1, attemptAnnotations)(
        event.removeSuppressedDestination ? Effect.andThen(leaveSuppressionList(message), send) : send
      )
    })
    : sendBuilt(progress.message, event)

const setWaitingOnOutage = (progress: DeliveryProgress, waiting: boolean): Effect.Effect<void> => {
  if (progress.waitingOnOutage === waiting) return Effect.void
  progress.waitingOnOutage = waiting
  return Metric.modify(eventsWaitingOnOutage, waiting ? 1 : -1)
}

/**
 * An outage (`Unavailable`) is logged (at DEBUG when it is a refusal, logged at ERROR where it was met) and waited
 * out; it is not a verdict, so no attempt is counted.
 */
const onOutage = (progress: DeliveryProgress, error: Unavailable) =>
  (error.refusal === undefined ? Effect.logWarning : Effect.logDebug)(
    `${error.dependency} unavailable, waiting before trying again: ${error.message}`
  ).pipe(
    Effect.annotateLogs(progressAnnotations(progress, 1)),
    Effect.andThen(setWaitingOnOutage(progress, true))
  )

/** An attempt reached a verdict: counted (beyond the first, as an in-process retry), ending any outage wait. */
const countAttempt = (progress: DeliveryProgress): Effect.Effect<void> => {
  progress.attempts++
  const notWaiting = setWaitingOnOutage(progress, false)
  return progress.attempts > 1 ? Effect.andThen(Metric.update(sendRetries, 1), notWaiting) : notWaiting
}

/**
 * Deliver a decoded event: each attempt is bounded by `MAX_CONSUME_SECONDS`; an outage (`Unavailable`) waits and
 * tries again without counting an attempt; a lost connection, a timeout or a DNS failure is retried by the send
 * schedule (a 4xx reply is left to the caller to requeue, `isRetriedInProcess`). `progress` counts
 * the attempts that reached a verdict, for the failure record, and keeps what the log lines are annotated with.
 */
export const deliverEvent = Effect.fnUntraced(function*(
  event: EmailEvent,
  progress: DeliveryProgress,
  /** the annotations the caller already put on the delivery's lines, if any */
  around?: ProgressAnnotations
): Effect.fn.Return<SentEmail, SendEmailError, RealmRepository | EmailBuilder | SmtpConnection | SuppressionList> {
  const settings = yield* WorkerSettings
  const attempt = Effect.suspend(() =>
    attemptOnce(event, progress).pipe(
      annotatedAsNow(progress, 1, around),
      withAttemptDeadline(settings.maxConsumeTime),
      // `progress` changes as each attempt ends, so these run then, not when the attempt is built
      Effect.tapError((error) => error._tag === "Unavailable" ? onOutage(progress, error) : countAttempt(progress)),
      Effect.tap(() => countAttempt(progress))
    )
  )
  return yield* attempt.pipe(
    retryAfterFailure(
      () => outageSchedule(settings),
      // interrupted while waiting out an outage: no longer waiting
      Effect.suspend(() => setWaitingOnOutage(progress, false))
    ),
    // the outage schedule never gives up, so an `Unavailable` cannot get here
    Effect.catchTag("Unavailable", (error) => Effect.die(error)),
    retryAfterFailure(() => sendRetrySchedule(settings))
  )
})

/** Decode a JSON value as an `email_senders` event and deliver it. */
export const sendEmail = Effect.fn("sendEmail")(function*(input: unknown) {
  const event = yield* decodeEmailEvent(input)
  return yield* deliverEvent(event, startProgress(event))
})
