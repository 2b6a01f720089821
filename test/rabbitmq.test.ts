/** The RabbitMQ consumer and publisher layers against the machine's real broker (127.0.0.1:5672, guest/guest). */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Stream, SubscriptionRef } from "effect"
import { TestClock } from "effect/testing"
import { QueueError } from "../src/domain/errors.ts"
import * as RabbitMq from "../src/queue/RabbitMqConnection.ts"
import * as RabbitMqConsumer from "../src/queue/RabbitMqConsumer.ts"
import * as RabbitMqPublisher from "../src/queue/RabbitMqPublisher.ts"
import { QueueConsumer } from "../src/queue/QueueConsumer.ts"
import { QueuePublisher } from "../src/queue/QueuePublisher.ts"
import {
  closeConnectionsNamed,
  connectionOptions,
  makeAdmin,
  nextDelivery,
  uniqueName
} from "./support/rabbitmq.ts"

const event = (n: number) => ({ template_prefix: "zerver/emails/password_reset", to_emails: [`user${n}@example.com`] })

/** consumer, publisher and connection on one connection, as `main.ts` composes them */
const brokerLayers = (queueName: string, connectionName = uniqueName("conn")) =>
  Layer.mergeAll(
    RabbitMqConsumer.layerNoDeps({ queueName, prefetch: 10 }),
    RabbitMqPublisher.layerNoDeps({ queueName })
  ).pipe(Layer.provideMerge(RabbitMq.layer(connectionOptions(connectionName))))

type Admin = Effect.Success<typeof makeAdmin>

/**
 * Run `body` with a fresh queue, a consumer of it (on a connection of its own) and its deliveries, then check the
 * queue is empty: an unacknowledged delivery would be back on it once the consumer closed.
 */
const withConsumer = <E>(body: (admin: Admin, queue: string, consumer: QueueConsumer["Service"]) => Effect.Effect<void, E>) =>
  Effect.gen(function*() {
    const admin = yield* makeAdmin
    const queue = yield* admin.declareQueue()
    yield* Effect.gen(function*() {
      yield* body(admin, queue, yield* QueueConsumer)
    }).pipe(
      Effect.provide(RabbitMqConsumer.layer({ queueName: queue, prefetch: 10, ...connectionOptions(uniqueName("conn")) }))
    )
    assert.strictEqual(yield* admin.messageCount(queue), 0)
  })

