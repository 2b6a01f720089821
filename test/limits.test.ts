/**
 * The sending limits and the duplicate ledger on in-memory stores, under `TestClock`: the limiter's pace, its
 * feedback from throttling replies and the gradual recovery, a throttled event's requeue, and the ledger's decision.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Metric } from "effect"
import { TestClock } from "effect/testing"
import { parseDomainRateLimit, parseRateLimit, type RateLimit } from "../src/config/limitSettings.ts"
import { NotDelivered } from "../src/domain/errors.ts"
import { isThrottlingReply } from "../src/domain/throttling.ts"
import * as RateLimitedSmtp from "../src/limits/RateLimitedSmtp.ts"
import * as RateLimiterStore from "../src/limits/RateLimiterStore.ts"
import * as SentLedger from "../src/limits/SentLedger.ts"
import { InMemoryQueue } from "../src/queue/InMemoryQueue.ts"
import { InMemorySmtp } from "../src/smtp/InMemorySmtp.ts"
import { SmtpConnection } from "../src/smtp/SmtpConnection.ts"
import { consumeBatch } from "../src/pipeline/settleDelivery.ts"
import * as Metrics from "../src/pipeline/metrics.ts"
import { QueueConsumer } from "../src/queue/QueueConsumer.ts"
import type { OutgoingEmail } from "../src/domain/OutgoingEmail.ts"
import { confirmNewEmail, inMemoryLayer } from "./support/inMemory.ts"

const rate = (text: string): RateLimit => {
  const parsed = parseRateLimit(text)
  if (typeof parsed === "string") throw new Error(parsed)
  return parsed
}

const email = (n: number, to = `user${n}@example.com`): OutgoingEmail => ({
  messageId: `<limits-${n}@example.test>`,
  envelope: { from: "noreply@example.test", to: [to] }
}) as unknown as OutgoingEmail

const throttling = new NotDelivered({ message: "454 Throttling failure", smtpCode: 454, response: "454 Throttling failure: Maximum sending rate exceeded." })

/** `InMemorySmtp` within `limits`, the limits in this process's memory. */
const limitedSmtp = (rates: ReadonlyArray<string>, domains: ReadonlyArray<string> = []) =>
  RateLimitedSmtp.layer({
    rates: rates.map(rate),
    domains: domains.map((text) => {
      const parsed = parseDomainRateLimit(text)
      if (typeof parsed === "string") throw new Error(parsed)
      return parsed
    }),
    account: "smtp:test"
  }).pipe(Layer.provide(RateLimiterStore.layerMemory), Layer.provideMerge(InMemorySmtp.layer))

/** Send `emails` one after the other, as far as they get while the test clock moves `step` at a time `steps` times. */
const sendAll = (emails: ReadonlyArray<OutgoingEmail>, step: Duration.Input, steps: number) =>
  Effect.gen(function*() {
    const smtp = yield* SmtpConnection
    const fiber = yield* Effect.forkChild(Effect.forEach(emails, (message) => Effect.ignore(smtp.send(message)), { discard: true }))
    for (let i = 0; i < steps; i++) yield* TestClock.adjust(step)
    return fiber
  })

describe("settings", () => {
  it("rate limits: count per window, several units, clear problems", () => {
    assert.deepStrictEqual(parseRateLimit("14/s"), { limit: 14, window: Duration.seconds(1), text: "14/s" })
    assert.deepStrictEqual(parseRateLimit(" 600 / min "), { limit: 600, window: Duration.minutes(1), text: "600/min" })
    assert.deepStrictEqual(parseRateLimit("50000/day"), { limit: 50000, window: Duration.days(1), text: "50000/day" })
    assert.include(parseRateLimit("14 per second") as string, "expected <count>/<s|min|h|day>")
    assert.include(parseRateLimit("0/s") as string, "at least 1")
    assert.include(parseRateLimit("5/fortnight") as string, "not \"5/fortnight\"")
    assert.deepStrictEqual(parseDomainRateLimit("Gmail.com=5/s"), { limit: 5, window: Duration.seconds(1), text: "gmail.com=5/s", domain: "gmail.com" })
    assert.include(parseDomainRateLimit("5/s") as string, "expected <domain>=<count>/<window>")
    assert.include(parseDomainRateLimit("outlook.com=3/week") as string, "outlook.com: expected")
  })

  it("throttling replies: 454, 421 4.7.x, 451 4.7.1, and a 4xx whose text says so; not greylisting's 450 or a 5xx", () => {
    assert.isTrue(isThrottlingReply(454, "454 Throttling failure: Maximum sending rate exceeded."))
    assert.isTrue(isThrottlingReply(421, "421 4.7.0 Try again later, closing connection."))
    assert.isTrue(isThrottlingReply(451, "451 4.7.1 Please try again later"))
    assert.isTrue(isThrottlingReply(450, "450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages"))
    assert.isTrue(isThrottlingReply(452, "452 4.5.3 Too many recipients"))
    assert.isFalse(isThrottlingReply(451, "451 4.3.0 Temporary lookup failure"))
    assert.isFalse(isThrottlingReply(421, "421 Service not available"))
    assert.isFalse(isThrottlingReply(450, "450 4.2.0 Greylisted, please try again later"))
    assert.isFalse(isThrottlingReply(554, "554 Throttling failure"))
  })
})

