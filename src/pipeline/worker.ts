/**
 * The worker: `CONCURRENCY` delivery fibers, each taking one delivery, settling it and taking the next, rather than
 * batch by batch: a slow or retrying email holds only its own fiber, never the ones behind it. Settlements go on a
 * queue and are accounted a group at a time (what settles within `BATCH_TIMEOUT`), in batches of up to `BATCH_SIZE`,
 * for the stats file with Zulip's update rules.
 */
import { Array as Arr, Cause, Deferred, Duration, Effect, Exit, Fiber, FiberSet, Option, Queue, Ref } from "effect"
import { QueueConsumer } from "../queue/QueueConsumer.ts"
import { WorkerSettings } from "../config/WorkerSettings.ts"
import { settleDelivery, type Settlement } from "./settleDelivery.ts"
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
 * The worker's scope owns every fiber it starts, so a consumer that fails takes them all down with it.
 */
export const runWorker = Effect.scoped(Effect.gen(function*() {
  const consumer = yield* QueueConsumer
  const settings = yield* WorkerSettings
  const statistics = yield* makeQueueStatistics
  yield* statistics.initialize

  const deliveryFibers = yield* FiberSet.make<void, Effect.Error<typeof consumer.take>>()
  const settlements = yield* Queue.unbounded<Settlement, Cause.Done>()
  const previousEndMillis = yield* Ref.make(0)
  // up to `BATCH_SIZE` a batch; the last one drained as Zulip means it: nothing received from the broker waits here
  const account = (settled: ReadonlyArray<Settlement>) => {
    const groups = Arr.chunksOf(settled, settings.batchSize)
    return Effect.forEach(groups, (group, index) =>
      Effect.flatMap(index === groups.length - 1 ? consumer.buffered : Effect.succeed(1), (buffered) =>
        Effect.flatMap(Ref.get(previousEndMillis), (previous) => {
          const { batch, endMillis } = batchOf(group, previous, buffered === 0)
          return Effect.andThen(Ref.set(previousEndMillis, endMillis), statistics.recordBatch(batch))
        })), { discard: true })
  }
  // a group opens with the first settlement and takes what settles within `BATCH_TIMEOUT`, or until every delivery
  // has settled: the accounting fiber wakes once a group, where `Stream.groupedWithin` ran its stream steps and a
  // timer for every settlement (bench/FINDINGS.md, "The no-delay regression")
  const allSettled = yield* Deferred.make<void>()
  const groupWindow = Effect.raceFirst(Effect.sleep(settings.batchTimeout), Deferred.await(allSettled))
  const accountNextGroup = Effect.flatMap(Queue.takeAll(settlements), (first) =>
    groupWindow.pipe(
      Effect.andThen(Queue.clear(settlements)),
      Effect.flatMap((rest) => account([...first, ...rest]))
    ))
  // until the queue ends, every settlement accounted
  const accounting = yield* Effect.forkScoped(Effect.forever(accountNextGroup).pipe(Effect.catchIf(Cause.isDone, () => Effect.void)))

  const stopTaking = yield* Deferred.make<void>()
  // the next delivery, or none once the worker stops taking: a fiber waiting for one stops at once, a fiber
  // settling one finishes it first
  const nextDelivery = Effect.raceFirst(
    Effect.map(consumer.take, Option.some),
    Effect.as(Deferred.await(stopTaking), Option.none())
  )
  const deliveryLoop = Effect.gen(function*() {
    // checked before each take too: a take that can be answered at once would otherwise always win the race
    while (!(yield* Deferred.isDone(stopTaking))) {
      const delivery = yield* nextDelivery
      if (Option.isNone(delivery)) return
      yield* Queue.offer(settlements, yield* settleDelivery(delivery.value))
    }
  })

  const drain = Effect.gen(function*() {
    yield* Effect.logInfo(`Worker disconnecting from queue ${settings.queueName}`)
    yield* Deferred.succeed(stopTaking, undefined)
    const finished = yield* FiberSet.awaitEmpty(deliveryFibers).pipe(Effect.timeoutOption(settings.shutdownTimeout))
    if (Option.isNone(finished)) {
      yield* Effect.logWarning(
        `in-flight emails did not finish within ${Duration.format(settings.shutdownTimeout)}; leaving them to the broker`
      )
    }
    yield* FiberSet.clear(deliveryFibers)
    yield* Deferred.succeed(allSettled, undefined)
    yield* Queue.end(settlements)
    yield* Fiber.join(accounting)
  })
  // registered before the delivery fibers start, so a SIGTERM always finds it: it runs before the scope interrupts
  // what is left; a failure instead stops everything at once
  yield* Effect.addFinalizer((exit) => Exit.hasInterrupts(exit) ? Effect.ignore(drain) : Effect.void)

  yield* Effect.logInfo(`Worker connecting to queue ${settings.queueName}`)
  for (let slot = 0; slot < settings.concurrency; slot++) yield* FiberSet.run(deliveryFibers, deliveryLoop)
  return yield* FiberSet.join(deliveryFibers)
})).pipe(Effect.withSpan("runWorker"))
