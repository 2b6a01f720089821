import { Clock, Config, Console, Duration, Effect, FileSystem, Redacted, Result } from "effect"
import { Command } from "effect/cli"
import { join } from "node:path"
import { QueueError } from "../domain/errors.ts"
import * as RabbitMqConnection from "../queue/RabbitMqConnection.ts"
import {
  exitCodeOf,
  parseQueueStats,
  type QueueHealth,
  queueHealth,
  renderHealth,
  thresholdsFor,
  unknownHealth
} from "../records/queueHealth.ts"
import { AmqpUrlSetting } from "../config/connectionSettings.ts"
import { CommandTimeoutSetting, StatsDirectorySetting } from "../config/settingValues.ts"
import { commandServices } from "./commandServices.ts"
import { withEnvironment } from "./environmentHelp.ts"
import { describeFailure } from "./reportFailure.ts"

const settingsConfig = Config.all({
  queueName: RabbitMqConnection.queueNameConfig,
  statsDirectory: StatsDirectorySetting,
  commandTimeout: CommandTimeoutSetting,
  amqpUrl: AmqpUrlSetting
})

/**
 * Messages ready in the queue, over a connection of its own to the first node of `AMQP_URL` that answers: a monitoring check must answer promptly, so it does
 * not wait for the broker like the worker's reconnecting connection does, gives up after `COMMAND_TIMEOUT`, and
 * never declares the queue.
 */
const readyMessages = (url: Redacted.Redacted<string>, queue: string, timeout: Duration.Duration) =>
  Effect.acquireUseRelease(
    RabbitMqConnection.connectToFirstNode(url, timeout),
    ({ connection }) =>
      RabbitMqConnection.withScratchChannel(connection, `check queue ${queue}`, (channel) => channel.checkQueue(queue)),
    ({ connection }) => RabbitMqConnection.closeQuietly(connection)
  ).pipe(
    Effect.map(({ messageCount }) => messageCount),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(
          new QueueError({ message: `no answer from the broker within ${Duration.format(timeout)} (COMMAND_TIMEOUT)`, operation: "connect" })
        )
    })
  )

const checkQueue = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const { amqpUrl, commandTimeout, queueName, statsDirectory } = yield* settingsConfig
  const statsPath = join(statsDirectory, `${queueName}.stats`)
  const text = yield* fs.readFileString(statsPath).pipe(Effect.result)
  if (Result.isFailure(text)) return unknownHealth(queueName, `cannot read ${statsPath}: ${text.failure.message}`)
  const stats = parseQueueStats(text.success)
  if (Result.isFailure(stats)) return unknownHealth(queueName, `${statsPath}: ${stats.failure}`)
  const messageCount = yield* readyMessages(amqpUrl, queueName, commandTimeout).pipe(Effect.result)
  if (Result.isFailure(messageCount)) {
    return unknownHealth(queueName, `cannot read the queue depth: ${messageCount.failure.message}`)
  }
  return queueHealth({
    queueName,
    stats: stats.success,
    messageCount: messageCount.success,
    nowSeconds: (yield* Clock.currentTimeMillis) / 1000,
    thresholds: thresholdsFor(queueName)
  })
})

/**
 * Print the line and set the plugin's exit code. The command still succeeds: a WARNING is a finding, not a failure
 * of the check, so nothing else is reported and the runtime lets the process end with this code.
 */
const report = (health: QueueHealth) =>
  Console.log(renderHealth(health)).pipe(
    Effect.andThen(Effect.sync(() => {
      process.exitCode = exitCodeOf(health.status)
    }))
  )

/** Zulip's `check_rabbitmq_queue` for this queue: one Nagios line, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. */
export const statsCommand = Command.make("stats", {}, () =>
  checkQueue.pipe(
    Effect.provide(commandServices("stderr")),
    // Nagios reads exit 3 as UNKNOWN: an invalid setting (`LOG_LEVEL` too) is that, not the 1 (WARNING) other
    // commands exit with
    Effect.catchTag("ConfigError", (error) => Effect.succeed(unknownHealth("email-senders", describeFailure(error)))),
    Effect.flatMap(report)
  )).pipe(
  withEnvironment(
    "Check the queue like Zulip's check_rabbitmq_queue: read QUEUE_STATS_DIR/<queue>.stats and the broker's queue " +
      "depth, print one Nagios line and exit 0 (OK), 1 (WARNING), 2 (CRITICAL) or 3 (UNKNOWN, also for an invalid " +
      "setting)",
    "stats"
  )
)