describe("RabbitMqConsumer", () => {
  it.live("consumes a Zulip-published body as is; ack removes it, a second ack is a no-op", () =>
    withConsumer((admin, queue, consumer) =>
      Effect.gen(function*() {
        const body = JSON.stringify(event(1))
        yield* admin.publish(queue, body)
        const delivery = yield* nextDelivery(consumer)
        assert.strictEqual(delivery.body, body)
        assert.isFalse(delivery.redelivered)
        yield* delivery.ack
        yield* delivery.ack
        // the channel survived the second ack: the next message still arrives
        yield* admin.publish(queue, "not json")
        const next = yield* nextDelivery(consumer)
        assert.strictEqual(next.body, "not json")
        yield* next.ack
      })))

  it.live("release hands the delivery back for redelivery", () =>
    withConsumer((admin, queue, consumer) =>
      Effect.gen(function*() {
        const body = JSON.stringify(event(2))
        yield* admin.publish(queue, body)
        const first = yield* nextDelivery(consumer)
        yield* first.release
        const again = yield* nextDelivery(consumer)
        assert.strictEqual(again.body, body)
        assert.isTrue(again.redelivered)
        yield* again.ack
      })))

  it.live("requeue goes through a delay queue, comes back after the delay, and acks the original", () =>
    withConsumer((admin, queue, consumer) =>
      Effect.gen(function*() {
        const delayQueue = admin.deleteAfter(`${queue}.delay.300`)
        yield* admin.publish(queue, JSON.stringify(event(3)))
        const original = yield* nextDelivery(consumer)
        const requeuedAt = Date.now()
        yield* original.requeue({ ...event(3), failed_tries: 1 }, Duration.millis(300))
        assert.strictEqual(yield* admin.messageCount(delayQueue), 1)
        assert.strictEqual(yield* admin.messageCount(queue), 0)
        const back = yield* nextDelivery(consumer)
        assert.isAtLeast(Date.now() - requeuedAt, 280)
        assert.deepStrictEqual(JSON.parse(back.body), { ...event(3), failed_tries: 1 })
        assert.isFalse(back.redelivered)
        yield* back.ack
      })))

  it.live("two delays use two delay queues; a zero delay republishes straight to the queue", () =>
    withConsumer((admin, queue, consumer) =>
      Effect.gen(function*() {
        const short = admin.deleteAfter(`${queue}.delay.200`)
        const long = admin.deleteAfter(`${queue}.delay.400`)
        yield* Effect.forEach([1, 2, 3], (n) => admin.publish(queue, JSON.stringify(event(n))), { discard: true })
        const [one, two, three] = yield* Effect.all([nextDelivery(consumer), nextDelivery(consumer), nextDelivery(consumer)])
        yield* one!.requeue({ ...event(1), failed_tries: 1 }, Duration.millis(400))
        yield* two!.requeue({ ...event(2), failed_tries: 1 }, Duration.millis(200))
        assert.strictEqual(yield* admin.messageCount(long), 1)
        assert.strictEqual(yield* admin.messageCount(short), 1)
        yield* three!.requeue({ ...event(3), failed_tries: 2 }, Duration.zero)
        const order: Array<unknown> = []
        for (let i = 0; i < 3; i++) {
          const back = yield* nextDelivery(consumer)
          order.push(JSON.parse(back.body))
          yield* back.ack
        }
        assert.deepStrictEqual(order, [
          { ...event(3), failed_tries: 2 },
          { ...event(2), failed_tries: 1 },
          { ...event(1), failed_tries: 1 }
        ])
      })))

  it.live("uses a queue that already exists with other arguments instead of failing", () =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue({ "x-max-length": 1 })
      yield* Effect.gen(function*() {
        const consumer = yield* QueueConsumer
        const publisher = yield* QueuePublisher
        const { connected } = yield* RabbitMq.RabbitMqConnection
        yield* publisher.publishEmail({ ...event(4), message_id: "kept@example.com" })
        const delivery = yield* nextDelivery(consumer)
        assert.deepStrictEqual(JSON.parse(delivery.body), { ...event(4), message_id: "kept@example.com" })
        yield* delivery.ack
        assert.isTrue(yield* SubscriptionRef.get(connected))
      }).pipe(Effect.provide(brokerLayers(queue)))
      // still the queue declared first: a publish beyond its length limit drops the oldest message
      yield* Effect.forEach([1, 2], (n) => admin.publish(queue, String(n)), { discard: true })
      assert.strictEqual(yield* admin.messageCount(queue), 1)
    }))

  it.live("survives a forced connection close: the stream goes on and nothing is lost", () =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const connectionName = uniqueName("conn")
      yield* Effect.gen(function*() {
        const { connected } = yield* RabbitMq.RabbitMqConnection
        const publisher = yield* QueuePublisher
        const consumer = yield* QueueConsumer
        yield* admin.publish(queue, "before 1")
        yield* admin.publish(queue, "before 2")
        const unacked = yield* nextDelivery(consumer)
        assert.strictEqual(unacked.body, "before 1")
        const states = yield* SubscriptionRef.changes(connected).pipe(
          Stream.take(3),
          Stream.runCollect,
          Effect.forkChild
        )

        assert.strictEqual(yield* closeConnectionsNamed(connectionName), 1)
        // settling a delivery of the closed channel neither fails nor closes the new one
        yield* unacked.ack
        yield* publisher.publishEmail(event(5))

        const bodies = new Map<string, boolean>()
        while (bodies.size < 3) {
          const delivery = yield* nextDelivery(consumer)
          bodies.set(delivery.body.startsWith("{") ? "after" : delivery.body, delivery.redelivered)
          yield* delivery.ack
        }
        assert.deepStrictEqual(Object.fromEntries(bodies), { "before 1": true, "before 2": true, after: false })
        assert.deepStrictEqual(Array.from(yield* Fiber.join(states)), [true, false, true])
      }).pipe(Effect.provide(brokerLayers(queue, connectionName)))
      assert.strictEqual(yield* admin.messageCount(queue), 0)
    }))

  it.live("when the broker cancels the consumer (queue deleted), declares the queue again and goes on", () =>
    withConsumer((admin, queue, consumer) =>
      Effect.gen(function*() {
        yield* admin.awaitConsumer(queue)
        yield* admin.deleteQueue(queue)
        yield* admin.awaitConsumer(queue)
        yield* admin.publish(queue, "after the deletion")
        const delivery = yield* nextDelivery(consumer)
        assert.strictEqual(delivery.body, "after the deletion")
        yield* delivery.ack
      })))
})

describe("publishReliably", () => {
  const notConfirmed = new QueueError({ message: "publish to q not confirmed: channel closed", operation: "publish" })

  it.effect("publishes again on the next session when the broker did not confirm", () =>
    Effect.gen(function*() {
      const sessions = ["closing", "reopened"]
      const attempts: Array<string> = []
      const fiber = yield* RabbitMq.publishReliably(
        Effect.sync(() => sessions[Math.min(attempts.length, 1)]!),
        (session) => {
          attempts.push(session)
          return session === "closing" ? Effect.fail(notConfirmed) : Effect.void
        }
      ).pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(attempts, ["closing", "reopened"])
    }))

  it.effect("gives up with the QueueError after a bounded number of unconfirmed attempts", () =>
    Effect.gen(function*() {
      let attempts = 0
      const fiber = yield* RabbitMq.publishReliably(Effect.void, () => {
        attempts++
        return Effect.fail(notConfirmed)
      }).pipe(Effect.flip, Effect.forkChild)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* Fiber.join(fiber), notConfirmed)
      assert.strictEqual(attempts, 6)
    }))
})

describe("RabbitMqPublisher", () => {
  it.live("publishes persistent, confirmed JSON with a message_id added when missing", () =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      yield* Effect.gen(function*() {
        const publisher = yield* QueuePublisher
        yield* publisher.publishEmail(event(6))
        yield* publisher.publishEmail({ ...event(7), message_id: "given@example.com" })
      }).pipe(
        Effect.provide(RabbitMqPublisher.layer({ queueName: queue, ...connectionOptions(uniqueName("conn")) }))
      )
      assert.strictEqual(yield* admin.messageCount(queue), 2)
      const first = yield* admin.get(queue)
      const second = yield* admin.get(queue)
      assert.isTrue(first !== false && second !== false)
      if (first === false || second === false) return
      const { message_id, ...rest } = JSON.parse(first.content.toString("utf8"))
      assert.deepStrictEqual(rest, event(6))
      // the worker's own form, on the default host
      assert.match(message_id, /^<[0-9a-f]{32}@localhost>$/)
      assert.strictEqual(first.properties.deliveryMode, 2)
      assert.deepStrictEqual(JSON.parse(second.content.toString("utf8")), { ...event(7), message_id: "given@example.com" })
    }))
})