/** How many of many emails the limits let through while the test clock moves `seconds`, 100 ms at a time. */
const sentWithin = (seconds: number) =>
  Effect.gen(function*() {
    const smtp = yield* SmtpConnection
    const before = (yield* (yield* InMemorySmtp).attemptTimes).length
    const fiber = yield* Effect.forkChild(Effect.forEach(Array.from({ length: 400 }, (_, n) => email(100 + n)), (message) => Effect.ignore(smtp.send(message)), { discard: true }))
    for (let i = 0; i < seconds * 10; i++) yield* TestClock.adjust("100 millis")
    yield* Fiber.interrupt(fiber)
    return (yield* (yield* InMemorySmtp).attemptTimes).length - before
  })

describe("rate limit", () => {
  it.effect("EMAIL_RATE_LIMIT=5/s: one every 200 ms (a bucket holds a tenth of the limit, at least 1)", () =>
    Effect.gen(function*() {
      const fiber = yield* sendAll(Array.from({ length: 15 }, (_, n) => email(n)), "100 millis", 30)
      yield* Fiber.await(fiber)
      const times = yield* (yield* InMemorySmtp).attemptTimes
      assert.deepStrictEqual(times, Array.from({ length: 15 }, (_, n) => n * 200))
    }).pipe(Effect.provide(limitedSmtp(["5/s"]))))

  it.effect("emails sent at once by many fibers are paced the same: one every 200 ms at 5/s", () =>
    Effect.gen(function*() {
      const smtp = yield* SmtpConnection
      const fibers = yield* Effect.forEach(Array.from({ length: 10 }, (_, n) => email(n)), (message) => Effect.forkChild(smtp.send(message)))
      for (let i = 0; i < 30; i++) yield* TestClock.adjust("100 millis")
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(yield* (yield* InMemorySmtp).attemptTimes, Array.from({ length: 10 }, (_, n) => n * 200))
    }).pipe(Effect.provide(limitedSmtp(["5/s"]))))

  it.effect("several limits are all enforced: with 10/s and 12/min, one every 100 ms while 12/min's bucket of 2 lasts, then one every 5 s", () =>
    Effect.gen(function*() {
      const fiber = yield* sendAll(Array.from({ length: 4 }, (_, n) => email(n)), "100 millis", 150)
      yield* Fiber.await(fiber)
      assert.deepStrictEqual(yield* (yield* InMemorySmtp).attemptTimes, [0, 100, 5000, 10000])
    }).pipe(Effect.provide(limitedSmtp(["10/s", "12/min"]))))

  it.effect("RATE_LIMIT_DOMAINS: only the recipients of that domain wait for its limit", () =>
    Effect.gen(function*() {
      const gmail = Array.from({ length: 4 }, (_, n) => email(n, `user${n}@Gmail.com`))
      const other = Array.from({ length: 4 }, (_, n) => email(10 + n))
      const smtp = yield* SmtpConnection
      yield* Effect.forkChild(Effect.forEach(gmail, smtp.send, { discard: true }))
      yield* Effect.forkChild(Effect.forEach(other, smtp.send, { discard: true }))
      yield* TestClock.adjust("1 millis")
      const sent = yield* (yield* InMemorySmtp).sent
      // 1 of gmail.com's 4 at once (2/s: one every 500 ms), every other one
      assert.strictEqual(sent.filter((m) => m.envelope.to[0]!.endsWith("@Gmail.com")).length, 1)
      assert.strictEqual(sent.length - 1, 4)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* (yield* InMemorySmtp).sent).length, 8)
    }).pipe(Effect.provide(limitedSmtp(["100/s"], ["gmail.com=2/s"]))))

  it.effect("the throttling replies of one episode cut the rate once, without a pause; a reply after THROTTLE_EPISODE cuts it again", () =>
    Effect.gen(function*() {
      const smtp = yield* SmtpConnection
      const server = yield* InMemorySmtp
      // two replies within the episode, and the next email goes at once
      yield* server.failNext(2, throttling)
      yield* Effect.flip(smtp.send(email(0)))
      yield* Effect.flip(smtp.send(email(1)))
      yield* smtp.send(email(2))
      assert.deepStrictEqual(yield* server.attemptTimes, [0, 0, 0], "nothing pauses")
      // 70 % of 100/s, not 49 %
      const cutOnce = yield* sentWithin(1)
      assert.isAtLeast(cutOnce, 65)
      assert.isAtMost(cutOnce, 80)
      // the episode is over: another reply (to the first of the next emails) cuts the rate to about half of it
      yield* server.failNext(1, throttling)
      const cutTwice = yield* sentWithin(1)
      assert.isAtLeast(cutTwice, 45)
      assert.isAtMost(cutTwice, 60)
      assert.strictEqual(yield* Metric.value(Metrics.throttledReplies).pipe(Effect.map((c) => c.count)), 3)
    }).pipe(Effect.provide(limitedSmtp(["100/s"]))))

  it.effect("a throttling reply cuts the rate by 30 %, which comes back gradually over RECOVERY", () =>
    Effect.gen(function*() {
      const smtp = yield* SmtpConnection
      const server = yield* InMemorySmtp
      yield* server.failNext(1, throttling)
      yield* Effect.flip(smtp.send(email(0)))
      const early = yield* sentWithin(2)
      yield* TestClock.adjust(RateLimitedSmtp.RECOVERY)
      const late = yield* sentWithin(2)
      assert.isBelow(early, late * 0.8, `recovering (${early} in 2 s) slower than recovered (${late} in 2 s)`)
      assert.isAtLeast(early, 140, "70 % of the rate, and more as it recovers")
      // 100/s: a bucket of 10, then 100 a second
      assert.strictEqual(late, 210)
    }).pipe(Effect.provide(limitedSmtp(["100/s"]))))
})

