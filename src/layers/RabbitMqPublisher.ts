/**
 * The live `QueuePublisher`: publishes events to the `email_senders` queue the way Zulip's producers do (persistent
 * JSON, default exchange, routing key = queue name), on a confirm channel of the shared RabbitMQ connection.
 */
import { type Config, Effect, Layer } from "effect"
import type { JsonObject } from "../domain/EmailEvent.ts"
import { randomMessageId } from "../domain/MessageId.ts"
import { QueuePublisher } from "../services/QueuePublisher.ts"
import * as RabbitMq from "./RabbitMqConnection.ts"
import { MessageIdHostSetting } from "./settingValues.ts"

export interface PublisherOptions {
  /** default `email_senders` */
  readonly queueName?: string
  /** the host in the Message-ID given to an event without one (default `localhost`; `EXTERNAL_HOST` in `layerConfig`) */
  readonly messageIdHost?: string
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
    (context) => RabbitMq.declareQueue(context.connection, queueName).pipe(Effect.andThen(context.confirmChannel))
  )
  return QueuePublisher.of({
    publishEmail: Effect.fn("QueuePublisher.publishEmail")(function*(event: JsonObject) {
      const body = JSON.stringify(withMessageId(event, messageIdHost))
      yield* RabbitMq.publishReliably(confirmChannel, (channel) => RabbitMq.publishPersistent(channel, queueName, body))
    })
  })
})

export const layerNoDeps = (options: PublisherOptions): Layer.Layer<QueuePublisher, never, RabbitMq.RabbitMqConnection> =>
  Layer.effect(QueuePublisher, make(options))

export const layer = (options: PublisherOptions & RabbitMq.ConnectionOptions): Layer.Layer<QueuePublisher> =>
  layerNoDeps(options).pipe(Layer.provide(RabbitMq.layer(options)))

/** Reads `AMQP_URL`, `EXTERNAL_HOST` and, unless `queueName` is given, `QUEUE_NAME` (default `email_senders`). */
export const layerConfig = (queueName?: string): Layer.Layer<QueuePublisher, Config.ConfigError> =>
  Layer.unwrap(
    Effect.gen(function*() {
      return layerNoDeps({
        queueName: queueName ?? (yield* RabbitMq.queueNameConfig),
        messageIdHost: yield* MessageIdHostSetting
      })
    })
  ).pipe(Layer.provide(RabbitMq.layerConfig))
