/**
 * Sending within the provider's limits: an `SmtpConnection` over another that takes a token of every limit that
 * applies to an email before handing it to the SMTP connection, so waiting for a token holds no connection. The limits
 * are `effect/persistence`'s `RateLimiter` token buckets (`EMAIL_RATE_LIMIT`, and `RATE_LIMIT_DOMAINS` for the
 * recipients' domains), in Redis when `REDIS_URL` is set, so that every worker process on the same SMTP account
 * shares them, else in the process.
 *
 * A throttling reply (`domain/throttling.ts`) makes the worker cut its share of the configured rates by 30 %, once
 * per throttling episode, and take it back gradually, the whole rate in `RECOVERY` (`Share`): additive increase,
 * multiplicative decrease, which keeps the workers a little below what the server accepts, probing upwards all along.
 *
 * Not the `RateLimiter`'s adaptive state (`adaptiveConsume`/`adaptiveFeedback`), which this used to feed as well: it
 * is made for a server that counts per fixed window and answers with a Retry-After, and paces to what was sent from the
 * end of a cooldown to the first throttling reply, over that time plus the cooldown, until the next reply or for a
 * minute. SMTP has no Retry-After and Amazon SES counts over the last second: against a sink throttling above 40/s it
 * learned only what a shorter cooldown had freed of that count (down to 2/s, held for a minute), with a cooldown of a
 * second at most 40 per 1.3–2 s, and it counts the sends still on their way when the reply comes as accepted, so that
 * its next burst was throttled again.
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
 * The throttling replies within this time of the one that cut the share are the same episode, and do not cut it again:
 * the replies to the sends already on their way, and those answered while the server's count (over a second, as
 * Amazon SES counts) still holds what was sent before the cut.
 */
export const THROTTLE_EPISODE = Duration.seconds(1)
/**
 * How long the configured rate takes to come back in full once the provider has stopped throttling. Each time the
 * share grows past what the server accepts, the sends already on their way are throttled: at 40/s of 100/s, 90 s
 * makes that once every 10 s or so, 1–3 % of the sends (60 s: 2.5–4.6 %, for no more sent).
 */
export const RECOVERY = Duration.seconds(90)
/** What a throttling episode leaves of the share. */
const DECREASE = 0.7
/** The least share of the configured rates throttling replies bring it down to. */
const MIN_SHARE = 0.05
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
 * `DECREASE` (down to `MIN_SHARE`) once per throttling episode of its own replies, then rising back linearly, the
 * whole rate in `RECOVERY`. Kept by each process, not shared: every worker sends its part of the emails, so each gets
 * throttling replies of its own in an episode, and the shared buckets go at the pace of the shares that take from them.
 */
class Share {
  private base = 1
  private since = Number.NEGATIVE_INFINITY
  private readonly recoveryMillis = Duration.toMillis(RECOVERY)
  private readonly episodeMillis = Duration.toMillis(THROTTLE_EPISODE)

  current(now: number): number {
    return Math.min(1, this.base + (now - this.since) / this.recoveryMillis)
  }

  /** the server pushed back: the replies of one episode (`THROTTLE_EPISODE`) count once */
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

      /**
       * A token taken is a slot reserved: the email sleeps until its time. While a limit holds emails back, this
       * process has one slot of it reserved at a time (the other emails wait their turn here, without a token), so
       * that a process the machine starves for a while does not send a backlog of slots at once when it runs again.
       * Per limit: an email waiting for gmail.com's does not hold back the others.
       */
      const turns = new Map<string, { readonly oneWaiter: Semaphore.Semaphore; limited: boolean }>()
      for (const rate of [...limits.rates, ...limits.domains]) turns.set(rate.text, { oneWaiter: yield* Semaphore.make(1), limited: false })

      const bucket = (rate: RateLimit) => {
        const turn = turns.get(rate.text)!
        // the share when its turn comes, not when it began to wait: a cut holds back the emails already waiting
        const take = Effect.flatMap(Clock.currentTimeMillis, (now) =>
          RateLimiter.sleep(limiter, {
            key: `${limits.account}:${rate.text}`,
            algorithm: "token-bucket",
            ...bucketOf(rate, share.current(now))
          })
        ).pipe(Effect.map(({ delay }) => {
          turn.limited = !Duration.isZero(delay)
        }))
        return turn.limited ? turn.oneWaiter.withPermit(take) : take
      }

      /** a token of every limit for `message`, waiting as long as it takes */
      const take = (message: OutgoingEmail): Effect.Effect<void, RateLimiter.RateLimiterError> =>
        Effect.gen(function*() {
          for (const rate of limits.rates) yield* bucket(rate)
          for (const rate of limitedDomains(message, limits.domains)) yield* bucket(rate)
        })

      const send = (message: OutgoingEmail) =>
        Effect.gen(function*() {
          const deadline = yield* AttemptDeadline
          deadline.enter("waiting for the rate limit")
          deadline.pause()
          yield* Effect.trackDuration(take(message), rateLimitWaitSeconds, Duration.toSeconds).pipe(
            Effect.ensuring(Effect.sync(() => deadline.resume())),
            // only with REDIS_OUTAGE=stop: a limit never fails (it waits), and the fallback store does not either
            Effect.mapError(redisUnavailable)
          )
          return yield* inner.send(message).pipe(
            Effect.tapError((error) =>
              isThrottled(error)
                ? Effect.andThen(Metric.update(throttledReplies, 1), Effect.map(Clock.currentTimeMillis, (now) => share.throttled(now)))
                : Effect.void
            )
          )
        })

      return SmtpConnection.of({ ...inner, send })
    })
  )
