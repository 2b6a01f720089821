/** One event from JSON to the SMTP server: decode → resolve realm and users → build → send, with retries. */
import { Effect, Ref } from "effect"
import { decodeEmailEvent, type EmailEvent } from "../domain/EmailEvent.ts"
import type { SendEmailError } from "../domain/errors.ts"
import type { DeliveryReport, OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { EmailBuilder } from "../services/EmailBuilder.ts"
import { RealmRepository } from "../services/RealmRepository.ts"
import { SmtpConnection } from "../services/SmtpConnection.ts"
import { WorkerSettings } from "../services/WorkerSettings.ts"
import { outageSchedule, sendRetrySchedule, withAttemptDeadline } from "./retryPolicy.ts"

export interface SentEmail {
  readonly message: OutgoingEmail
  readonly report: DeliveryReport
}

/** The realm and users an event refers to; an event without `realm_id` takes its users' realm, as Zulip does. */
const resolveRecipients = Effect.fnUntraced(function*(event: EmailEvent) {
  const repository = yield* RealmRepository
  const users = event.recipients._tag === "UserIds" ? yield* repository.usersByIds(event.recipients.userIds) : []
  const realmId = event.realmId ?? users[0]?.realmId ?? null
  const realm = realmId === null ? null : yield* repository.realmById(realmId)
  return { realm, users }
})

const attemptOnce = Effect.fnUntraced(function*(event: EmailEvent) {
  const { realm, users } = yield* resolveRecipients(event)
  const message = yield* (yield* EmailBuilder).build({ event, realm, users })
  const report = yield* (yield* SmtpConnection).send(message)
  return { message, report }
})

/**
 * Deliver a decoded event: each attempt is bounded by `MAX_CONSUME_SECONDS`; an outage (`Unavailable`) waits and
 * tries again without counting an attempt; transient errors are retried by `sendRetrySchedule`. `attempts` counts
 * the attempts that reached a verdict, for the failure record.
 */
export const deliverEvent = Effect.fn("deliverEvent")(function*(
  event: EmailEvent,
  attempts: Ref.Ref<number>
): Effect.fn.Return<SentEmail, SendEmailError, RealmRepository | EmailBuilder | SmtpConnection> {
  const settings = yield* WorkerSettings
  const countAttempt = Ref.update(attempts, (n) => n + 1)
  return yield* attemptOnce(event).pipe(
    withAttemptDeadline(settings.maxConsumeTime),
    Effect.tapError((error) =>
      error._tag === "Unavailable"
        ? Effect.logWarning(`${error.dependency} unavailable, waiting before trying again: ${error.message}`)
        : countAttempt
    ),
    Effect.tap(() => countAttempt),
    Effect.retry(outageSchedule(settings)),
    // the outage schedule never gives up, so an `Unavailable` cannot get here
    Effect.catchTag("Unavailable", (error) => Effect.die(error)),
    Effect.retry(sendRetrySchedule(settings))
  )
})

/** Decode a JSON value as an `email_senders` event and deliver it. */
export const sendEmail = Effect.fn("sendEmail")(function*(input: unknown) {
  const event = yield* decodeEmailEvent(input)
  return yield* deliverEvent(event, yield* Ref.make(0))
})
