/**
 * Zulip's `check_rabbitmq_queue` verdict for one queue (§7.4 of the Zulip reference), as pure functions of the
 * stats file, the broker's message count and the time, so every branch is testable without a broker or a clock.
 */
import { Result, Schema } from "effect"
import type { QueueStats } from "./StatsWriter.ts"

export type HealthStatus = "OK" | "WARNING" | "CRITICAL" | "UNKNOWN"

export interface QueueHealth {
  readonly status: HealthStatus
  /** one line for the operator, Nagios style: `OK: email_senders: ...` */
  readonly summary: string
  /** Nagios performance data, empty when nothing was measured */
  readonly performanceData: string
}

/** Seconds to clear the backlog above which the queue is WARNING, then CRITICAL. */
export interface ClearThresholds {
  readonly warningSeconds: number
  readonly criticalSeconds: number
}

/** Zulip's `MAX_SECONDS_TO_CLEAR` / `CRITICAL_SECONDS_TO_CLEAR` for its two email queues. */
export const thresholdsFor = (queueName: string): ClearThresholds =>
  queueName === "deferred_email_senders"
    ? { warningSeconds: 3600, criticalSeconds: 4500 }
    : { warningSeconds: 90, criticalSeconds: 300 }

/** Stats not rewritten for this long while more than `STUCK_MESSAGES` wait: the workers are not consuming. */
const STUCK_AFTER_SECONDS = 180
const STUCK_MESSAGES = 10

const QueueStatsFile = Schema.fromJsonString(Schema.Struct({
  update_time: Schema.Finite,
  recent_average_consume_time: Schema.NullOr(Schema.Finite),
  queue_last_emptied_timestamp: Schema.Finite,
  consumed_since_last_emptied: Schema.Int
}))

const decodeStatsFile = Schema.decodeUnknownResult(QueueStatsFile)

/** The `<queue>.stats` file's text as Zulip writes it, or why it cannot be used. */
export const parseQueueStats = (text: string): Result.Result<QueueStats, string> =>
  decodeStatsFile(text).pipe(Result.mapError((error) => `invalid stats file: ${error.message.split("\n")[0]}`))

const round = (seconds: number): number => Math.round(seconds * 10) / 10

export interface QueueHealthInput {
  readonly queueName: string
  readonly stats: QueueStats
  /** messages ready in the broker's queue */
  readonly messageCount: number
  readonly nowSeconds: number
  readonly thresholds: ClearThresholds
}

/** The verdict, branch for branch as `check_rabbitmq_queue.analyze_queue_stats`. */
export const queueHealth = (input: QueueHealthInput): QueueHealth => {
  const { messageCount, queueName, stats, thresholds } = input
  const verdict = (status: HealthStatus, message: string, performanceData: string): QueueHealth => ({
    status,
    summary: `${status}: ${queueName}: ${message}`,
    performanceData
  })
  const sizeData = `messages=${messageCount};;;0`
  const age = round(input.nowSeconds - stats.update_time)
  if (age > STUCK_AFTER_SECONDS && messageCount > STUCK_MESSAGES) {
    return verdict(
      "CRITICAL",
      `queue appears to be stuck, last update ${age} s ago, queue size ${messageCount}`,
      sizeData
    )
  }
  if (stats.recent_average_consume_time === null) {
    // just started: nothing to estimate from; a worker stuck like this trips the rule above eventually
    return verdict("OK", `${messageCount} waiting, no recent consume time yet`, sizeData)
  }
  const secondsToClear = round(messageCount * stats.recent_average_consume_time)
  const clearData = `${sizeData} clear_time=${secondsToClear}s;${thresholds.warningSeconds};${thresholds.criticalSeconds};0`
  if (secondsToClear > thresholds.warningSeconds) {
    return verdict(
      secondsToClear > thresholds.criticalSeconds ? "CRITICAL" : "WARNING",
      `clearing the backlog will take too long: ${secondsToClear} s, size: ${messageCount}`,
      clearData
    )
  }
  return verdict("OK", `${messageCount} waiting, about ${secondsToClear} s to clear`, clearData)
}

/** When there is nothing to judge from: the stats file is missing or unreadable, or the broker cannot be asked. */
export const unknownHealth = (queueName: string, reason: string): QueueHealth => ({
  status: "UNKNOWN",
  summary: `UNKNOWN: ${queueName}: ${reason}`,
  performanceData: ""
})

/** The plugin's output line: summary, then `|` and the performance data when there is some. */
export const renderHealth = (health: QueueHealth): string =>
  health.performanceData === "" ? health.summary : `${health.summary} | ${health.performanceData}`

/** Nagios plugin exit codes. */
export const exitCodeOf = (status: HealthStatus): number =>
  ({ OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 } as const)[status]
