/**
 * When to try again, in one place: the in-process retry of a send, the wait during an outage, the delay before a
 * requeued event comes back, and the deadline of one attempt.
 */
import { Clock, Context, Duration, Effect, Fiber, Schedule } from "effect"
import { isTransient, type SendEmailError, TimeoutError, Unavailable } from "../domain/errors.ts"
import { AttemptDeadline, type AttemptDeadlineShape, type AttemptStage } from "../services/AttemptDeadline.ts"
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

/**
 * The deadline fired: logged with the stage it cut. Cut while getting a connection ready (opening it, or checking an
 * idle one), the attempt met an outage, as when opening fails: no message reached the server, so it is
 * `Unavailable` and counts no attempt. Cut anywhere else, it is our `TimeoutError`.
 */
const deadlineExpired = (deadline: Duration.Duration, stage: AttemptStage): Effect.Effect<never, TimeoutError | Unavailable> => {
  const limit = `${Duration.format(deadline)} (MAX_CONSUME_SECONDS)`
  const error = stage === "waiting for a connection"
    ? new Unavailable({ message: `no SMTP connection ready within the attempt deadline of ${limit}`, dependency: "smtp" })
    : new TimeoutError({
      message: `attempt did not finish within ${limit}: cut at the stage "${stage}"`,
      stage: "attempt",
      timeoutMillis: Duration.toMillis(deadline)
    })
  return Effect.andThen(
    Effect.logWarning(`The attempt deadline of ${limit} cut the attempt at the stage "${stage}"`).pipe(
      Effect.annotateLogs({ stage })
    ),
    Effect.fail(error)
  )
}

/**
 * A deadline on a plain timer that can stop counting. Pausing and resuming only note the time and move the end: the
 * timer stays armed, and when it fires before the (moved) end, or during a pause, it is armed again for what is left
 * then. So the common attempt, which never waits long, sets one timer and clears it.
 */
class PausableDeadline implements AttemptDeadlineShape {
  stage: AttemptStage = "building the email"
  private endsAt: number
  private pausedAt: number | null = null
  private firedWhilePaused = false
  private stopped = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private onExpiry: () => void = () => {}

  constructor(private readonly millis: number) {
    this.endsAt = Date.now() + millis
  }

  enter(stage: AttemptStage): void {
    this.stage = stage
  }

  pause(): void {
    this.pausedAt ??= Date.now()
  }

  resume(): void {
    if (this.pausedAt === null) return
    this.endsAt += Date.now() - this.pausedAt
    this.pausedAt = null
    if (this.firedWhilePaused && !this.stopped) {
      this.firedWhilePaused = false
      this.arm(this.endsAt - Date.now())
    }
  }

  start(onExpiry: () => void): void {
    this.onExpiry = onExpiry
    this.arm(this.millis)
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  private arm(millis: number): void {
    this.timer = setTimeout(() => this.fired(), Math.max(0, millis))
  }

  private fired(): void {
    if (this.pausedAt !== null) {
      this.firedWhilePaused = true
    } else if (Date.now() < this.endsAt) {
      this.arm(this.endsAt - Date.now())
    } else {
      this.onExpiry()
    }
  }
}

/** The attempt in a child fiber, interrupted by the deadline's timer if that fires first. */
const timerDeadline = <A, E, R>(attempt: Effect.Effect<A, E, R>, deadline: Duration.Duration) =>
  Effect.suspend(() => {
    const timer = new PausableDeadline(Duration.toMillis(deadline))
    return Effect.flatMap(
      Effect.forkChild(Effect.provideService(attempt, AttemptDeadline, timer), { startImmediately: true }),
      (fiber) =>
        Effect.callback<A, E | TimeoutError | Unavailable>((resume) => {
          timer.start(() => resume(Effect.andThen(Fiber.interrupt(fiber), deadlineExpired(deadline, timer.stage))))
          fiber.addObserver((exit) => {
            timer.stop()
            resume(exit)
          })
          // the attempt is interrupted with its parent
          return Fiber.interrupt(fiber)
        })
    )
  })

const liveClock = Context.get(Context.empty(), Clock.Clock)

/**
 * Bounds one attempt by `deadline` (see `deadlineExpired` for how it fails). Time the attempt spends waiting for a
 * pooled connection does not count (`AttemptDeadline.pause`). Every attempt pays for its deadline: on the real clock
 * it is one fiber and a timer, where `Effect.timeoutOrElse` races the attempt against a second, sleeping fiber (on
 * the benchmark's workload that race cost 12 % of the worker's CPU, the timer 4 %). A simulated clock (`TestClock`)
 * drives only Effect's own sleeps, so there the deadline is `Effect.timeoutOrElse`, which names the stage but
 * honours no pause or stop.
 */
export const withAttemptDeadline = (deadline: Duration.Duration) =>
<A, E, R>(attempt: Effect.Effect<A, E, R>): Effect.Effect<A, E | TimeoutError | Unavailable, R> =>
  Effect.clockWith((clock) => {
    if (clock === liveClock) return timerDeadline(attempt, deadline)
    const stages = new PausableDeadline(Duration.toMillis(deadline))
    return Effect.timeoutOrElse(Effect.provideService(attempt, AttemptDeadline, stages), {
      duration: deadline,
      orElse: () => deadlineExpired(deadline, stages.stage)
    })
  })
