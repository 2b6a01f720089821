/** One event from JSON to the SMTP server: decode → resolve realm and users → build → send, with retries. */
import { Effect, Metric, Ref } from "effect"
import { decodeEmailEvent, type EmailEvent } from "../domain/EmailEvent.ts"
import { isTransient, type SendEmailError, smtpCodeOf, type Unavailable } from "../domain/errors.ts"
import { messageIdFor } from "../domain/MessageId.ts"
import type { DeliveryReport, OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { EmailBuilder } from "../services/EmailBuilder.ts"
import { RealmRepository } from "../services/RealmRepository.ts"
import { SmtpConnection } from "../services/SmtpConnection.ts"
import { WorkerSettings } from "../services/WorkerSettings.ts"
import { emailsSent, eventsWaitingOnOutage, observeDeliveryLatency, sendRetries, timeSmtpSend } from "./metrics.ts"
import { outageSchedule, sendRetrySchedule, withAttemptDeadline } from "./retryPolicy.ts"

export interface SentEmail {
  readonly message: OutgoingEmail
  readonly report: DeliveryReport
}

/** What is known about one delivery so far, for the failure record and for log annotations. */
export interface DeliveryProgress {
  /** attempts that reached a verdict (an outage wait is not one) */
  readonly attempts: number
  /** the Message-ID once the email is built; before that, the producer's `message_id` if it set one */
  readonly messageId: string | null
  /** the realm's string id once resolved */
  readonly realm: string | null
  /** the email once built: later attempts send the same message instead of resolving and rendering it again */
  readonly message: OutgoingEmail | null
}

export const startProgress = (event: EmailEvent): Effect.Effect<Ref.Ref<DeliveryProgress>> =>
  Ref.make<DeliveryProgress>({
    attempts: 0,
    // a producer's message_id gives the header as is, whatever the host
    messageId: event.messageId === null ? null : messageIdFor(event, ""),
    realm: null,
    message: null
  })

/** `effect` with its log lines annotated with what `progress` knows (attempt, Message-ID, realm). */
export const annotateProgress = (progress: Ref.Ref<DeliveryProgress>, attemptOffset = 0) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Ref.get(progress), ({ attempts, messageId, realm }) =>
    Effect.annotateLogs(effect, {
      attempt: attempts + attemptOffset,
      ...(messageId === null ? {} : { message_id: messageId }),
      ...(realm === null ? {} : { realm })
    }))

/** The realm and users an event refers to; an event without `realm_id` takes its users' realm, as Zulip does. */
const resolveRecipients = Effect.fnUntraced(function*(event: EmailEvent) {
  const repository = yield* RealmRepository
  const users = event.recipients._tag === "UserIds" ? yield* repository.usersByIds(event.recipients.userIds) : []
  const realmId = event.realmId ?? users[0]?.realmId ?? null
  const realm = realmId === null ? null : yield* repository.realmById(realmId)
  return { realm, users }
})

/** The email an event makes, built with its realm and users resolved; nothing is sent (also `render`'s dry run). */
export const buildEmail = Effect.fn("buildEmail")(function*(event: EmailEvent) {
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

const attemptOnce = Effect.fnUntraced(function*(event: EmailEvent, progress: Ref.Ref<DeliveryProgress>) {
  const message = (yield* Ref.get(progress)).message ?? (yield* buildEmail(event))
  yield* Ref.update(progress, (known) => ({ ...known, messageId: message.messageId, realm: message.realm, message }))
  const report = yield* (yield* SmtpConnection).send(message).pipe(
    timeSmtpSend,
    Effect.tapError((error) => logSendError(message, error)),
    Effect.annotateLogs({ message_id: message.messageId, ...(message.realm === null ? {} : { realm: message.realm }) })
  )
  yield* Metric.update(emailsSent, 1)
  yield* observeDeliveryLatency(event.date)
  return { message, report }
})

/**
 * Deliver a decoded event: each attempt is bounded by `MAX_CONSUME_SECONDS`; an outage (`Unavailable`) waits and
 * tries again without counting an attempt; transient errors are retried by `sendRetrySchedule`. `progress` counts
 * the attempts that reached a verdict, for the failure record, and keeps what the log lines are annotated with.
 */
export const deliverEvent = Effect.fn("deliverEvent")(function*(
  event: EmailEvent,
  progress: Ref.Ref<DeliveryProgress>
): Effect.fn.Return<SentEmail, SendEmailError, RealmRepository | EmailBuilder | SmtpConnection> {
  const settings = yield* WorkerSettings
  // while this event waits out an outage it counts in `eventsWaitingOnOutage`; with every slot waiting, no new
  // delivery is taken
  const waiting = yield* Ref.make(false)
  const setWaiting = (now: boolean) =>
    Ref.getAndSet(waiting, now).pipe(
      Effect.flatMap((before) => before === now ? Effect.void : Metric.modify(eventsWaitingOnOutage, now ? 1 : -1))
    )
  const countAttempt = Ref.getAndUpdate(progress, (known) => ({ ...known, attempts: known.attempts + 1 })).pipe(
    Effect.flatMap(({ attempts }) => attempts > 0 ? Metric.update(sendRetries, 1) : Effect.void),
    Effect.andThen(setWaiting(false))
  )
  const attempt = attemptOnce(event, progress).pipe(
    withAttemptDeadline(settings.maxConsumeTime),
    Effect.tapError((error) =>
      error._tag === "Unavailable"
        ? Effect.logWarning(`${error.dependency} unavailable, waiting before trying again: ${error.message}`).pipe(
          annotateProgress(progress, 1),
          Effect.andThen(setWaiting(true))
        )
        : countAttempt
    ),
    Effect.tap(() => countAttempt)
  )
  return yield* annotateProgress(progress, 1)(attempt).pipe(
    Effect.retry(outageSchedule(settings)),
    // the outage schedule never gives up, so an `Unavailable` cannot get here
    Effect.catchTag("Unavailable", (error) => Effect.die(error)),
    Effect.retry(sendRetrySchedule(settings)),
    Effect.ensuring(setWaiting(false))
  )
})

/** Decode a JSON value as an `email_senders` event and deliver it. */
export const sendEmail = Effect.fn("sendEmail")(function*(input: unknown) {
  const event = yield* decodeEmailEvent(input)
  return yield* deliverEvent(event, yield* startProgress(event))
})
