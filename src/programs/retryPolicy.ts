/**
 * When to try again, in one place: the in-process retry of a send, the wait during an outage, the delay before a
 * requeued event comes back, and the deadline of one attempt.
 */
import { Clock, Context, Duration, Effect, Fiber, Schedule } from "effect"
import { isTransient, type SendEmailError, TimeoutError, type Unavailable } from "../domain/errors.ts"
import type { WorkerSettingsShape } from "../services/WorkerSettings.ts"

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
 * Exponential with jitter, capped at `retryMaxDelay`, at most `sendAttempts` attempts in all, and only while the
 * error is one `isRetriedInProcess`: a `Rejected` email is attempted once, a 4xx reply goes back to the queue.
 */
export const sendRetrySchedule = (settings: WorkerSettingsShape) =>
  cappedBackoff(settings.retryBaseDelay, settings.retryMaxDelay).pipe(
    Schedule.upTo({ times: Math.max(0, settings.sendAttempts - 1) }),
    Schedule.setInputType<SendEmailError>(),
    Schedule.while(({ input }) => isRetriedInProcess(input))
  )

/** While SMTP or the database is down: keep checking, backing off up to `outageMaxDelay`, for as long as it takes. */
export const outageSchedule = (settings: WorkerSettingsShape) =>
  cappedBackoff(settings.retryBaseDelay, settings.outageMaxDelay).pipe(
    Schedule.setInputType<Unavailable | SendEmailError>(),
    Schedule.while(({ input }) => input._tag === "Unavailable")
  )

/**
 * `Effect.retry(effect, policy())`, with the policy started only once `effect` has failed: its first failure is
 * handed to the schedule as its first input, so delays and limits are those of `Effect.retry`. Setting a schedule
 * up is not free, and on the usual path, where the first try succeeds, none of it happens. `afterRetrying`, if
 * given, runs when the retrying ends, however it ends.
 */
export const retryAfterFailure = <O, E, R2>(
  policy: () => Schedule.Schedule<O, NoInfer<E>, never, R2>,
  afterRetrying?: Effect.Effect<void>
) =>
<A, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | R2> =>
  Effect.catch(effect, (firstFailure) => {
    let replayed = false
    const again = Effect.suspend(() => {
      if (replayed) return effect
      replayed = true
      return Effect.fail(firstFailure)
    })
    const retrying = Effect.retry(again, policy())
    return afterRetrying === undefined ? retrying : Effect.ensuring(retrying, afterRetrying)
  })

/** While the failure store cannot be written: keep trying, backing off up to `outageMaxDelay`. */
export const storeOutageSchedule = (settings: WorkerSettingsShape) =>
  cappedBackoff(settings.retryBaseDelay, settings.outageMaxDelay)

/** A requeued event waits `requeueDelay`, doubled for each earlier try (try 1: ×1, try 2: ×2, try 3: ×4). */
export const requeueDelay = (settings: WorkerSettingsShape, failedTries: number): Duration.Duration =>
  Duration.times(settings.requeueDelay, 2 ** Math.max(0, failedTries - 1))

/** Every delay a requeue can wait (`failed_tries` 1 to `MAX_REQUEST_RETRIES`), shortest first. */
export const requeueDelays = (settings: WorkerSettingsShape): ReadonlyArray<Duration.Duration> =>
  Array.from({ length: settings.maxRequestRetries }, (_, index) => requeueDelay(settings, index + 1))

const deadlineError = (deadline: Duration.Duration) =>
  new TimeoutError({
    message: `attempt did not finish within ${Duration.format(deadline)} (MAX_CONSUME_SECONDS)`,
    stage: "attempt",
    timeoutMillis: Duration.toMillis(deadline)
  })

/** The attempt in a child fiber, interrupted by a plain timer if that fires first. */
const timerDeadline = <A, E, R>(attempt: Effect.Effect<A, E, R>, deadline: Duration.Duration) =>
  Effect.flatMap(Effect.forkChild(attempt, { startImmediately: true }), (fiber) =>
    Effect.callback<A, E | TimeoutError>((resume) => {
      const timer = setTimeout(
        () => resume(Effect.andThen(Fiber.interrupt(fiber), Effect.fail(deadlineError(deadline)))),
        Duration.toMillis(deadline)
      )
      fiber.addObserver((exit) => {
        clearTimeout(timer)
        resume(exit)
      })
      // the attempt is interrupted with its parent
      return Fiber.interrupt(fiber)
    }))

const liveClock = Context.get(Context.empty(), Clock.Clock)

/**
 * Bounds one attempt by `deadline`, failing with our own `TimeoutError` so exactly one `TimeoutError` type flows.
 * Every attempt pays for its deadline: on the real clock it is one fiber and a timer, where `Effect.timeoutOrElse`
 * races the attempt against a second, sleeping fiber (on the benchmark's workload that race cost 12 % of the
 * worker's CPU, the timer 4 %). A simulated clock (`TestClock`) drives only Effect's own sleeps, so there the
 * deadline is `Effect.timeoutOrElse`.
 */
export const withAttemptDeadline = (deadline: Duration.Duration) =>
<A, E, R>(attempt: Effect.Effect<A, E, R>): Effect.Effect<A, E | TimeoutError, R> =>
  Effect.clockWith((clock) =>
    clock === liveClock
      ? timerDeadline(attempt, deadline)
      : Effect.timeoutOrElse(attempt, { duration: deadline, orElse: () => Effect.fail(deadlineError(deadline)) })
  )
