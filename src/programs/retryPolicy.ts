/**
 * When to try again, in one place: the in-process retry of a send, the wait during an outage, the delay before a
 * requeued event comes back, and the deadline of one attempt.
 */
import { Duration, Effect, Schedule } from "effect"
import { isTransient, type SendEmailError, TimeoutError, type Unavailable } from "../domain/errors.ts"
import type { WorkerSettingsShape } from "../services/WorkerSettings.ts"

/** Exponential from `base` (×2, jittered 0.8–1.2), never longer than `cap`. */
const cappedBackoff = (base: Duration.Duration, cap: Duration.Duration) =>
  Schedule.min([Schedule.exponential(base).pipe(Schedule.jittered), Schedule.spaced(cap)])

/**
 * Exponential with jitter, capped at `retryMaxDelay`, at most `sendAttempts` attempts in all, and only while the
 * error is transient (`DnsError`, `TimeoutError`, `NotDelivered`): a `Rejected` email is attempted once.
 */
export const sendRetrySchedule = (settings: WorkerSettingsShape) =>
  cappedBackoff(settings.retryBaseDelay, settings.retryMaxDelay).pipe(
    Schedule.upTo({ times: Math.max(0, settings.sendAttempts - 1) }),
    Schedule.setInputType<SendEmailError>(),
    Schedule.while(({ input }) => isTransient(input))
  )

/** While SMTP or the database is down: keep checking, backing off up to `outageMaxDelay`, for as long as it takes. */
export const outageSchedule = (settings: WorkerSettingsShape) =>
  cappedBackoff(settings.retryBaseDelay, settings.outageMaxDelay).pipe(
    Schedule.setInputType<Unavailable | SendEmailError>(),
    Schedule.while(({ input }) => input._tag === "Unavailable")
  )

/** While the failure store cannot be written: keep trying, backing off up to `outageMaxDelay`. */
export const storeOutageSchedule = (settings: WorkerSettingsShape) =>
  cappedBackoff(settings.retryBaseDelay, settings.outageMaxDelay)

/** A requeued event waits `requeueDelay`, doubled for each earlier try (try 1: ×1, try 2: ×2, try 3: ×4). */
export const requeueDelay = (settings: WorkerSettingsShape, failedTries: number): Duration.Duration =>
  Duration.times(settings.requeueDelay, 2 ** Math.max(0, failedTries - 1))

/** Bounds one attempt; Effect's own timeout error is mapped into ours so one `TimeoutError` type flows. */
export const withAttemptDeadline = (deadline: Duration.Duration) => <A, E, R>(attempt: Effect.Effect<A, E, R>) =>
  attempt.pipe(
    Effect.timeoutOrElse({
      duration: deadline,
      orElse: () =>
        Effect.fail(
          new TimeoutError({
            message: `attempt did not finish within ${Duration.format(deadline)} (MAX_CONSUME_SECONDS)`,
            stage: "attempt",
            timeoutMillis: Duration.toMillis(deadline)
          })
        )
    })
  )
