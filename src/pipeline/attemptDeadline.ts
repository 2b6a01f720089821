/**
 * The deadline of one delivery attempt (`MAX_CONSUME_SECONDS`), on a plain timer that can pause while the attempt
 * waits for a pooled connection. It bypasses Effect's `timeoutOrElse` on the real clock for speed: measured in
 * bench/FINDINGS.md ("Attempt deadline"); the tests of `test/retryPolicy.test.ts` run this timer path on the real
 * clock, and the pipeline's tests under `TestClock` the `timeoutOrElse` one.
 */
import { Clock, Context, Duration, Effect, Fiber } from "effect"
import { TimeoutError, Unavailable } from "../domain/errors.ts"
import { AttemptDeadline, type AttemptDeadlineShape, type AttemptStage } from "../smtp/AttemptDeadline.ts"

/**
 * The deadline fired: logged with the stage it cut. Cut while getting a pooled connection ready (the NOOP check of an
 * idle one; opening one happens in the pool, where the deadline is paused), the attempt met an outage, as when
 * opening fails: no message reached the server, so it is `Unavailable` and counts no attempt. Cut anywhere else, it
 * is our `TimeoutError`.
 */
const deadlineExpired = (deadline: Duration.Duration, stage: AttemptStage): Effect.Effect<never, TimeoutError | Unavailable> => {
  const limit = `${Duration.format(deadline)} (MAX_CONSUME_SECONDS)`
  const error = stage === "getting the connection ready"
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
 * pooled connection, or for the pool to open one, does not count (`AttemptDeadline.pause`). Every attempt pays for its deadline: on the real clock
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