const ledgerLayer = SentLedger.layerMemory({
  ttl: Duration.days(7),
  storeId: "test:sent",
  messageIdHost: "example.test",
  onOutage: "fallback",
  dependency: "redis"
})

/** Take the deliveries of `bodies`, each marked redelivered or not, and settle them. */
const settle = (bodies: ReadonlyArray<object>, redelivered: boolean) =>
  Effect.gen(function*() {
    const queue = yield* InMemoryQueue
    for (const body of bodies) yield* queue.publish(body as never)
    const consumer = yield* QueueConsumer
    const deliveries = yield* Effect.replicateEffect(consumer.take, bodies.length)
    return yield* consumeBatch(deliveries.map((delivery) => ({ ...delivery, redelivered })))
  })

describe("ledger", () => {
  it("is checked only for an event that may have been sent: redelivered, or failed_tries above 0", () => {
    assert.isFalse(SentLedger.mayHaveBeenSent(false, 0))
    assert.isTrue(SentLedger.mayHaveBeenSent(true, 0))
    assert.isTrue(SentLedger.mayHaveBeenSent(false, 2))
  })

  it.effect("a redelivered event already sent is acked without sending; a first delivery is sent; the entry lapses after DEDUPE_TTL", () =>
    Effect.gen(function*() {
      const smtp = yield* InMemorySmtp
      const event = { ...confirmNewEmail, message_id: "<ledger-1@example.test>" }
      const suppressedBefore = (yield* Metric.value(Metrics.duplicatesSuppressed)).count
      yield* settle([event], false)
      assert.strictEqual((yield* smtp.sent).length, 1)
      // the broker redelivers it (the worker crashed before its ack): not sent again
      yield* settle([event], true)
      assert.strictEqual((yield* smtp.sent).length, 1)
      assert.strictEqual((yield* Metric.value(Metrics.duplicatesSuppressed)).count - suppressedBefore, 1)
      // a requeued copy (failed_tries 1) is checked too
      yield* settle([{ ...event, failed_tries: 1 }], false)
      assert.strictEqual((yield* smtp.sent).length, 1)
      // a first delivery is not checked: the same Message-ID published anew is sent
      yield* settle([event], false)
      assert.strictEqual((yield* smtp.sent).length, 2)
      yield* TestClock.adjust(Duration.sum(Duration.days(7), Duration.seconds(1)))
      yield* settle([event], true)
      assert.strictEqual((yield* smtp.sent).length, 3, "after DEDUPE_TTL the ledger has forgotten it")
      assert.strictEqual((yield* (yield* InMemoryQueue).acked).length, 5)
    }).pipe(Effect.provide(Layer.merge(inMemoryLayer, ledgerLayer))))

  it.effect("a redelivered event not in the ledger is sent and recorded; the write is timed", () =>
    Effect.gen(function*() {
      const windowsBefore = (yield* Metric.value(Metrics.ledgerWindowSeconds)).count
      yield* settle([{ ...confirmNewEmail, message_id: "<ledger-2@example.test>" }], true)
      assert.strictEqual((yield* (yield* InMemorySmtp).sent).length, 1)
      assert.strictEqual((yield* Metric.value(Metrics.ledgerWindowSeconds)).count - windowsBefore, 1)
      yield* settle([{ ...confirmNewEmail, message_id: "<ledger-2@example.test>" }], true)
      assert.strictEqual((yield* (yield* InMemorySmtp).sent).length, 1)
    }).pipe(Effect.provide(Layer.merge(inMemoryLayer, ledgerLayer))))
})

describe("throttled events", () => {
  it.effect("are requeued without spending a try, whatever MAX_REQUEST_RETRIES, and never recorded as failed", () =>
    Effect.gen(function*() {
      yield* (yield* InMemorySmtp).failNext(10, throttling)
      const event = { ...confirmNewEmail, failed_tries: 3 }
      const [settled] = yield* settle([event], false)
      assert.strictEqual(settled!.outcome, "requeued")
      const [requeued] = yield* (yield* InMemoryQueue).requeued
      assert.strictEqual(requeued!.event["failed_tries"], 3)
    }).pipe(Effect.provide(inMemoryLayer)))
})
