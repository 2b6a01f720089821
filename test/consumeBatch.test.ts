import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Layer, Logger, Metric, References } from "effect"
import { TestClock } from "effect/testing"
import { createHash } from "node:crypto"
import { NotDelivered, QueueError, Rejected, StoreError, TimeoutError, Unavailable } from "../src/domain/errors.ts"
import type { DeliveryReport } from "../src/domain/OutgoingEmail.ts"
import { InMemoryFailures } from "../src/records/InMemoryFailureStore.ts"
import { InMemoryQueue } from "../src/queue/InMemoryQueue.ts"
import { InMemoryRealms } from "../src/realms/InMemoryRealmRepository.ts"
import { InMemorySmtp } from "../src/smtp/InMemorySmtp.ts"
import { InMemorySuppressionList } from "../src/smtp/InMemorySuppressionList.ts"
import { consumeBatch } from "../src/pipeline/settleDelivery.ts"
import * as Metrics from "../src/pipeline/metrics.ts"
import { withAttemptDeadline } from "../src/pipeline/attemptDeadline.ts"
import { runWorker } from "../src/pipeline/worker.ts"
import { FailureStore } from "../src/records/FailureStore.ts"
import { QueueConsumer } from "../src/queue/QueueConsumer.ts"
import { SmtpConnection } from "../src/smtp/SmtpConnection.ts"
import { SuppressionList } from "../src/smtp/SuppressionList.ts"
import { defaultWorkerSettings, WorkerSettings, type WorkerSettingsShape } from "../src/config/WorkerSettings.ts"
import { confirmNewEmail, hamlet, inMemoryLayer, othello } from "./support/inMemory.ts"
import { withCapturedLogs } from "./support/logCapture.ts"

const notDelivered = new NotDelivered({ message: "451 try again later", smtpCode: 451, response: "451 4.3.0 try later" })
/** dropped before the server replied: retried in process, unlike a 4xx reply */
const connectionLost = new NotDelivered({ message: "Connection closed unexpectedly", smtpCode: null, response: null })
const rejected = new Rejected({ message: "550 no such user", smtpCode: 550, response: "550 5.1.1 User unknown", recipients: ["hamlet@zulip.example"] })

/** An SMTP server that accepts every message for `accepted` and refuses it for `refused`. */
const partlyAccepting = (accepted: ReadonlyArray<string>, refused: DeliveryReport["rejected"][number]) =>
  Layer.succeed(SmtpConnection, SmtpConnection.of({
    send: () => Effect.succeed({ accepted, rejected: [refused], response: "250 OK" }),
    healthCheck: Effect.void,
    close: Effect.void
  }))

const sha12 = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 12)

const withSettings = (overrides: Partial<WorkerSettingsShape>) =>
  Effect.provideService(WorkerSettings, { ...defaultWorkerSettings, ...overrides })

/** Publish the bodies and take as many deliveries from the in-memory queue, as the worker's fibers would. */
const publishAndTake = (bodies: ReadonlyArray<string | object>) =>
  Effect.gen(function*() {
    const queue = yield* InMemoryQueue
    for (const body of bodies) yield* queue.publish(body as string)
    const consumer = yield* QueueConsumer
    return yield* Effect.replicateEffect(consumer.take, bodies.length)
  })

/** Run the worker until every published event is settled, moving the test clock forward a step at a time. */
const runUntilSettled = Effect.gen(function*() {
  const queue = yield* InMemoryQueue
  const worker = yield* Effect.forkChild(runWorker)
  for (let step = 0; step < 2_000; step++) {
    yield* TestClock.adjust("1 second")
    if ((yield* queue.unsettled) === 0) break
  }
  yield* Fiber.interrupt(worker)
  assert.strictEqual(yield* queue.unsettled, 0, "every event settled")
})

