/**
 * The live `QueuePublisher`: publishes events to the `email_senders` queue the way Zulip's producers do (persistent
 * JSON, default exchange, routing key = queue name), on a confirm channel of the shared RabbitMQ connection.
 */
import { randomUUID } from "node:crypto"
import { type Config, Effect, Layer } from "effect"
import type { JsonObject } from "../domain/EmailEvent.ts"
import { QueuePublisher } from "../services/QueuePublisher.ts"
import * as RabbitMq from "./RabbitMqConnection.ts"

export interface PublisherOptions {
  /** default `email_senders` */
  readonly queueName?: string
}

/** A `message_id` fixed at enqueue time keeps the Message-ID header the same across redeliveries and requeues. */
const withMessageId = (event: JsonObject): JsonObject =>
  event.message_id === undefined || event.message_id === null ? { ...event, message_id: randomUUID() } : event

export const make = Effect.fnUntraced(function*(options: PublisherOptions) {
  const queueName = options.queueName ?? RabbitMq.defaultQueueName
  const connection = yield* RabbitMq.RabbitMqConnection
  const confirmChannel = yield* connection.keepSession(
    `publisher to ${queueName}`,
    (context) => RabbitMq.declareQueue(context.connection, queueName).pipe(Effect.andThen(context.confirmChannel))
  )
  return QueuePublisher.of({
    publishEmail: Effect.fn("QueuePublisher.publishEmail")(function*(event: JsonObject) {
      const body = JSON.stringify(withMessageId(event))
      yield* RabbitMq.publishReliably(confirmChannel, (channel) => RabbitMq.publishPersistent(channel, queueName, body))
    })
  })
})

export const layerNoDeps = (options: PublisherOptions): Layer.Layer<QueuePublisher, never, RabbitMq.RabbitMqConnection> =>
  Layer.effect(QueuePublisher, make(options))

export const layer = (options: PublisherOptions & RabbitMq.ConnectionOptions): Layer.Layer<QueuePublisher> =>
  layerNoDeps(options).pipe(Layer.provide(RabbitMq.layer(options)))

/** Reads `AMQP_URL` and `QUEUE_NAME` (default `email_senders`). */
export const layerConfig: Layer.Layer<QueuePublisher, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function*() {
    const queueName = yield* RabbitMq.queueNameConfig
    return layerNoDeps({ queueName })
  })
).pipe(Layer.provide(RabbitMq.layerConfig))
