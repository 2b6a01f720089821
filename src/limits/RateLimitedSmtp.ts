/**
 * Sending within the provider's limits: an `SmtpConnection` over another that takes a token of every limit that
 * applies to an email before handing it to the SMTP connection, so waiting for a token holds no connection. The limits
 * are `effect/persistence`'s `RateLimiter` token buckets (`EMAIL_RATE_LIMIT`, and `RATE_LIMIT_DOMAINS` for the
 * recipients' domains), in Redis when `REDIS_URL` is set, so that every worker process on the same SMTP account
 * shares them, else in the process.
 *
 * A throttling reply (`domain/throttling.ts`) is fed back to the limiter's adaptive state, shared in the same store:
 * every worker pauses for `THROTTLE_COOLDOWN`, then sends at its configured rate while the limiter learns how much
 * the server accepts, and from the next throttling reply on paces itself to what was accepted. Once the cooldown or
 * the learned pace is over (the learned state lapses after a quiet minute), the configured rate comes back
 * gradually over `RECOVERY`, from half of it.
 */
import { Clock, Duration, Effect, Layer, Metric } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import type { DomainRateLimit, RateLimit } from "../config/limitSettings.ts"
import type { OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { isThrottlingReply } from "../domain/throttling.ts"
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

/** How long every worker pauses after a throttling reply (SMTP has no Retry-After). */
export const THROTTLE_COOLDOWN = Duration.seconds(1)
/** How long the configured rate takes to come back in full once the provider has stopped throttling. */
export const RECOVERY = Duration.seconds(60)
/** Where the configured rate starts again after throttling, as a fraction of it. */
const RECOVERY_START = 0.5

/** The recipients' domains (lower-cased) that have a limit of their own. */
const limitedDomains = (message: OutgoingEmail, domains: ReadonlyArray<DomainRateLimit>): ReadonlyArray<DomainRateLimit> => {
  const seen = new Set<string>()
  for (const address of message.envelope.to) seen.add(address.slice(address.lastIndexOf("@") + 1).toLowerCase())
  return domains.filter((limit) => seen.has(limit.domain))
}

/**
 * The throttled state as this process last saw it: when the adaptive state last showed (cooldown, learning,
 * learned), and so how far the configured rate has come back since. Per process: each sees the shared state when it
 * sends.
 */
class Recovery {
  private throttledUntil = Number.NEGATIVE_INFINITY
  private readonly millis = Duration.toMillis(RECOVERY)

  /**
   * the adaptive state this process saw when it sent, or a throttling reply it had itself (`"cooldown"`); learning
   * (sending again after the cooldown, to see what the server takes) is already recovering
   */
  seen(phase: RateLimiter.AdaptivePhase, now: number): void {
    if (phase === "cooldown" || phase === "learned") this.throttledUntil = now
  }

  /** the fraction of the configured rate allowed now */
  fraction(now: number): number {
    const since = now - this.throttledUntil
    if (since >= this.millis) return 1
    return RECOVERY_START + (1 - RECOVERY_START) * (since / this.millis)
  }
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
      const recovery = new Recovery()
      const adaptiveKey = `${limits.account}:throttling`
      const [fallback] = [...limits.rates, ...limits.domains]
      const fallbackLimit = fallback?.limit ?? 1
      const fallbackWindow = fallback?.window ?? Duration.seconds(1)

      const bucket = (key: string, rate: RateLimit, fraction: number) =>
        RateLimiter.sleep(limiter, {
          key,
          algorithm: "token-bucket",
          limit: Math.max(1, Math.floor(rate.limit * fraction)),
          window: rate.window
        })

      /** a token of every limit for `message`, waiting as long as it takes; the adaptive state's epoch */
      const take = (message: OutgoingEmail) =>
        Effect.gen(function*() {
          const adaptive = yield* limiter.adaptiveConsume({ key: adaptiveKey, tokens: 1, fallbackLimit, fallbackWindow })
          yield* wait(adaptive.delay)
          const now = yield* Clock.currentTimeMillis
          recovery.seen(adaptive.phase, now)
          const fraction = recovery.fraction(now)
          for (const rate of limits.rates) yield* bucket(`${limits.account}:${rate.text}`, rate, fraction)
          for (const rate of limitedDomains(message, limits.domains)) yield* bucket(`${limits.account}:${rate.text}`, rate, fraction)
          return adaptive.epoch
        })

      const throttled = (epoch: number) =>
        Effect.andThen(
          Effect.map(Clock.currentTimeMillis, (now) => recovery.seen("cooldown", now)),
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
              error._tag === "NotDelivered" && error.smtpCode !== null && isThrottlingReply(error.smtpCode, error.response ?? "")
                ? Effect.andThen(Metric.update(throttledReplies, 1), Effect.ignore(throttled(epoch)))
                : Effect.void
            )
          )
        })

      return SmtpConnection.of({ ...inner, send })
    })
  )
