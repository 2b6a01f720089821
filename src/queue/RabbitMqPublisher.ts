/**
 * The live `QueuePublisher`: publishes events to the `email_senders` queue the way Zulip's producers do (persistent
 * JSON, default exchange, routing key = queue name), on a confirm channel of the shared RabbitMQ connection.
 */
import { type Config, Duration, Effect, Layer } from "effect"
import { QueueError } from "../domain/errors.ts"
import type { JsonObject } from "../domain/EmailEvent.ts"
import { randomMessageId } from "../domain/MessageId.ts"
import { QueuePublisher } from "./QueuePublisher.ts"
import * as RabbitMq from "./RabbitMqConnection.ts"
import { declarationConfig } from "./RabbitMqConsumer.ts"
import { CommandTimeoutSetting, MessageIdHostSetting } from "../config/settingValues.ts"

export interface PublisherOptions {
  /** default `email_senders` */
  readonly queueName?: string
  /** the host in the Message-ID given to an event without one (default `localhost`; `EXTERNAL_HOST` in `layerConfig`) */
  readonly messageIdHost?: string
  /** a publish not confirmed within this fails, saying why the broker was not reached (default: it waits) */
  readonly giveUpAfter?: Duration.Input
  /** how the queue is declared (default: classic, as Zulip) */
  readonly declaration?: RabbitMq.QueueDeclaration
}

/** A `message_id` fixed at enqueue time keeps the Message-ID header the same across redeliveries and requeues. */
const withMessageId = (event: JsonObject, host: string): JsonObject =>
  event.message_id === undefined || event.message_id === null ? { ...event, message_id: randomMessageId(host) } : event

export const make = Effect.fnUntraced(function*(options: PublisherOptions) {
  const queueName = options.queueName ?? RabbitMq.defaultQueueName
  const messageIdHost = options.messageIdHost ?? "localhost"
  const connection = yield* RabbitMq.RabbitMqConnection
  const confirmChannel = yield* connection.keepSession(
    `publisher to ${queueName}`,
    (context) =>
      RabbitMq.declareQueue(context.connection, queueName, options.declaration ?? RabbitMq.classicQueue).pipe(
        Effect.andThen(context.confirmChannel)
      )
  )
  const giveUpAfter = options.giveUpAfter === undefined ? undefined : Duration.fromInputUnsafe(options.giveUpAfter)
  const givenUp = (limit: Duration.Duration) =>
    Effect.flatMap(Effect.map(Effect.all([connection.problem, connection.sessionProblem]), ([problem, session]) => problem ?? session), (problem) =>
      Effect.fail(
        new QueueError({
          message: `gave up after ${Duration.format(limit)} (COMMAND_TIMEOUT): ${problem ?? "the broker did not confirm the publish"}`,
          operation: "publish"
        })
      ))
  return QueuePublisher.of({
    publishEmail: Effect.fn("QueuePublisher.publishEmail")(function*(event: JsonObject) {
      const body = JSON.stringify(withMessageId(event, messageIdHost))
      const publish = RabbitMq.publishReliably(confirmChannel, (channel) => RabbitMq.publishPersistent(channel, queueName, body))
      yield* giveUpAfter === undefined
        ? publish
        : Effect.timeoutOrElse(publish, { duration: giveUpAfter, orElse: () => givenUp(giveUpAfter) })
    })
  })
})

export const layerNoDeps = (options: PublisherOptions): Layer.Layer<QueuePublisher, never, RabbitMq.RabbitMqConnection> =>
  Layer.effect(QueuePublisher, make(options))

export const layer = (options: PublisherOptions & RabbitMq.ConnectionOptions): Layer.Layer<QueuePublisher> =>
  layerNoDeps(options).pipe(Layer.provide(RabbitMq.layer(options)))

/**
 * For the operator commands: reads `AMQP_URL`, `EXTERNAL_HOST`, `COMMAND_TIMEOUT`, `QUEUE_TYPE`,
 * `QUEUE_DELIVERY_LIMIT` and, unless `queueName` is given, `QUEUE_NAME` (default `email_senders`).
 */
export const layerConfig = (queueName?: string): Layer.Layer<QueuePublisher, Config.ConfigError> =>
  Layer.unwrap(
    Effect.gen(function*() {
      const commandTimeout = yield* CommandTimeoutSetting
      return layerNoDeps({
        queueName: queueName ?? (yield* RabbitMq.queueNameConfig),
        messageIdHost: yield* MessageIdHostSetting,
        giveUpAfter: commandTimeout,
        declaration: yield* declarationConfig
      }).pipe(Layer.provide(RabbitMq.layerConfigWith({ connectTimeout: commandTimeout })))
    })
  )