describe("consumeBatch", () => {
  it.effect("Zulip's retry test: with SEND_ATTEMPTS=1 an always-failing event gets 4 attempts, 3 requeues, 1 failure record", () =>
    withCapturedLogs((logs) =>
      Effect.gen(function*() {
        const smtp = yield* InMemorySmtp
        yield* smtp.failNext(100, notDelivered)
        yield* (yield* InMemoryQueue).publish(confirmNewEmail)
        yield* runUntilSettled

        assert.strictEqual((yield* smtp.attemptTimes).length, 4)
        const requeued = yield* (yield* InMemoryQueue).requeued
        assert.deepStrictEqual(requeued.map((r) => r.event.failed_tries), [1, 2, 3])
        assert.deepStrictEqual(requeued[0]!.event, { ...confirmNewEmail, failed_tries: 1 })
        const records = yield* (yield* InMemoryFailures).records
        assert.strictEqual(records.length, 1)
        assert.deepStrictEqual(records[0]!.event, { ...confirmNewEmail, failed_tries: 3 })
        assert.strictEqual(records[0]!.reason.tag, "NotDelivered")
        assert.strictEqual(records[0]!.reason.smtpCode, 451)
        const errors = logs.filter((line) => line.level === "Error")
        assert.strictEqual(errors.length, 1)
        assert.match(errors[0]!.message, /^Event .* failed due to exception NotDelivered$/)
        // every delivery was acked: the original and its three requeued copies
        assert.strictEqual((yield* (yield* InMemoryQueue).acked).length, 4)
      }).pipe(withSettings({ sendAttempts: 1 }), Effect.provide(inMemoryLayer))
    ))

  it.effect("requeue delays grow with each try", () =>
    Effect.gen(function*() {
      const smtp = yield* InMemorySmtp
      yield* smtp.failNext(100, notDelivered)
      yield* (yield* InMemoryQueue).publish(confirmNewEmail)
      yield* runUntilSettled
      const delays = (yield* (yield* InMemoryQueue).requeued).map((r) => r.delayMillis)
      assert.deepStrictEqual(delays, [10_000, 20_000, 40_000])
      const times = yield* smtp.attemptTimes
      // each requeued copy is attempted only after its delay
      assert.isAtLeast(times[1]! - times[0]!, 10_000)
      assert.isAtLeast(times[3]! - times[2]!, 40_000)
    }).pipe(withSettings({ sendAttempts: 1, requeueDelay: Duration.seconds(10) }), Effect.provide(inMemoryLayer)))

  it.effect("a transient failure is retried in process with growing, jittered, capped delays, then sent", () =>
    Effect.gen(function*() {
      const smtp = yield* InMemorySmtp
      yield* smtp.failNext(5, connectionLost)
      const deliveries = yield* publishAndTake([confirmNewEmail])
      const fiber = yield* Effect.forkChild(consumeBatch(deliveries))
      yield* TestClock.adjust("1 minute")
      const [settlement] = yield* Fiber.join(fiber)
      assert.strictEqual(settlement!.outcome, "sent")
      const times = yield* smtp.attemptTimes
      assert.strictEqual(times.length, 6)
      const delays = times.slice(1).map((t, i) => t - times[i]!)
      // exponential from 1 s (factor 2) with jitter 0.8–1.2, capped at 3 s
      const expected = [1000, 2000, 3000, 3000, 3000]
      delays.forEach((delay, i) => {
        assert.isAtMost(delay, expected[i]! * (i < 2 ? 1.2 : 1) + 1, `delay ${i}`)
        assert.isAtLeast(delay, Math.min(expected[i]! * 0.8, 3000 * 0.8), `delay ${i}`)
      })
      assert.isAbove(delays[1]!, delays[0]!)
      assert.strictEqual((yield* (yield* InMemorySmtp).sent).length, 1)
      assert.strictEqual((yield* (yield* InMemoryQueue).acked).length, 1)
    }).pipe(
      withSettings({ sendAttempts: 6, retryBaseDelay: Duration.seconds(1), retryMaxDelay: Duration.seconds(3) }),
      Effect.provide(inMemoryLayer)
    ))

  it.effect("a retry sends the same built message: realm and users are not looked up again", () =>
    Effect.gen(function*() {
      yield* (yield* InMemorySmtp).failNext(2, connectionLost)
      const deliveries = yield* publishAndTake([{ template_prefix: "zerver/emails/password_reset", to_user_ids: [hamlet.id] }])
      const fiber = yield* Effect.forkChild(consumeBatch(deliveries))
      yield* TestClock.adjust("1 minute")
      const [settlement] = yield* Fiber.join(fiber)
      assert.strictEqual(settlement!.outcome, "sent")
      assert.strictEqual((yield* (yield* InMemorySmtp).attemptTimes).length, 3)
      assert.strictEqual(yield* (yield* InMemoryRealms).lookups, 2, "users and realm, once")
    }).pipe(Effect.provide(inMemoryLayer)))

  it.effect("when SEND_ATTEMPTS are used up the event is requeued with failed_tries + 1 and acked", () =>
    Effect.gen(function*() {
      const smtp = yield* InMemorySmtp
      yield* smtp.failNext(3, connectionLost)
      const deliveries = yield* publishAndTake([{ ...confirmNewEmail, failed_tries: 1 }])
      const fiber = yield* Effect.forkChild(consumeBatch(deliveries))
      yield* TestClock.adjust("1 minute")
      const [settlement] = yield* Fiber.join(fiber)
      assert.strictEqual(settlement!.outcome, "requeued")
      assert.strictEqual((yield* smtp.attemptTimes).length, 3)
      const [requeued] = yield* (yield* InMemoryQueue).requeued
      assert.strictEqual(requeued!.event.failed_tries, 2)
    }).pipe(Effect.provide(inMemoryLayer)))

  it.effect("a 4xx reply is not retried in process: the event is requeued at once, whatever SEND_ATTEMPTS", () =>
    Effect.gen(function*() {
      const smtp = yield* InMemorySmtp
      yield* smtp.failNext(1, notDelivered)
      const deliveries = yield* publishAndTake([confirmNewEmail])
      // no clock moves: nothing waits in process, so the delivery fiber is free at once
      const [settlement] = yield* consumeBatch(deliveries)
      assert.strictEqual(settlement!.outcome, "requeued")
      assert.strictEqual((yield* smtp.attemptTimes).length, 1)
      const [requeued] = yield* (yield* InMemoryQueue).requeued
      assert.strictEqual(requeued!.event.failed_tries, 1)
      assert.strictEqual(requeued!.delayMillis, 30_000)
      assert.deepStrictEqual(yield* (yield* InMemoryQueue).acked, [JSON.stringify(confirmNewEmail)])
    }).pipe(withSettings({ sendAttempts: 3, requeueDelay: Duration.seconds(30) }), Effect.provide(inMemoryLayer)))

  it.effect("a 5xx rejection is attempted once and recorded with its code", () =>
    withCapturedLogs((logs) =>
      Effect.gen(function*() {
        const smtp = yield* InMemorySmtp
        yield* smtp.failNext(1, rejected)
        const deliveries = yield* publishAndTake([confirmNewEmail])
        const [settlement] = yield* consumeBatch(deliveries)
        assert.strictEqual(settlement!.outcome, "failed")
        assert.strictEqual((yield* smtp.attemptTimes).length, 1)
        const [record] = yield* (yield* InMemoryFailures).records
        assert.deepStrictEqual(record!.reason, { tag: "Rejected", message: rejected.message, attempts: 1, smtpCode: 550 })
        assert.deepStrictEqual(record!.event, confirmNewEmail)
        assert.deepStrictEqual((yield* (yield* InMemoryQueue).requeued), [])
        assert.isTrue(logs.some((l) => l.level === "Error" && l.message.startsWith("Problem handling data on queue email_senders")))
        assert.isTrue(logs.some((l) =>
          l.level === "Error" && l.message === `Error sending confirm_new_email email to 1 recipient(s) with error code 550: ${rejected.message}`
        ), "Zulip's send error line, with the recipient count instead of the addresses")
      }).pipe(Effect.provide(inMemoryLayer))
    ))

  it.effect("the attempts recorded are those that reached a verdict: outage waits between them count none", () =>
    Effect.gen(function*() {
      const smtp = yield* InMemorySmtp
      const outage = new Unavailable({ message: "connection refused", dependency: "smtp" })
      yield* smtp.failNext(1, outage)
      yield* smtp.failNext(1, connectionLost)
      yield* smtp.failNext(1, outage)
      yield* smtp.failNext(1, connectionLost)
      yield* smtp.failNext(1, rejected)
      const deliveries = yield* publishAndTake([confirmNewEmail])
      const fiber = yield* Effect.forkChild(consumeBatch(deliveries))
      yield* TestClock.adjust("1 minute")
      const [settlement] = yield* Fiber.join(fiber)
      assert.strictEqual(settlement!.outcome, "failed")
      assert.strictEqual((yield* smtp.attemptTimes).length, 5)
      const [record] = yield* (yield* InMemoryFailures).records
      assert.deepStrictEqual(record!.reason, { tag: "Rejected", message: rejected.message, attempts: 3, smtpCode: 550 })
    }).pipe(withSettings({ sendAttempts: 3 }), Effect.provide(inMemoryLayer)))

  it.effect("a poison event in the middle of a batch leaves the others delivered", () =>
    Effect.gen(function*() {
      const good = (n: number) => ({ ...confirmNewEmail, to_emails: [`user${n}@zulip.example`] })
      const deliveries = yield* publishAndTake([
        good(1),
        "{not json",
        good(2),
        { ...confirmNewEmail, unexpected: true },
        JSON.stringify([1, 2]),
        { ...confirmNewEmail, to_user_ids: [10] },
        good(3),
        { ...confirmNewEmail, realm_id: 999 },
        { template_prefix: "zerver/emails/confirm_new_email", to_user_ids: [10, 12345] },
        { template_prefix: "zerver/emails/nonexistent", to_emails: ["x@zulip.example"] },
        good(4)
      ])
      const settlements = yield* consumeBatch(deliveries)
      assert.deepStrictEqual(settlements.map((s) => s.outcome), [
        "sent", "failed", "sent", "failed", "failed", "failed", "sent", "failed", "failed", "failed", "sent"
      ])
      const sent = yield* (yield* InMemorySmtp).sent
      assert.deepStrictEqual(sent.map((m) => m.to[0]), [1, 2, 3, 4].map((n) => `user${n}@zulip.example`))
      const records = yield* (yield* InMemoryFailures).records
      assert.deepStrictEqual(records.map((r) => r.reason.tag), [
        "InvalidEvent", "InvalidEvent", "InvalidEvent", "InvalidEvent", "RealmNotFound", "UserNotFound", "TemplateError"
      ])
      assert.strictEqual(records[0]!.event, "{not json", "a body that is not JSON is kept as its raw text")
      assert.include(records[1]!.reason.message, "unexpected: unknown key")
      assert.include(records[3]!.reason.message, "both are")
      assert.include(records[5]!.reason.message, "12345")
      assert.strictEqual((yield* (yield* InMemoryQueue).acked).length, 11, "every delivery settled")
    }).pipe(Effect.provide(inMemoryLayer)))

  it.effect("a body over MAX_EVENT_BYTES is refused with its size, without being parsed or sent", () =>
    Effect.gen(function*() {
      const big = { ...confirmNewEmail, context: { filler: "x".repeat(2_000) } }
      const deliveries = yield* publishAndTake([big, confirmNewEmail])
      const settlements = yield* consumeBatch(deliveries)
      assert.deepStrictEqual(settlements.map((s) => s.outcome), ["failed", "sent"])
      const [record] = yield* (yield* InMemoryFailures).records
      assert.strictEqual(record!.reason.tag, "InvalidEvent")
      assert.match(record!.reason.message, /the body is \d+ bytes, over MAX_EVENT_BYTES \(1000\)/)
      assert.strictEqual(record!.event, JSON.stringify(big), "recorded as its text, which the store cuts to MAX_EVENT_BYTES")
      assert.strictEqual((yield* (yield* InMemorySmtp).sent).length, 1)
    }).pipe(withSettings({ maxEventBytes: 1000 }), Effect.provide(inMemoryLayer)))

  it.effect("a body nested deeper than MAX_EVENT_DEPTH is refused right after parsing, naming its depth, and kept as its text", () =>
    Effect.gen(function*() {
      // 5,000 levels in the context (10 KB), and a top-level array 100,000 levels deep (200 KB): both used to die
      // in the Message-ID hash or the failure record
      const deepContext = JSON.stringify({ ...confirmNewEmail, context: { a: "PLACEHOLDER" } })
        .replace("\"PLACEHOLDER\"", "[".repeat(5_000) + "]".repeat(5_000))
      const deepArray = "[".repeat(100_000) + "]".repeat(100_000)
      // the event, its context and 62 arrays: 64 levels, the limit itself
      const atTheLimit = { ...confirmNewEmail, context: { a: JSON.parse("[".repeat(62) + "]".repeat(62)) as unknown } }
      const deliveries = yield* publishAndTake([deepContext, confirmNewEmail, deepArray, atTheLimit])
      const settlements = yield* consumeBatch(deliveries)
      assert.deepStrictEqual(settlements.map((s) => s.outcome), ["failed", "sent", "failed", "sent"])
      const records = yield* (yield* InMemoryFailures).records
      assert.deepStrictEqual(records.map((r) => [r.reason.tag, r.reason.message]), [
        ["InvalidEvent", "invalid email event: the body nests 5002 levels deep, over MAX_EVENT_DEPTH (64)"],
        ["InvalidEvent", "invalid email event: the body nests 100000 levels deep, over MAX_EVENT_DEPTH (64)"]
      ])
      assert.deepStrictEqual(records.map((r) => r.event), [deepContext, deepArray], "recorded as the raw text")
      assert.strictEqual((yield* (yield* InMemoryQueue).acked).length, 4)
    }).pipe(Effect.provide(inMemoryLayer)))

  it.effect("at MAX_EVENT_DEPTH's ceiling (1,000) every stage still walks the event: Message-ID hash, requeue, failure record", () =>
    Effect.gen(function*() {
      // the event, its context and 998 arrays
      const deepest = { ...confirmNewEmail, context: { a: JSON.parse("[".repeat(998) + "]".repeat(998)) as unknown } }
      yield* (yield* InMemorySmtp).failNext(1, notDelivered)
      yield* (yield* InMemorySmtp).failNext(1, rejected)
      yield* (yield* InMemoryQueue).publish(deepest)
      yield* runUntilSettled
      assert.deepStrictEqual((yield* (yield* InMemoryQueue).requeued).map((r) => r.event), [{ ...deepest, failed_tries: 1 }])
      const records = yield* (yield* InMemoryFailures).records
      assert.deepStrictEqual(records.map((r) => [r.reason.tag, r.event]), [["Rejected", { ...deepest, failed_tries: 1 }]])
    }).pipe(withSettings({ maxEventDepth: 1000, sendAttempts: 1 }), Effect.provide(inMemoryLayer)))

  it.effect("log lines about a redelivered event say so: it may have been sent before", () => {
    const logs: Array<{ readonly message: string; readonly annotations: Record<string, unknown> }> = []
    const keepLines = Logger.layer([Logger.make(({ fiber, message }) => {
      logs.push({ message: String(Array.isArray(message) ? message[0] : message), annotations: fiber.getRef(References.CurrentLogAnnotations) })
    })])
    return Effect.gen(function*() {
      const [first] = yield* publishAndTake([confirmNewEmail])
      yield* first!.release
      const consumer = yield* QueueConsumer
      const again = yield* consumer.take
      assert.isTrue(again.redelivered)
      yield* consumeBatch([again])
      const sent = logs.filter((line) => line.message.startsWith("Sent "))
      assert.strictEqual(sent.length, 1)
      assert.strictEqual(sent[0]!.annotations["redelivered"], true)
      const [fresh] = yield* publishAndTake([{ ...confirmNewEmail, to_emails: ["other@zulip.example"] }])
      yield* consumeBatch([fresh!])
      const freshLine = logs.filter((line) => line.message.startsWith("Sent ")).at(-1)!
      assert.notProperty(freshLine.annotations, "redelivered")
    }).pipe(Effect.provide(Layer.mergeAll(inMemoryLayer, keepLines)))
  })

  it.effect("resolves to_user_ids (and legacy to_user_id) through the realm repository", () =>
    Effect.gen(function*() {
      const deliveries = yield* publishAndTake([
        { template_prefix: "zerver/emails/password_reset", to_user_ids: [hamlet.id, othello.id] },
        { template_prefix: "zerver/emails/password_reset", to_user_id: othello.id, realm_id: 2 }
      ])
      yield* consumeBatch(deliveries)
      const sent = yield* (yield* InMemorySmtp).sent
      assert.deepStrictEqual(sent.map((m) => m.envelope.to), [[hamlet.deliveryEmail, othello.deliveryEmail], [othello.deliveryEmail]])
      assert.deepStrictEqual(sent.map((m) => m.realm), ["zulip", "zulip"], "the users' realm is used when realm_id is absent")
    }).pipe(Effect.provide(inMemoryLayer)))

  it.effect("an SMTP outage waits without spending attempts, and nothing is failed or requeued", () =>
    Effect.gen(function*() {
      const smtp = yield* InMemorySmtp
      yield* smtp.failNext(6, new Unavailable({ message: "connection refused", dependency: "smtp" }))
      const deliveries = yield* publishAndTake([confirmNewEmail])
      const fiber = yield* Effect.forkChild(consumeBatch(deliveries))
      yield* TestClock.adjust("10 minutes")
      const [settlement] = yield* Fiber.join(fiber)
      assert.strictEqual(settlement!.outcome, "sent")
      assert.strictEqual((yield* smtp.attemptTimes).length, 7)
      assert.deepStrictEqual(yield* (yield* InMemoryFailures).records, [])
      assert.deepStrictEqual(yield* (yield* InMemoryQueue).requeued, [])
    }).pipe(withSettings({ sendAttempts: 1 }), Effect.provide(inMemoryLayer)))

  it.effect("a database outage waits too, then delivers", () =>
    Effect.gen(function*() {
      const realms = yield* InMemoryRealms
      yield* realms.failNextLookups(5)
      const deliveries = yield* publishAndTake([{ ...confirmNewEmail, realm_id: 2 }])
      const fiber = yield* Effect.forkChild(consumeBatch(deliveries))
      yield* TestClock.adjust("10 minutes")
      const [settlement] = yield* Fiber.join(fiber)
      assert.strictEqual(settlement!.outcome, "sent")
      assert.strictEqual(yield* realms.lookups, 6)
      assert.deepStrictEqual(yield* (yield* InMemoryFailures).records, [])
    }).pipe(withSettings({ sendAttempts: 1 }), Effect.provide(inMemoryLayer)))

  it.effect("MAX_CONSUME_SECONDS bounds a stuck send: it becomes our TimeoutError and is requeued", () =>
    Effect.gen(function*() {
      const deliveries = yield* publishAndTake([confirmNewEmail])
      const fiber = yield* Effect.forkChild(consumeBatch(deliveries))
      yield* TestClock.adjust("31 seconds")
      const [settlement] = yield* Fiber.join(fiber)
      assert.strictEqual(settlement!.outcome, "requeued")
    }).pipe(
      withSettings({ sendAttempts: 1 }),
      Effect.provide(Layer.succeed(SmtpConnection, SmtpConnection.of({ send: () => Effect.never, healthCheck: Effect.void, close: Effect.void }))),
      Effect.provide(inMemoryLayer)
    ))

  const sending = Deferred.makeUnsafe<void>()
  const release = Deferred.makeUnsafe<void>()
  it.effect("an event counts as in flight (consumed, not settled) until it is settled, however it ends", () =>
    Effect.gen(function*() {
      const inFlight = Effect.gen(function*() {
        const consumed = yield* Metric.value(Metrics.eventsConsumed)
        const settled = yield* Metric.value(Metrics.eventsSettled)
        return consumed.count - settled.count
      })
      const before = yield* inFlight
      const deliveries = yield* publishAndTake([confirmNewEmail, "{not json"])
      const fiber = yield* Effect.forkChild(consumeBatch(deliveries))
      yield* Deferred.await(sending)
      // the malformed one is settled at once; the other waits for its send
      assert.strictEqual((yield* inFlight) - before, 1)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(fiber)
      assert.strictEqual((yield* inFlight) - before, 0)
    }).pipe(
      Effect.provide(Layer.succeed(SmtpConnection, SmtpConnection.of({
        send: (message) =>
          Deferred.succeed(sending, undefined).pipe(
            Effect.andThen(Deferred.await(release)),
            Effect.as({ accepted: message.envelope.to, rejected: [], response: "250" })
          ),
        healthCheck: Effect.void,
        close: Effect.void
      }))),
      Effect.provide(inMemoryLayer)
    ))

  it.effect("the deadline error is the project's TimeoutError with the stage", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Effect.flip(Effect.never.pipe(withAttemptDeadline(Duration.seconds(5)))))
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(fiber)
      assert.instanceOf(error, TimeoutError)
      assert.strictEqual(error.stage, "attempt")
    }))

  it.effect("a partly accepted message: a copy for the 4xx recipients is requeued, the 5xx ones recorded, nobody sent twice", () =>
    Effect.gen(function*() {
      const smtp = yield* InMemorySmtp
      const event = {
        ...confirmNewEmail,
        to_emails: ["a@zulip.example", "B <b@zulip.example>", "c@zulip.example", "d@zulip.example", "e@zulip.example"]
      }
      const deliveries = yield* publishAndTake([event])
      const [settlement] = yield* consumeBatch(deliveries)
      assert.strictEqual(settlement!.outcome, "sent")
      const [sent] = yield* smtp.sent
      const original = sent!.messageId
      const [left, right] = original.slice(1, -1).split("@") as [string, string]

      const [record, ...others] = yield* (yield* InMemoryFailures).records
      assert.deepStrictEqual(others, [])
      assert.strictEqual(record!.reason.tag, "Rejected")
      assert.strictEqual(record!.reason.smtpCode, 550)
      assert.strictEqual(record!.reason.message, "recipients refused: b@zulip.example (550 550 User unknown)")
      assert.deepStrictEqual(record!.event, {
        ...confirmNewEmail,
        to_emails: ["B <b@zulip.example>"],
        message_id: `<${left}.rcpt-${sha12("b@zulip.example")}@${right}>`
      }, "a copy for the refused recipient alone, so a replay sends only to them")

      const [requeued, ...more] = yield* (yield* InMemoryQueue).requeued
      assert.deepStrictEqual(more, [])
      assert.deepStrictEqual(requeued!.event, {
        ...confirmNewEmail,
        to_emails: ["c@zulip.example", "d@zulip.example"],
        message_id: `<${left}.rcpt-${sha12("c@zulip.example\nd@zulip.example")}@${right}>`,
        failed_tries: 1
      })
      assert.strictEqual(requeued!.delayMillis, 30_000)
      assert.deepStrictEqual(yield* (yield* InMemoryQueue).acked, [JSON.stringify(event)], "acked once, by the requeue")

      // the copy comes back after REQUEUE_DELAY and goes to the deferred recipients only
      yield* TestClock.adjust("30 seconds")
      const [copy] = yield* (yield* QueueConsumer).take.pipe(Effect.map((delivery) => [delivery]))
      yield* consumeBatch([copy!])
      const resent = (yield* smtp.sent)[1]!
      assert.deepStrictEqual(resent.envelope.to, ["c@zulip.example", "d@zulip.example"])
      assert.strictEqual(resent.messageId, (requeued!.event as { message_id: string }).message_id)
    }).pipe(
      Effect.provide(Layer.effect(SmtpConnection, Effect.gen(function*() {
        const smtp = yield* InMemorySmtp
        const memory = yield* SmtpConnection
        // the first message: a accepted, b refused for good, c and d deferred, e accepted; then all accepted
        return SmtpConnection.of({
          ...memory,
          send: (message) =>
            Effect.flatMap(smtp.sent, (before) =>
              Effect.map(memory.send(message), (report) =>
                before.length > 0 ? report : {
                  accepted: ["a@zulip.example", "e@zulip.example"],
                  rejected: [
                    { address: "b@zulip.example", smtpCode: 550, response: "550 User unknown" },
                    { address: "c@zulip.example", smtpCode: 452, response: "452 Too many recipients" },
                    { address: "d@zulip.example", smtpCode: 451, response: "451 Try later" }
                  ],
                  response: "250 OK"
                }))
        })
      }))),
      Effect.provide(inMemoryLayer)
    ))

  it.effect("an event that named users: the copy for a refused user names that user, so realm and language stay", () =>
    Effect.gen(function*() {
      const event = { ...confirmNewEmail, to_emails: undefined, to_user_ids: [hamlet.id, othello.id] }
      const deliveries = yield* publishAndTake([event])
      yield* consumeBatch(deliveries)
      const [record] = yield* (yield* InMemoryFailures).records
      const { to_emails, to_user_ids } = record!.event as { to_emails?: unknown; to_user_ids?: unknown }
      assert.deepStrictEqual([to_emails, to_user_ids], [undefined, [othello.id]])
    }).pipe(
      Effect.provide(partlyAccepting([hamlet.deliveryEmail], {
        address: othello.deliveryEmail.toUpperCase(),
        smtpCode: 550,
        response: "550 User unknown"
      })),
      Effect.provide(inMemoryLayer)
    ))

  it.effect("deferred recipients past MAX_REQUEST_RETRIES are recorded as NotDelivered, for them alone", () =>
    Effect.gen(function*() {
      const deliveries = yield* publishAndTake([{ ...confirmNewEmail, to_emails: ["a@zulip.example", "c@zulip.example"], failed_tries: 3 }])
      const [settlement] = yield* consumeBatch(deliveries)
      assert.strictEqual(settlement!.outcome, "sent")
      assert.deepStrictEqual(yield* (yield* InMemoryQueue).requeued, [])
      const [record] = yield* (yield* InMemoryFailures).records
      assert.strictEqual(record!.reason.tag, "NotDelivered")
      assert.strictEqual(record!.reason.smtpCode, 452)
      assert.deepStrictEqual((record!.event as { to_emails: unknown }).to_emails, ["c@zulip.example"])
      assert.strictEqual((record!.event as { failed_tries: unknown }).failed_tries, 3)
      assert.strictEqual((yield* (yield* InMemoryQueue).acked).length, 1)
    }).pipe(
      Effect.provide(partlyAccepting(["a@zulip.example"], {
        address: "c@zulip.example",
        smtpCode: 452,
        response: "452 Too many recipients"
      })),
      Effect.provide(inMemoryLayer)
    ))

  it.effect("when the requeue cannot be published the delivery is handed back to the broker, not left unacked", () =>
    Effect.gen(function*() {
      yield* (yield* InMemorySmtp).failNext(1, notDelivered)
      const deliveries = yield* publishAndTake([confirmNewEmail])
      const released: Array<string> = []
      const [settlement] = yield* consumeBatch(deliveries.map((d) => ({
        ...d,
        requeue: () => Effect.fail(new QueueError({ message: "channel closed", operation: "publish" })),
        release: Effect.sync(() => void released.push(d.body))
      })))
      assert.strictEqual(settlement!.outcome, "released")
      assert.deepStrictEqual(released, [JSON.stringify(confirmNewEmail)])
      assert.deepStrictEqual(yield* (yield* InMemoryQueue).acked, [])
    }).pipe(withSettings({ sendAttempts: 1 }), Effect.provide(inMemoryLayer)))

  it.effect("a defect in a layer is recorded as a failure, not lost", () =>
    Effect.gen(function*() {
      const deliveries = yield* publishAndTake([confirmNewEmail])
      const [settlement] = yield* consumeBatch(deliveries)
      assert.strictEqual(settlement!.outcome, "failed")
      const [record] = yield* (yield* InMemoryFailures).records
      assert.strictEqual(record!.reason.tag, "Defect")
      assert.include(record!.reason.message, "boom")
      assert.deepStrictEqual(record!.event, confirmNewEmail)
    }).pipe(
      Effect.provide(Layer.succeed(SmtpConnection, SmtpConnection.of({ send: () => Effect.die(new Error("boom")), healthCheck: Effect.void, close: Effect.void }))),
      Effect.provide(inMemoryLayer)
    ))

  it.effect("when a failure cannot be recorded yet, the delivery waits unacked and the record is retried", () =>
    Effect.gen(function*() {
      let calls = 0
      const flakyStore = Layer.succeed(FailureStore, FailureStore.of({
        record: () =>
          Effect.suspend(() => ++calls <= 3 ? Effect.fail(new StoreError({ message: "disk full", path: "/var/queue_error" })) : Effect.void)
      }))
      const deliveries = yield* publishAndTake(["{broken"])
      const released: Array<string> = []
      const fiber = yield* Effect.forkChild(consumeBatch(deliveries.map((d) => ({ ...d, release: Effect.sync(() => void released.push(d.body)) }))).pipe(
        Effect.provide(flakyStore)
      ))
      const retrying = Effect.map(Metric.value(Metrics.deliveriesRetryingFailureStore), (gauge) => gauge.value)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* (yield* InMemoryQueue).acked, [], "not acked while the record is not written")
      assert.strictEqual(yield* retrying, 1, "the stuck slot is counted once, whatever the retries")
      for (let second = 0; second < 60; second++) yield* TestClock.adjust("1 second")
      const [settlement] = yield* Fiber.join(fiber)
      assert.strictEqual(yield* retrying, 0)
      assert.strictEqual(settlement!.outcome, "failed")
      assert.strictEqual(calls, 4)
      assert.deepStrictEqual(released, [], "never handed back in a loop")
      assert.deepStrictEqual(yield* (yield* InMemoryQueue).acked, ["{broken"])
    }).pipe(Effect.provide(inMemoryLayer)))
})

