/**
 * The worker: deliveries are settled as they arrive, with bounded concurrency, rather than batch by batch: a slow
 * or retrying email never holds back the ones behind it. Settled events are grouped in batches of `BATCH_SIZE` or
 * `BATCH_TIMEOUT` for the stats file, with Zulip's update rules.
 */
import { Deferred, Duration, Effect, Fiber, Option, Stream } from "effect"
import { QueueConsumer } from "../services/QueueConsumer.ts"
import { WorkerSettings } from "../services/WorkerSettings.ts"
import { settleDelivery, type Settlement } from "./consumeBatch.ts"
import { type ConsumedBatch, makeQueueStatistics } from "./queueStatistics.ts"

/**
 * Seconds the batch occupied the worker: from its first start (or the previous batch's end, when they overlap) to
 * its last finish, so `events × average` estimates the time to clear a backlog as monitoring expects.
 */
const batchOf = (settlements: ReadonlyArray<Settlement>, previousEndMillis: number, drained: boolean): ConsumedBatch => {
  const start = Math.max(previousEndMillis, Math.min(...settlements.map((s) => s.startedAtMillis)))
  const end = Math.max(...settlements.map((s) => s.finishedAtMillis))
  return { events: settlements.length, seconds: Math.max(0, end - start) / 1000, drained }
}

/**
 * Consume the queue until interrupted (SIGTERM). Then stop taking deliveries, let in-flight emails finish for up to
 * `SHUTDOWN_TIMEOUT`, and interrupt the rest: what is not settled stays unacknowledged and the broker redelivers it.
 */
export const runWorker = Effect.uninterruptibleMask((restore) => Effect.gen(function*() {
  const consumer = yield* QueueConsumer
  const settings = yield* WorkerSettings
  const statistics = yield* makeQueueStatistics
  yield* statistics.initialize
  const stopTaking = yield* Deferred.make<void>()
  let previousEndMillis = 0
  const processing = yield* consumer.deliveries.pipe(
    Stream.interruptWhen(Deferred.await(stopTaking)),
    Stream.mapEffect(settleDelivery, { concurrency: settings.concurrency, unordered: true }),
    Stream.groupedWithin(settings.batchSize, settings.batchTimeout),
    Stream.runForEach((settlements) =>
      // drained as Zulip means it: nothing received from the broker is left waiting here
      Effect.flatMap(consumer.buffered, (buffered) => {
        const batch = batchOf(settlements, previousEndMillis, buffered === 0)
        previousEndMillis = Math.max(...settlements.map((s) => s.finishedAtMillis))
        return statistics.recordBatch(batch)
      })
    ),
    Effect.forkDetach
  )
  const drain = Effect.gen(function*() {
    yield* Effect.logInfo(`Worker disconnecting from queue ${settings.queueName}`)
    yield* Deferred.succeed(stopTaking, undefined)
    const finished = yield* Fiber.await(processing).pipe(Effect.timeoutOption(settings.shutdownTimeout))
    if (Option.isNone(finished)) {
      yield* Effect.logWarning(
        `in-flight emails did not finish within ${Duration.format(settings.shutdownTimeout)}; leaving them to the broker`
      )
      yield* Fiber.interrupt(processing)
    }
  })
  yield* Effect.logInfo(`Worker connecting to queue ${settings.queueName}`)
  // interruptible only from here on, so the drain is always in place before a SIGTERM can arrive
  return yield* restore(Fiber.join(processing)).pipe(Effect.onInterrupt(() => drain))
})).pipe(Effect.withSpan("runWorker"))
