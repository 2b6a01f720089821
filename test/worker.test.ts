import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { NotDelivered } from "../src/domain/errors.ts"
import { InMemoryQueue } from "../src/queue/InMemoryQueue.ts"
import { InMemorySmtp } from "../src/smtp/InMemorySmtp.ts"
import { InMemoryStats } from "../src/records/InMemoryStatsWriter.ts"
import { makeQueueStatistics } from "../src/pipeline/queueStatistics.ts"
import { runWorker } from "../src/pipeline/worker.ts"
import { defaultWorkerSettings, WorkerSettings } from "../src/config/WorkerSettings.ts"
import { confirmNewEmail, inMemoryLayer } from "./support/inMemory.ts"

describe("runWorker", () => {
  it.effect("delivers what is published and writes Zulip's stats at start and when the queue drains", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_700_000_000_000)
      const queue = yield* InMemoryQueue
      for (let n = 0; n < 5; n++) yield* queue.publish({ ...confirmNewEmail, to_emails: [`u${n}@zulip.example`] })
      const worker = yield* Effect.forkChild(runWorker)
      yield* TestClock.adjust("10 millis")
      const [initial] = yield* (yield* InMemoryStats).writes
      assert.deepStrictEqual(initial, {
        update_time: 1_700_000_000,
        recent_average_consume_time: null,
        queue_last_emptied_timestamp: 1_700_000_000,
        consumed_since_last_emptied: 0
      })
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* (yield* InMemorySmtp).sent).length, 5)
      assert.strictEqual(yield* queue.unsettled, 0)
      const writes = yield* (yield* InMemoryStats).writes
      // start, then for each batch: leaving idle and drained (how many batches depends on scheduling)
      assert.isAtLeast(writes.length, 3)
      const last = writes.at(-1)!
      assert.strictEqual(last.consumed_since_last_emptied, 0)
      assert.isNotNull(last.recent_average_consume_time)
      assert.isAbove(last.queue_last_emptied_timestamp, 1_700_000_000)
      yield* Fiber.interrupt(worker)
    }).pipe(Effect.provide(inMemoryLayer)))

  it.effect("an email still being retried when the accounting runs is accounted once it settles", () =>
    Effect.gen(function*() {
      const queue = yield* InMemoryQueue
      // the in-process retry waits about RETRY_BASE_DELAY (3 s), across several accountings (every 1 s)
      yield* (yield* InMemorySmtp).failNext(1, new NotDelivered({ message: "connection reset", smtpCode: null, response: null }))
      yield* queue.publish(confirmNewEmail)
      const worker = yield* Effect.forkChild(runWorker)
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* (yield* InMemorySmtp).sent).length, 1)
      const last = (yield* (yield* InMemoryStats).writes).at(-1)!
      assert.isNotNull(last.recent_average_consume_time, "the settled email reached the stats")
      assert.isAtLeast(last.recent_average_consume_time!, 2.4)
      yield* Fiber.interrupt(worker)
    }).pipe(
      Effect.provideService(WorkerSettings, { ...defaultWorkerSettings, retryBaseDelay: Duration.seconds(3) }),
      Effect.provide(inMemoryLayer)
    ))
  it.effect("on interruption it stops taking at once, even with deliveries waiting, and lets the emails in flight finish", () =>
    Effect.gen(function*() {
      const queue = yield* InMemoryQueue
      const smtp = yield* InMemorySmtp
      // the two emails in flight wait about RETRY_BASE_DELAY (3 s) for their second attempt
      yield* smtp.failNext(2, new NotDelivered({ message: "connection reset", smtpCode: null, response: null }))
      for (let n = 0; n < 10; n++) yield* queue.publish({ ...confirmNewEmail, to_emails: [`u${n}@zulip.example`] })
      const worker = yield* Effect.forkChild(runWorker)
      yield* TestClock.adjust("10 millis")
      const stopping = yield* Effect.forkChild(Fiber.interrupt(worker))
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(stopping)
      assert.strictEqual((yield* smtp.sent).length, 2, "only the emails in flight were finished")
      assert.strictEqual((yield* queue.acked).length, 2)
      assert.strictEqual(yield* queue.unsettled, 8, "the rest stay with the broker")
      // nothing had settled before the stop; the batch of the two is recorded after them (leaving idle: a write)
      const writes = yield* (yield* InMemoryStats).writes
      assert.strictEqual(writes.length, 2, "the start, then the batch accounted while stopping")
      assert.isAtLeast(writes[1]!.update_time - writes[0]!.update_time, 2.4)
    }).pipe(
      Effect.provideService(WorkerSettings, { ...defaultWorkerSettings, concurrency: 2, retryBaseDelay: Duration.seconds(3) }),
      Effect.provide(inMemoryLayer)
    ))
})

describe("queue statistics", () => {
  it.effect("write on leaving idle, then every 50 batches or 30 s while busy, and when drained", () =>
    Effect.gen(function*() {
      const statistics = yield* makeQueueStatistics
      const writes = (yield* InMemoryStats).writes
      yield* statistics.initialize
      yield* statistics.recordBatch({ events: 100, seconds: 2, drained: false })
      assert.strictEqual((yield* writes).length, 2, "initial + leaving idle")
      for (let n = 0; n < 48; n++) yield* statistics.recordBatch({ events: 100, seconds: 2, drained: false })
      assert.strictEqual((yield* writes).length, 2, "49 busy batches within 30 s: no write")
      yield* statistics.recordBatch({ events: 100, seconds: 2, drained: false })
      assert.strictEqual((yield* writes).length, 3, "the 50th batch writes")
      assert.strictEqual((yield* writes).at(-1)!.consumed_since_last_emptied, 5000)
      assert.strictEqual((yield* writes).at(-1)!.recent_average_consume_time, 0.02)
      yield* TestClock.adjust("31 seconds")
      yield* statistics.recordBatch({ events: 50, seconds: 1, drained: false })
      assert.strictEqual((yield* writes).length, 4, "30 s since the last write")
      yield* statistics.recordBatch({ events: 10, seconds: 1, drained: true })
      const drained = (yield* writes).at(-1)!
      assert.strictEqual((yield* writes).length, 5)
      assert.strictEqual(drained.consumed_since_last_emptied, 0)
      assert.strictEqual(drained.queue_last_emptied_timestamp, drained.update_time)
      // the average covers the last 50 batches only
      const recent = [...Array(48).fill([100, 2]), [50, 1], [10, 1]] as Array<[number, number]>
      const expected = recent.reduce((s, [, t]) => s + t, 0) / recent.reduce((s, [n]) => s + n, 0)
      assert.closeTo(drained.recent_average_consume_time!, expected, 1e-12)
    }).pipe(Effect.provide(InMemoryStats.layer)))
})
