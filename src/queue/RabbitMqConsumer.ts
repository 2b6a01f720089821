/**
 * The live `QueueConsumer`: consumes the `email_senders` queue with manual acks and a prefetch limit, on the shared
 * RabbitMQ connection. Taking deliveries outlives reconnects; requeues go through per-delay queues that
 * dead-letter back into the main queue, confirmed by the broker before the original is acked.
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib"
import { Config, Duration, Effect, Layer, Queue, type Scope } from "effect"
import type { JsonObject } from "../domain/EmailEvent.ts"
import { QueueError } from "../domain/errors.ts"
import { type Delivery, QueueConsumer } from "./QueueConsumer.ts"
import * as RabbitMq from "./RabbitMqConnection.ts"
import { CountSetting } from "../config/settingValues.ts"

export interface ConsumerOptions {
  /** default `email_senders` */
  readonly queueName?: string
  /** unacknowledged deliveries the broker hands out at once (default 100, like Zulip) */
  readonly prefetch?: number
}

/** One consumer channel's lifetime: its deliveries are settled on it, and only while it is open. */
interface ConsumerSession {
  readonly connection: ChannelModel
  readonly channel: Channel
  /** requeues are published on it */
  readonly confirmChannel: ConfirmChannel
  /** delays whose queue is declared on this connection */
  readonly delayQueues: Set<number>
  open: boolean
}

interface Received {
  readonly delivery: Delivery
  readonly session: ConsumerSession
}

/** A requeue delay in whole milliseconds, as the delay queues are named; 0 goes straight back to the queue. */
export const delayMillisOf = (delay: Duration.Duration): number => Math.max(0, Math.round(Duration.toMillis(delay)))

export const delayQueueName = (queueName: string, delayMillis: number): string => `${queueName}.delay.${delayMillis}`

/**
 * Declare the queue a requeue waits in for `delayMillis` before it dead-letters back into `queueName`; gives its
 * name. One queue per delay: the broker only expires messages at the head of a queue, so TTLs must not be mixed.
 */
export const declareDelayQueue = (connection: ChannelModel, queueName: string, delayMillis: number): Effect.Effect<string, QueueError> => {
  const name = delayQueueName(queueName, delayMillis)
  return RabbitMq.withScratchChannel(connection, `declare queue ${name}`, (channel) =>
    channel.assertQueue(name, {
      durable: true,
      arguments: {
        "x-message-ttl": delayMillis,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queueName
      }
    })).pipe(Effect.as(name))
}

