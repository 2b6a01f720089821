/**
 * Sending within the provider's limits: an `SmtpConnection` over another that takes a token of every limit that
 * applies to an email before handing it to the SMTP connection, so waiting for a token holds no connection. The limits
 * are `effect/persistence`'s `RateLimiter` token buckets (`EMAIL_RATE_LIMIT`, and `RATE_LIMIT_DOMAINS` for the
 * recipients' domains), in Redis when `REDIS_URL` is set, so that every worker process on the same SMTP account
 * shares them, else in the process.
 *
 * A throttling reply (`domain/throttling.ts`) is fed back to the limiter's adaptive state, shared in the same store:
 * every worker pauses for `THROTTLE_COOLDOWN`, then sends again while the limiter learns how much the server
 * accepts, and from the next throttling reply on paces itself to what was accepted. Each worker also cuts its
 * share of the configured rates by 30 % on each throttling episode and takes it back gradually, the whole rate in
 * `RECOVERY` (`Share`).
 */
import { Clock, Duration, Effect, Layer, Metric, Semaphore } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import type { DomainRateLimit, RateLimit } from "../config/limitSettings.ts"
import type { OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { isThrottled } from "../domain/throttling.ts"
import { rateLimitWaitSeconds, throttledReplies } from "../pipeline/metrics.ts"
import { AttemptDeadline } from "../smtp/AttemptDeadline.ts"
import { SmtpConnection } from "../smtp/SmtpConnection.ts"
import { redisUnavailable } from "./redisOutage.ts"

export interface SendLimits {
  /** `EMAIL_RATE_LIMIT`, all enforced */
  readonly rates: ReadonlyArray<RateLimit>
  /** `RATE_LIMIT_DOMAINS` */
  readonly domains: ReadonlyArray<DomainRateLimit>
  /** what the limits are counted under: the SMTP account (`EMAIL_HOST`, `EMAIL_PORT`, `EMAIL_HOST_USER`) */
  readonly account: string
}

/**
 * How long every worker pauses after a throttling reply (SMTP has no Retry-After). It also lengthens the window the
 * limiter's learned pace is counted over (what was accepted / (learning time + this)): longer is more cautious.
 */
export const THROTTLE_COOLDOWN = Duration.millis(500)
/** How long the configured rate takes to come back in full once the provider has stopped throttling. */
export const RECOVERY = Duration.seconds(60)
/** What a throttling episode leaves of the share. */
const DECREASE = 0.7
/** The least share of the configured rates throttling replies bring it down to. */
const MIN_SHARE = 0.05
/**
 * While the shared adaptive state is inactive (nobody throttled), each process asks it at most this often: a cooldown
 * another worker's throttling reply starts reaches this one this much later at most.
 */
const QUIET_RECHECK_MILLIS = 100
/** A token bucket holds this fraction of its limit (`bucketOf`). */
const BURST_DIVISOR = 10

/** The recipients' domains (lower-cased) that have a limit of their own. */
const limitedDomains = (message: OutgoingEmail, domains: ReadonlyArray<DomainRateLimit>): ReadonlyArray<DomainRateLimit> => {
  const seen = new Set<string>()
  for (const address of message.envelope.to) seen.add(address.slice(address.lastIndexOf("@") + 1).toLowerCase())
  return domains.filter((limit) => seen.has(limit.domain))
}

/**
 * The share of the configured rates this process sends at, additive increase and multiplicative decrease: cut by
 * `DECREASE` (down to `MIN_SHARE`) once per throttling episode it learns of (a throttling reply of its own, or the shared
 * adaptive state in cooldown when it sends), then rising back linearly, the whole rate in `RECOVERY`. The adaptive
 * state's learned pace alone can overshoot: what it learns counts the sends in flight when the server pushed back.
 */
class Share {
  private base = 1
  private since = Number.NEGATIVE_INFINITY
  private readonly recoveryMillis = Duration.toMillis(RECOVERY)
  private readonly episodeMillis = Duration.toMillis(THROTTLE_COOLDOWN)

  current(now: number): number {
    return Math.min(1, this.base + (now - this.since) / this.recoveryMillis)
  }

  /** the server pushed back: the replies of one episode (within a cooldown) count once */
  throttled(now: number): void {
    if (now - this.since < this.episodeMillis) return
    this.base = Math.max(MIN_SHARE, this.current(now) * DECREASE)
    this.since = now
  }
}

/**
 * A limit as a token bucket holding a tenth of it (at least 1), refilled at its rate: `600/min` sends 60 at once,
 * then one every 100 ms, so that no burst exceeds what the provider counts over a shorter time.
 */
const bucketOf = (rate: RateLimit, share: number) => {
  const perWindow = Math.max(1, rate.limit * share)
  const burst = Math.max(1, Math.ceil(perWindow / BURST_DIVISOR))
  return { limit: burst, window: Duration.times(rate.window, burst / perWindow) }
}

const wait = (delay: Duration.Duration) => Duration.isZero(delay) ? Effect.void : Effect.sleep(delay)

/**
 * `SmtpConnection` within `limits`, over the `SmtpConnection` it is provided with, on the `RateLimiterStore` it is
 * given (`RateLimiterStore.ts`: Redis with its fallback, or the process's memory). With `REDIS_OUTAGE=stop`, Redis
 * down is an outage (`Unavailable`): the email waits for it.
 */
export const layer = (limits: SendLimits) =>
  Layer.effect(
    SmtpConnection,
    Effect.gen(function*() {
      const inner = yield* SmtpConnection
      const limiter = yield* RateLimiter.RateLimiter
      const share = new Share()
      const adaptiveKey = `${limits.account}:throttling`
      const [fallback] = [...limits.rates, ...limits.domains]
      const fallbackLimit = fallback?.limit ?? 1
      const fallbackWindow = fallback?.window ?? Duration.seconds(1)

      /** until when the adaptive state is taken to be still inactive, as it was when last asked */
      let quietUntil = Number.NEGATIVE_INFINITY

      /**
       * A token taken is a slot reserved: the email sleeps until its time. While a limit holds emails back, this
       * process has one slot of it reserved at a time (the other emails wait their turn here, without a token), so
       * that a process the machine starves for a while does not send a backlog of slots at once when it runs again.
       * Per limit: an email waiting for gmail.com's does not hold back the others.
       */
      const turns = new Map<string, { readonly oneWaiter: Semaphore.Semaphore; limited: boolean }>()
      for (const rate of [...limits.rates, ...limits.domains]) turns.set(rate.text, { oneWaiter: yield* Semaphore.make(1), limited: false })

      const bucket = (rate: RateLimit, now: number) => {
        const turn = turns.get(rate.text)!
        const take = RateLimiter.sleep(limiter, {
          key: `${limits.account}:${rate.text}`,
          algorithm: "token-bucket",
          ...bucketOf(rate, share.current(now))
        }).pipe(Effect.map(({ delay }) => {
          turn.limited = !Duration.isZero(delay)
        }))
        return turn.limited ? turn.oneWaiter.withPermit(take) : take
      }

      /**
       * a token of every limit for `message`, waiting as long as it takes, then the adaptive state's go (checked
       * last, so that a cooldown that began during the wait holds this email too); gives the adaptive epoch
       */
      const take = (message: OutgoingEmail): Effect.Effect<number, RateLimiter.RateLimiterError> =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          for (const rate of limits.rates) yield* bucket(rate, now)
          for (const rate of limitedDomains(message, limits.domains)) yield* bucket(rate, now)
          // nobody throttled when last asked, a moment ago: not asked again (a round trip per email saved)
          if ((yield* Clock.currentTimeMillis) < quietUntil) return 0
          const adaptive = yield* limiter.adaptiveConsume({ key: adaptiveKey, tokens: 1, fallbackLimit, fallbackWindow })
          if (adaptive.phase === "inactive") quietUntil = (yield* Clock.currentTimeMillis) + QUIET_RECHECK_MILLIS
          if (adaptive.phase !== "cooldown") {
            yield* wait(adaptive.delay)
            return adaptive.epoch
          }
          // every email held by the cooldown would go at its end at once: each goes through the buckets again
          share.throttled(yield* Clock.currentTimeMillis)
          yield* wait(adaptive.delay)
          return yield* take(message)
        })

      /**
       * The limiter learns what the server accepted as what went out since the cooldown minus this one. (Taking off
       * the other sends in flight as well made it learn far too little whenever emails were past the limiter and
       * waiting for a pooled connection: 10–28 emails/s on the 454-above-40/s sink against 24/s steadily.)
       */
      const throttled = (epoch: number) =>
        Effect.andThen(
          Effect.map(Clock.currentTimeMillis, (now) => {
            share.throttled(now)
            quietUntil = Number.NEGATIVE_INFINITY
          }),
          limiter.adaptiveFeedback({ key: adaptiveKey, epoch, tokens: 1, status: 429, retryAfter: THROTTLE_COOLDOWN })
        )

      const send = (message: OutgoingEmail) =>
        Effect.gen(function*() {
          const deadline = yield* AttemptDeadline
          deadline.enter("waiting for the rate limit")
          deadline.pause()
          const epoch = yield* Effect.trackDuration(take(message), rateLimitWaitSeconds, Duration.toSeconds).pipe(
            Effect.ensuring(Effect.sync(() => deadline.resume())),
            // only with REDIS_OUTAGE=stop: a limit never fails (it waits), and the fallback store does not either
            Effect.mapError(redisUnavailable)
          )
          return yield* inner.send(message).pipe(
            Effect.tapError((error) =>
              isThrottled(error)
                ? Effect.andThen(Metric.update(throttledReplies, 1), Effect.ignore(throttled(epoch)))
                : Effect.void
            )
          )
        })

      return SmtpConnection.of({ ...inner, send })
    })
  )
