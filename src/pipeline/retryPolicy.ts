/**
 * When to try again, in one place: the in-process retry of a send, the wait during an outage, the delay before a
 * requeued event comes back, and the deadline of one attempt.
 */
import { Duration, Effect, Schedule } from "effect"
import { isTransient, type SendEmailError, type Unavailable } from "../domain/errors.ts"
import type { WorkerSettingsShape } from "../config/WorkerSettings.ts"

/** Exponential from `base` (×2, jittered 0.8–1.2), never longer than `cap`. */
const cappedBackoff = (base: Duration.Duration, cap: Duration.Duration) =>
  Schedule.min([Schedule.exponential(base).pipe(Schedule.jittered), Schedule.spaced(cap)])

/**
 * Whether a failed send is tried again in process, a moment later: what the network or the connection lost
 * (`DnsError`, `TimeoutError`, a `NotDelivered` without a reply). A server that replied 4xx ("try again later":
 * greylisting, a rate limit, a full queue) is not asked again within seconds: the event is requeued with
 * `REQUEUE_DELAY` at once, so its wait holds no delivery fiber and the emails behind it keep their pace.
 */
export const isRetriedInProcess = (error: SendEmailError): boolean =>
  isTransient(error) && !(error._tag === "NotDelivered" && error.smtpCode !== null)

/**
 * A schedule made once per settings: a schedule is an immutable value, and making three for every email cost ~6 µs
 * of the pipeline's ~56 (bench/FINDINGS.md, "The no-delay regression").
 */
const madeOncePer = <S>(make: (settings: WorkerSettingsShape) => S) => {
  const made = new WeakMap<WorkerSettingsShape, S>()
  return (settings: WorkerSettingsShape): S => {
    let schedule = made.get(settings)
    if (schedule === undefined) {
      schedule = make(settings)
      made.set(settings, schedule)
    }
    return schedule
  }
}

/**
 * Exponential with jitter, capped at `retryMaxDelay`, at most `sendAttempts` attempts in all, and only while the
 * error is one `isRetriedInProcess`: a `Rejected` email is attempted once, a 4xx reply goes back to the queue.
 */
export const sendRetrySchedule = <Input = SendEmailError>(
  settings: WorkerSettingsShape,
  /** the error in what the schedule is given: for a retry whose failures carry more than the error */
  errorOf: (input: Input) => SendEmailError = (input) => input as SendEmailError
) =>
  cappedBackoff(settings.retryBaseDelay, settings.retryMaxDelay).pipe(
    Schedule.upTo({ times: Math.max(0, settings.sendAttempts - 1) }),
    Schedule.setInputType<Input>(),
    Schedule.while(({ input }) => isRetriedInProcess(errorOf(input)))
  )

/** One failed delivery attempt: its error and its number. */
export interface FailedAttempt {
  readonly error: SendEmailError
  readonly attempts: number
}

/** `sendRetrySchedule` for a delivery's attempts, made once per settings. */
export const attemptRetrySchedule = madeOncePer((settings) =>
  sendRetrySchedule(settings, (failed: FailedAttempt) => failed.error)
)

/** While SMTP or the database is down: keep checking, backing off up to `outageMaxDelay`, for as long as it takes. */
export const outageSchedule = madeOncePer((settings) =>
  cappedBackoff(settings.retryBaseDelay, settings.outageMaxDelay).pipe(
    Schedule.setInputType<Unavailable | SendEmailError>(),
    Schedule.while(({ input }) => input._tag === "Unavailable")
  )
)

/** While the failure store cannot be written: keep trying, backing off up to `outageMaxDelay`. */
export const storeOutageSchedule = madeOncePer((settings) => cappedBackoff(settings.retryBaseDelay, settings.outageMaxDelay))

/**
 * `Effect.retry(schedule)`, started only once `self` has failed: that failure is handed to `Effect.retry` as its first
 * run's outcome, so the delays and the `while` are those of `Effect.retry(self, schedule)`; each retry runs `retried`
 * (default `self`), which reads its number from `Schedule.CurrentMetadata` as under `Effect.retry`. Nearly every
 * delivery succeeds at once, and starting its two retries up front (their schedule steps, and the metadata in the
 * run's context, all kept across the SMTP exchange) cost ~5 % of the worker's CPU per email (bench/FINDINGS.md,
 * "The no-delay regression").
 */
export const retryOnFailure = <Output, E, Error, Env, A2 = never, E2 extends E = never, R2 = never>(
  schedule: Schedule.Schedule<Output, E, Error, Env>,
  retried?: Effect.Effect<A2, E2, R2>
) =>
<A, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A | A2, E | Error, R | R2 | Env> =>
  Effect.catch(self, (failure) => {
    let first = true
    const again = Effect.suspend((): Effect.Effect<A | A2, E, R | R2> => {
      if (!first) return retried ?? self
      first = false
      return Effect.fail(failure)
    })
    return Effect.retry(again, schedule)
  })

/** A requeued event waits `requeueDelay`, doubled for each earlier try (try 1: ×1, try 2: ×2, try 3: ×4). */
export const requeueDelay = (settings: WorkerSettingsShape, failedTries: number): Duration.Duration =>
  Duration.times(settings.requeueDelay, 2 ** Math.max(0, failedTries - 1))

/** Every delay a requeue can wait (`failed_tries` 1 to `MAX_REQUEST_RETRIES`), shortest first. */
export const requeueDelays = (settings: WorkerSettingsShape): ReadonlyArray<Duration.Duration> =>
  Array.from({ length: settings.maxRequestRetries }, (_, index) => requeueDelay(settings, index + 1))
