/**
 * The depth of the queue and of its delay queues, read from the broker when `/metrics` is scraped and kept for a
 * few seconds, so that several scrapers (or a dashboard's refresh) do not each ask the broker.
 *
 * AMQP tells the messages ready in a queue (a passive declare), not the ones held unacknowledged by consumers; only
 * the management plugin's HTTP API knows those for the whole broker. So `state="ready"` is the broker's count, the
 * same from every worker (take the `max` over workers), and `state="unacknowledged"` is what this worker holds
 * (prefetched and being settled; take the `sum` over workers). The delay queues have no consumer: nothing in them
 * is ever unacknowledged.
 */
import { type Duration, Effect, FileSystem, Metric, Option, Result, Scope } from "effect"
import { WorkerSettings } from "../config/WorkerSettings.ts"
import { eventsConsumed, eventsSettled } from "../pipeline/metrics.ts"
import { requeueDelays } from "../pipeline/retryPolicy.ts"
import { QueueConsumer } from "../queue/QueueConsumer.ts"
import { RabbitMqConnection, withScratchChannel } from "../queue/RabbitMqConnection.ts"
import { parseQueueStats } from "../records/queueHealth.ts"
import { delayMillisOf, delayQueueName } from "../queue/RabbitMqConsumer.ts"

/** labelled `queue` and `state` (`ready`, `unacknowledged`) */
export const queueMessages = Metric.gauge("email_senders_queue_messages", {
  description:
    "Messages by queue (the queue and each delay queue) and state: ready (the broker's count, the same from every " +
    "worker) and unacknowledged (held by this worker)"
})

/** labelled `queue` (the queue consumed) */
export const queueClearSeconds = Metric.gauge("email_senders_queue_clear_seconds", {
  description:
    "Expected seconds to clear the ready messages: ready x the recent average consume time of the stats file, as " +
    "Zulip's check_rabbitmq_queue computes it (0 while no average is known)"
})

export interface QueueDepthOptions {
  /** `QUEUE_STATS_DIR/<queue>.stats`, whose recent average consume time gives the time to clear (none: not exported) */
  readonly statsFile?: string | undefined
  /** how long a reading is kept (default 5 s) */
  readonly cacheFor?: Duration.Input | undefined
  /** how long a reading may take before the previous values are kept (default 2 s) */
  readonly timeout?: Duration.Input | undefined
}

/** The queue consumed and the delay queues its requeues wait in (`REQUEUE_DELAY` doubled per try). */
export const watchedQueues = Effect.map(WorkerSettings, (settings): ReadonlyArray<string> => [
  settings.queueName,
  ...new Set(requeueDelays(settings).map(delayMillisOf).filter((millis) => millis > 0).map((millis) =>
    delayQueueName(settings.queueName, millis)
  ))
])

const setGauge = (queue: string, state: "ready" | "unacknowledged", value: number) =>
  Metric.update(Metric.withAttributes(queueMessages, { queue, state }), value)

/**
 * Gives the effect that updates `queueMessages`, for each scrape. The broker is asked on a scratch channel of the
 * worker's own connection, opened on the first scrape; while the broker cannot answer, the last values stay.
 */
export const makeQueueDepth = Effect.fnUntraced(function*(options: QueueDepthOptions = {}) {
  const connection = yield* RabbitMqConnection
  const consumer = yield* Effect.serviceOption(QueueConsumer)
  const queues = yield* watchedQueues
  const fs = yield* FileSystem.FileSystem
  const scope = yield* Effect.scope
  const session = yield* Effect.cached(
    connection.keepSession("queue depth", (context) => Effect.succeed(context.connection)).pipe(Scope.provide(scope))
  )
  const readReady = Effect.gen(function*() {
    const live = yield* Effect.flatten(session)
    return yield* Effect.forEach(queues, (queue) =>
      withScratchChannel(live, `check queue ${queue}`, (channel) => channel.checkQueue(queue)).pipe(
        Effect.map(({ messageCount }) => ({ queue, ready: messageCount })),
        // a delay queue is declared with the first requeue that needs it: until then it holds nothing
        Effect.catch((error) => queue === queues[0] ? Effect.fail(error) : Effect.succeed({ queue, ready: 0 }))
      ))
  }).pipe(
    Effect.timeout(options.timeout ?? "2 seconds"),
    Effect.option
  )
  const cachedReady = yield* Effect.cachedWithTTL(readReady, options.cacheFor ?? "5 seconds")
  /** the stats file's recent average consume time; null while none is known, or the file cannot be read */
  const averageConsumeSeconds = (file: string) =>
    fs.readFileString(file).pipe(
      Effect.map((text) => Result.getOrNull(Result.map(parseQueueStats(text), (stats) => stats.recent_average_consume_time))),
      Effect.orElseSucceed(() => null)
    )
  return Effect.gen(function*() {
    const ready = yield* cachedReady
    if (Option.isSome(ready)) {
      for (const { queue, ready: count } of ready.value) yield* setGauge(queue, "ready", count)
      if (options.statsFile !== undefined) {
        const average = yield* averageConsumeSeconds(options.statsFile)
        const waiting = ready.value[0]!.ready
        yield* Metric.update(Metric.withAttributes(queueClearSeconds, { queue: queues[0]! }), average === null ? 0 : waiting * average)
      }
    }
    const buffered = Option.isSome(consumer) ? yield* consumer.value.buffered : 0
    const inFlight = (yield* Metric.value(eventsConsumed)).count - (yield* Metric.value(eventsSettled)).count
    yield* setGauge(queues[0]!, "unacknowledged", buffered + inFlight)
    for (const queue of queues.slice(1)) yield* setGauge(queue, "unacknowledged", 0)
  })
})