describe("remove_suppressed_destination", () => {
  it.effect("the envelope's recipients leave the suppression list after the build, before the first send, once", () => {
    const removals: Array<{ readonly addresses: ReadonlyArray<string>; readonly sendsBefore: number }> = []
    const recordingList = Layer.effect(SuppressionList, Effect.gen(function*() {
      const smtp = yield* InMemorySmtp
      return SuppressionList.of({
        remove: (addresses) => Effect.map(smtp.attemptTimes, (times) => void removals.push({ addresses, sendsBefore: times.length }))
      })
    }))
    return Effect.gen(function*() {
      yield* (yield* InMemorySmtp).failNext(2, connectionLost)
      const deliveries = yield* publishAndTake([
        { template_prefix: "zerver/emails/password_reset", to_user_ids: [hamlet.id, othello.id], remove_suppressed_destination: true }
      ])
      const fiber = yield* Effect.forkChild(consumeBatch(deliveries))
      yield* TestClock.adjust("1 minute")
      const [settlement] = yield* Fiber.join(fiber)
      assert.strictEqual(settlement!.outcome, "sent")
      assert.strictEqual((yield* (yield* InMemorySmtp).attemptTimes).length, 3, "two in-process retries")
      assert.deepStrictEqual(removals, [{ addresses: [hamlet.deliveryEmail, othello.deliveryEmail], sendsBefore: 0 }])
    }).pipe(Effect.provide(recordingList), Effect.provide(inMemoryLayer))
  })

  it.effect("each consumption of a requeued event removes again, since its email is built again", () =>
    Effect.gen(function*() {
      yield* (yield* InMemorySmtp).failNext(1, notDelivered)
      yield* (yield* InMemoryQueue).publish({ ...confirmNewEmail, remove_suppressed_destination: true })
      yield* runUntilSettled
      assert.strictEqual((yield* (yield* InMemoryQueue).requeued).length, 1)
      assert.strictEqual((yield* (yield* InMemorySmtp).sent).length, 1)
      assert.deepStrictEqual(yield* (yield* InMemorySuppressionList).calls, [["hamlet@zulip.example"], ["hamlet@zulip.example"]])
    }).pipe(withSettings({ sendAttempts: 1 }), Effect.provide(inMemoryLayer)))

  it.effect("nothing is removed when the event does not ask (false, null or unset), nor when the email cannot be built", () =>
    Effect.gen(function*() {
      const deliveries = yield* publishAndTake([
        { ...confirmNewEmail, remove_suppressed_destination: false },
        { ...confirmNewEmail, remove_suppressed_destination: null },
        confirmNewEmail,
        { template_prefix: "zerver/emails/no_such_template", to_emails: ["hamlet@zulip.example"], remove_suppressed_destination: true }
      ])
      const settlements = yield* consumeBatch(deliveries)
      assert.deepStrictEqual(settlements.map((settlement) => settlement.outcome), ["sent", "sent", "sent", "failed"])
      assert.deepStrictEqual(yield* (yield* InMemorySuppressionList).calls, [])
    }).pipe(Effect.provide(inMemoryLayer)))
})
