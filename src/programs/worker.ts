/**
 * The worker: deliveries are settled as they arrive, with bounded concurrency, rather than batch by batch: a slow
 * or retrying email never holds back the ones behind it. Settled events are grouped in batches of `BATCH_SIZE` or
 * `BATCH_TIMEOUT` for the stats file, with Zulip's update rules.
 */
import { Effect, Stream } from "effect"
import { QueueConsumer } from "../services/QueueConsumer.ts"
import { WorkerSettings } from "../services/WorkerSettings.ts"
import { settleDelivery, type Settlement } from "./consumeBatch.ts"
import { type ConsumedBatch, makeQueueStatistics } from "./queueStatistics.ts"

/**
 * Seconds the batch occupied the worker: from its first start (or the previous batch's end, when they overlap) to
 * its last finish, so `events × average` estimates the time to clear a backlog as monitoring expects.
 */
const batchOf = (settlements: ReadonlyArray<Settlement>, previousEndMillis: number, batchSize: number): ConsumedBatch => {
  const start = Math.max(previousEndMillis, Math.min(...settlements.map((s) => s.startedAtMillis)))
  const end = Math.max(...settlements.map((s) => s.finishedAtMillis))
  return { events: settlements.length, seconds: Math.max(0, end - start) / 1000, drained: settlements.length < batchSize }
}

/** Consume the queue until interrupted (SIGTERM), then stop taking deliveries; unsettled ones return to the broker. */
export const runWorker = Effect.gen(function*() {
  const consumer = yield* QueueConsumer
  const settings = yield* WorkerSettings
  const statistics = yield* makeQueueStatistics
  yield* statistics.initialize
  let previousEndMillis = 0
  yield* consumer.deliveries.pipe(
    Stream.mapEffect(settleDelivery, { concurrency: settings.concurrency, unordered: true }),
    Stream.groupedWithin(settings.batchSize, settings.batchTimeout),
    Stream.runForEach((settlements) => {
      const batch = batchOf(settlements, previousEndMillis, settings.batchSize)
      previousEndMillis = Math.max(...settlements.map((s) => s.finishedAtMillis))
      return statistics.recordBatch(batch)
    })
  )
}).pipe(Effect.withSpan("runWorker"))