export const make = Effect.fnUntraced(function*(options: ConsumerOptions) {
  const queueName = options.queueName ?? RabbitMq.defaultQueueName
  const prefetch = options.prefetch ?? 100
  const connection = yield* RabbitMq.RabbitMqConnection
  const received = yield* Queue.unbounded<Received>()

  const delayQueue = (session: ConsumerSession, delayMillis: number): Effect.Effect<string, QueueError> =>
    session.delayQueues.has(delayMillis)
      ? Effect.succeed(delayQueueName(queueName, delayMillis))
      : declareDelayQueue(session.connection, queueName, delayMillis).pipe(
        Effect.tap(() => Effect.sync(() => session.delayQueues.add(delayMillis)))
      )

  const deliveryOf = (message: ConsumeMessage, from: ConsumerSession): Delivery => {
    let settled = false
    /** why the delivery cannot be settled any more, if so */
    const unsettleable = (): string | null =>
      settled ? "already settled" : from.open ? null : "its channel closed, so the broker redelivers it"
    const settle = (operation: string, settleOn: (channel: Channel) => void): Effect.Effect<void, QueueError> =>
      Effect.suspend(() => {
        const reason = unsettleable()
        if (reason !== null) return Effect.logWarning(`${operation} skipped: ${reason}`)
        settled = true
        return Effect.try({
          try: () => settleOn(from.channel),
          catch: (error) => new QueueError({ message: `${operation}: ${String(error)}`, operation })
        })
      })
    const ack = settle("ack", (channel) => channel.ack(message))
    const republish = (event: JsonObject, delay: Duration.Duration) => {
      const body = JSON.stringify(event)
      const delayMillis = delayMillisOf(delay)
      return RabbitMq.publishReliably(liveSession, (session) =>
        (delayMillis === 0 ? Effect.succeed(queueName) : delayQueue(session, delayMillis)).pipe(
          Effect.flatMap((target) => RabbitMq.publishPersistent(session.confirmChannel, target, body))
        ))
    }
    // decoded when the delivery is taken, not when it arrives: the deliveries waiting behind the prefetch keep only
    // their bytes (outside the JavaScript heap), so the garbage collector has less to carry along
    let body: string | undefined
    return {
      get body() {
        return body ??= message.content.toString("utf8")
      },
      redelivered: message.fields.redelivered,
      ack,
      release: settle("release", (channel) => channel.nack(message, false, true)),
      requeue: (event, delay) =>
        Effect.suspend(() => {
          const reason = unsettleable()
          return reason === null
            ? republish(event, delay).pipe(Effect.andThen(ack))
            : Effect.logWarning(`requeue skipped: ${reason}`)
        })
    }
  }

  const open = (context: RabbitMq.SessionContext): Effect.Effect<ConsumerSession, QueueError, Scope.Scope> =>
    Effect.gen(function*() {
      yield* RabbitMq.declareQueue(context.connection, queueName)
      const confirmChannel = yield* context.confirmChannel
      const channel = yield* context.channel
      const session: ConsumerSession = {
        connection: context.connection,
        channel,
        confirmChannel,
        delayQueues: new Set(),
        open: true
      }
      channel.on("close", () => {
        session.open = false
      })
      yield* RabbitMq.tryAmqp("prefetch", () => channel.prefetch(prefetch))
      const { consumerTag } = yield* RabbitMq.tryAmqp("consume", () =>
        channel.consume(queueName, (message) => {
          if (message === null) context.end(`the broker cancelled the consumer of ${queueName}`)
          else Queue.offerUnsafe(received, { delivery: deliveryOf(message, session), session })
        }))
      // stop taking deliveries first, then the channels close (unacknowledged ones go back to the broker)
      yield* Effect.addFinalizer(() => RabbitMq.cancelQuietly(channel, consumerTag))
      return session
    })

  const liveSession = yield* connection.keepSession(`consumer of ${queueName}`, open)

  // deliveries from a channel that has closed since are redelivered by the broker on the new one
  const take: Effect.Effect<Delivery> = Effect.flatMap(
    Queue.take(received),
    ({ delivery, session }) => session.open ? Effect.succeed(delivery) : take
  )

  return QueueConsumer.of({ take, buffered: Queue.size(received) })
})

export const layerNoDeps = (options: ConsumerOptions): Layer.Layer<QueueConsumer, never, RabbitMq.RabbitMqConnection> =>
  Layer.effect(QueueConsumer, make(options))

export const layer = (options: ConsumerOptions & RabbitMq.ConnectionOptions): Layer.Layer<QueueConsumer> =>
  layerNoDeps(options).pipe(Layer.provide(RabbitMq.layer(options)))

// 0 would mean "unlimited" to the broker: the whole backlog in memory
export const prefetchConfig: Config.Config<number> = CountSetting("PREFETCH", 1).pipe(Config.withDefault(100))

/** Reads `AMQP_URL`, `QUEUE_NAME` (default `email_senders`) and `PREFETCH` (default 100). */
export const layerConfig: Layer.Layer<QueueConsumer, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function*() {
    const queueName = yield* RabbitMq.queueNameConfig
    return layerNoDeps({ queueName, prefetch: yield* prefetchConfig })
  })
).pipe(Layer.provide(RabbitMq.layerConfig))
