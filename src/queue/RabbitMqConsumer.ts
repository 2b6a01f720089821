/**
 * The live `QueueConsumer`: consumes the `email_senders` queue with manual acks and a prefetch limit, on the shared
 * RabbitMQ connection. Taking deliveries outlives reconnects (and failovers to another node); requeues go through
 * per-delay queues that dead-letter back into the main queue, confirmed by the broker before the original is acked.
 * With `QUEUE_TYPE=quorum` every queue is a quorum queue, and what the broker dead-letters past the delivery limit
 * (`<queue>.dead`) is consumed too, as deliveries to record rather than send.
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib"
import { Config, Duration, Effect, Layer, Queue, type Scope } from "effect"
import type { JsonObject } from "../domain/EmailEvent.ts"
import { QueueError } from "../domain/errors.ts"
import { type Delivery, QueueConsumer } from "./QueueConsumer.ts"
import * as RabbitMq from "./RabbitMqConnection.ts"
import { CountSetting, QueueDeliveryLimitSetting, QueueTypeSetting } from "../config/settingValues.ts"

export interface ConsumerOptions {
  /** default `email_senders` */
  readonly queueName?: string
  /** unacknowledged deliveries the broker hands out at once (default 100, like Zulip) */
  readonly prefetch?: number
  /** how the queues are declared (default: classic, as Zulip) */
  readonly declaration?: RabbitMq.QueueDeclaration
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
export const declareDelayQueue = (
  connection: ChannelModel,
  queueName: string,
  delayMillis: number,
  type: RabbitMq.QueueType
): Effect.Effect<string, QueueError> => {
  const name = delayQueueName(queueName, delayMillis)
  return RabbitMq.withScratchChannel(connection, `declare queue ${name} (QUEUE_TYPE=${type})`, (channel) =>
    channel.assertQueue(name, {
      durable: true,
      arguments: {
        ...(type === "quorum" ? RabbitMq.quorumArguments : {}),
        "x-message-ttl": delayMillis,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queueName
      }
    })).pipe(Effect.as(name))
}

/** Why the broker dead-lettered a message, from its `x-death` header. */
const deathReason = (message: ConsumeMessage, queueName: string, declaration: RabbitMq.QueueDeclaration): string => {
  const deaths = message.properties.headers?.["x-death"] as ReadonlyArray<{ readonly reason?: unknown; readonly queue?: unknown }> | undefined
  const death = deaths?.find((entry) => entry.queue === queueName) ?? deaths?.[0]
  const reason = typeof death?.reason === "string" ? death.reason : "unknown"
  return reason === "delivery_limit"
    ? `the broker dead-lettered it after ${declaration.deliveryLimit} deliveries that were never settled ` +
      `(QUEUE_DELIVERY_LIMIT): the worker may crash or stall on it`
    : `the broker dead-lettered it (${reason})`
}

export const make = Effect.fnUntraced(function*(options: ConsumerOptions) {
  const queueName = options.queueName ?? RabbitMq.defaultQueueName
  const prefetch = options.prefetch ?? 100
  const declaration = options.declaration ?? RabbitMq.classicQueue
  const connection = yield* RabbitMq.RabbitMqConnection
  // failed when the queue cannot be used at all (it exists with another type): the worker stops with the reason
  const received = yield* Queue.unbounded<Received, QueueError>()

  const delayQueue = (session: ConsumerSession, delayMillis: number): Effect.Effect<string, QueueError> =>
    session.delayQueues.has(delayMillis)
      ? Effect.succeed(delayQueueName(queueName, delayMillis))
      : declareDelayQueue(session.connection, queueName, delayMillis, declaration.type).pipe(
        Effect.tap(() => Effect.sync(() => session.delayQueues.add(delayMillis)))
      )

  const deliveryOf = (message: ConsumeMessage, from: ConsumerSession, deadLettered: boolean): Delivery => {
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
      ...(deadLettered ? { deadLettered: deathReason(message, queueName, declaration) } : {}),
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
      yield* RabbitMq.declareQueue(context.connection, queueName, declaration)
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
      const consume = (queue: string, deadLettered: boolean) =>
        RabbitMq.tryAmqp("consume", () =>
          channel.consume(queue, (message) => {
            if (message === null) context.end(`the broker cancelled the consumer of ${queue}`)
            else Queue.offerUnsafe(received, { delivery: deliveryOf(message, session, deadLettered), session })
          })).pipe(
            // stop taking deliveries first, then the channels close (unacknowledged ones go back to the broker)
            Effect.tap(({ consumerTag }) => Effect.addFinalizer(() => RabbitMq.cancelQuietly(channel, consumerTag)))
          )
      yield* consume(queueName, false)
      if (declaration.type === "quorum") yield* consume(RabbitMq.deadLetterQueueName(queueName), true)
      return session
    })

  const liveSession = yield* connection.keepSession(
    `consumer of ${queueName}`,
    open,
    (error) => Queue.fail(received, error).pipe(Effect.asVoid)
  )

  // deliveries from a channel that has closed since are redelivered by the broker on the new one
  const take: Effect.Effect<Delivery, QueueError> = Effect.flatMap(
    Queue.take(received),
    ({ delivery, session }) => session.open ? Effect.succeed(delivery) : take
  )

  return QueueConsumer.of({ take, buffered: Queue.size(received) })
})

/** `QUEUE_TYPE` (default `classic`) and, for a quorum queue, `QUEUE_DELIVERY_LIMIT` (default 20). */
export const declarationConfig: Config.Config<RabbitMq.QueueDeclaration> = Config.all({
  type: QueueTypeSetting,
  deliveryLimit: QueueDeliveryLimitSetting
})

export const layerNoDeps = (options: ConsumerOptions): Layer.Layer<QueueConsumer, never, RabbitMq.RabbitMqConnection> =>
  Layer.effect(QueueConsumer, make(options))

export const layer = (options: ConsumerOptions & RabbitMq.ConnectionOptions): Layer.Layer<QueueConsumer> =>
  layerNoDeps(options).pipe(Layer.provide(RabbitMq.layer(options)))

// 0 would mean "unlimited" to the broker: the whole backlog in memory
export const prefetchConfig: Config.Config<number> = CountSetting("PREFETCH", 1).pipe(Config.withDefault(100))

/** Reads `AMQP_URL`, `QUEUE_NAME` (default `email_senders`), `PREFETCH` (default 100), `QUEUE_TYPE` and `QUEUE_DELIVERY_LIMIT`. */
export const layerConfig: Layer.Layer<QueueConsumer, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function*() {
    const queueName = yield* RabbitMq.queueNameConfig
    return layerNoDeps({ queueName, prefetch: yield* prefetchConfig, declaration: yield* declarationConfig })
  })
).pipe(Layer.provide(RabbitMq.layerConfig))
