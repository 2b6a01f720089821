/**
 * The worker: `CONCURRENCY` delivery fibers, each taking one delivery, settling it and taking the next, rather than
 * batch by batch: a slow or retrying email holds only its own fiber, never the ones behind it. Settled events are
 * accounted in batches of up to `BATCH_SIZE`, every `BATCH_TIMEOUT`, for the stats file with Zulip's update rules.
 */
import { Array as Arr, Duration, Effect, Fiber, Option } from "effect"
import { QueueConsumer } from "../services/QueueConsumer.ts"
import { WorkerSettings } from "../services/WorkerSettings.ts"
import { settleDelivery, type Settlement } from "./consumeBatch.ts"
import { type ConsumedBatch, makeQueueStatistics } from "./queueStatistics.ts"

/**
 * Seconds the batch occupied the worker: from its first start (or the previous batch's end, when they overlap) to
 * its last finish, so `events × average` estimates the time to clear a backlog as monitoring expects. Also gives
 * that last finish, where the next batch's time starts.
 */
const batchOf = (
  settlements: ReadonlyArray<Settlement>,
  previousEndMillis: number,
  drained: boolean
): { readonly batch: ConsumedBatch; readonly endMillis: number } => {
  let start = Number.POSITIVE_INFINITY
  let end = previousEndMillis
  for (const settlement of settlements) {
    start = Math.min(start, settlement.startedAtMillis)
    end = Math.max(end, settlement.finishedAtMillis)
  }
  start = Math.max(previousEndMillis, start)
  return { batch: { events: settlements.length, seconds: Math.max(0, end - start) / 1000, drained }, endMillis: end }
}

/**
 * Consume the queue until interrupted (SIGTERM). Then stop taking deliveries, let in-flight emails finish for up to
 * `SHUTDOWN_TIMEOUT`, and interrupt the rest: what is not settled stays unacknowledged and the broker redelivers it.
 */
export const runWorker = Effect.uninterruptibleMask((restore) =>
  Effect.gen(function*() {
    const consumer = yield* QueueConsumer
    const settings = yield* WorkerSettings
    const statistics = yield* makeQueueStatistics
    yield* statistics.initialize

    // settlements not yet accounted; the delivery fibers add to it, the accounting fiber takes them
    let settled: Array<Settlement> = []
    let previousEndMillis = 0
    const account = Effect.suspend(() => {
      const batches = Arr.chunksOf(settled, settings.batchSize)
      settled = []
      return Effect.forEach(batches, (settlements, index) =>
        // drained as Zulip means it: after the last batch, nothing received from the broker is left waiting here
        Effect.flatMap(index === batches.length - 1 ? consumer.buffered : Effect.succeed(1), (buffered) => {
          const { batch, endMillis } = batchOf(settlements, previousEndMillis, buffered === 0)
          previousEndMillis = endMillis
          return statistics.recordBatch(batch)
        }), { discard: true })
    })

    let taking = true
    // which delivery fibers are waiting for a delivery (and so may be interrupted at once when draining)
    const waiting: Array<boolean> = []
    const deliveryLoop = (slot: number) =>
      Effect.gen(function*() {
        while (taking) {
          waiting[slot] = true
          const delivery = yield* consumer.take
          waiting[slot] = false
          // settle first: `settled.push(yield* …)` would push into the array the accounting fiber took meanwhile
          const settlement = yield* settleDelivery(delivery)
          settled.push(settlement)
        }
      })
    const deliveryFibers = yield* Effect.forEach(
      Array.from({ length: settings.concurrency }, (_, slot) => slot),
      (slot) => Effect.forkDetach(deliveryLoop(slot))
    )
    const accounting = yield* Effect.forkDetach(Effect.forever(Effect.delay(account, settings.batchTimeout)))

    const stopAll = Effect.andThen(Fiber.interruptAll(deliveryFibers), Fiber.interrupt(accounting))
    const drain = Effect.gen(function*() {
      yield* Effect.logInfo(`Worker disconnecting from queue ${settings.queueName}`)
      taking = false
      yield* Fiber.interruptAll(deliveryFibers.filter((_, slot) => waiting[slot]))
      const finished = yield* Fiber.awaitAll(deliveryFibers).pipe(Effect.timeoutOption(settings.shutdownTimeout))
      if (Option.isNone(finished)) {
        yield* Effect.logWarning(
          `in-flight emails did not finish within ${Duration.format(settings.shutdownTimeout)}; leaving them to the broker`
        )
      }
      yield* stopAll
      yield* account
    })
    yield* Effect.logInfo(`Worker connecting to queue ${settings.queueName}`)
    // interruptible only from here on, so the drain is always in place before a SIGTERM can arrive
    return yield* restore(Fiber.joinAll(deliveryFibers)).pipe(
      Effect.onInterrupt(() => drain),
      // a consumer that fails takes the whole worker down, and none of its fibers may outlive it
      Effect.onError(() => stopAll),
      Effect.asVoid
    )
  })
).pipe(Effect.withSpan("runWorker"))
