/**
 * Zulip's queue statistics (§2.7 of the Zulip reference): written at start, when leaving idle, after a batch that
 * leaves the queue drained, and otherwise every 50 batches or 30 seconds, so `check_rabbitmq_queue` works unchanged.
 */
import { Clock, Effect, Ref } from "effect"
import { type QueueStats, StatsWriter } from "../records/StatsWriter.ts"

const RECENT_BATCHES = 50
const BATCHES_BEFORE_UPDATE = 50
const MILLIS_BEFORE_UPDATE = 30_000

interface StatisticsState {
  readonly recentConsumeTimes: ReadonlyArray<readonly [events: number, seconds: number]>
  readonly queueLastEmptiedMillis: number
  readonly consumedSinceLastEmptied: number
  readonly idle: boolean
  readonly batchesSinceUpdate: number
  readonly lastUpdateMillis: number
}

export interface ConsumedBatch {
  readonly events: number
  readonly seconds: number
  /** nothing was left waiting locally when the batch ended */
  readonly drained: boolean
}

export interface QueueStatistics {
  /** reset the counters and write the file (Zulip's `initialize_statistics`) */
  readonly initialize: Effect.Effect<void>
  readonly recordBatch: (batch: ConsumedBatch) => Effect.Effect<void>
}

const averageConsumeTime = (recent: StatisticsState["recentConsumeTimes"]): number | null => {
  const events = recent.reduce((sum, [n]) => sum + n, 0)
  return events === 0 ? null : recent.reduce((sum, [, s]) => sum + s, 0) / events
}

export const makeQueueStatistics: Effect.Effect<QueueStatistics, never, StatsWriter> = Effect.gen(function*() {
  const writer = yield* StatsWriter
  const freshState = (now: number): StatisticsState => ({
    recentConsumeTimes: [],
    queueLastEmptiedMillis: now,
    consumedSinceLastEmptied: 0,
    idle: true,
    batchesSinceUpdate: 0,
    lastUpdateMillis: now
  })
  const state = yield* Ref.make(freshState(yield* Clock.currentTimeMillis))

  // a stats file that cannot be written must not stop delivery; monitoring will notice the stale file
  const update = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const current = yield* Ref.updateAndGet(state, (s) => ({ ...s, batchesSinceUpdate: 0, lastUpdateMillis: now }))
    const stats: QueueStats = {
      update_time: now / 1000,
      recent_average_consume_time: averageConsumeTime(current.recentConsumeTimes),
      queue_last_emptied_timestamp: current.queueLastEmptiedMillis / 1000,
      consumed_since_last_emptied: current.consumedSinceLastEmptied
    }
    yield* writer.write(stats).pipe(
      Effect.catch((error) => Effect.logWarning(`could not write queue stats: ${error.message}`))
    )
  })

  const initialize = Effect.gen(function*() {
    yield* Ref.set(state, freshState(yield* Clock.currentTimeMillis))
    yield* update
  })

  const recordBatch = Effect.fnUntraced(function*(batch: ConsumedBatch) {
    const wasIdle = (yield* Ref.get(state)).idle
    if (wasIdle) {
      yield* Ref.update(state, (s) => ({ ...s, idle: false }))
      yield* update
    }
    const now = yield* Clock.currentTimeMillis
    const next = yield* Ref.updateAndGet(state, (s) => {
      const recent = [...s.recentConsumeTimes, [batch.events, batch.seconds] as const].slice(-RECENT_BATCHES)
      return batch.drained
        ? { ...s, recentConsumeTimes: recent, queueLastEmptiedMillis: now, consumedSinceLastEmptied: 0, idle: true }
        : {
          ...s,
          recentConsumeTimes: recent,
          consumedSinceLastEmptied: s.consumedSinceLastEmptied + batch.events,
          batchesSinceUpdate: s.batchesSinceUpdate + 1
        }
    })
    if (
      batch.drained || next.batchesSinceUpdate >= BATCHES_BEFORE_UPDATE ||
      now - next.lastUpdateMillis >= MILLIS_BEFORE_UPDATE
    ) {
      yield* update
    }
  })

  return { initialize, recordBatch }
})
