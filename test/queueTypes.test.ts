/**
 * `AMQP_URL` as a list of nodes, `QUEUE_TYPE` and the delivery limit, against the machine's RabbitMQ (a one-node
 * cluster: quorum queues work there too). The failover across a real three-node cluster is `npm run test:cluster`.
 */
import { assert, describe, it } from "@effect/vitest"
import { beforeAll } from "vitest"
import { Duration, Effect, Redacted, SubscriptionRef } from "effect"
import { execFileSync } from "node:child_process"
import { closedPort } from "./support/fakeSes.ts"
import { amqpNodeUrls, amqpUrlProblem, redactAmqpUrl } from "../src/config/connectionSettings.ts"
import * as RabbitMq from "../src/queue/RabbitMqConnection.ts"
import * as RabbitMqConsumer from "../src/queue/RabbitMqConsumer.ts"
import { QueueConsumer } from "../src/queue/QueueConsumer.ts"
import { makeAdmin, nextDelivery, uniqueName } from "./support/rabbitmq.ts"
import { buildCli, runCli } from "./support/processes.ts"
import { confirmNewEmail, inMemoryLayer } from "./support/inMemory.ts"
import { InMemoryQueue } from "../src/queue/InMemoryQueue.ts"
import { InMemoryFailures } from "../src/records/InMemoryFailureStore.ts"
import { InMemorySmtp } from "../src/smtp/InMemorySmtp.ts"
import { consumeBatch } from "../src/pipeline/settleDelivery.ts"

const broker = "amqp://guest:guest@127.0.0.1:5672"
const quorum: RabbitMq.QueueDeclaration = { type: "quorum", deliveryLimit: 2 }


describe("AMQP_URL as a list of nodes", () => {
  it("splits on commas, blanks around each URL ignored", () => {
    assert.deepStrictEqual(amqpNodeUrls("amqp://a:5672, amqp://b:5672 ,amqps://c"), ["amqp://a:5672", "amqp://b:5672", "amqps://c"])
    assert.deepStrictEqual(amqpNodeUrls(broker), [broker])
  })

  it("names the node that is wrong by its position, never its value", () => {
    assert.isUndefined(amqpUrlProblem(`${broker},amqp://u:p@rabbit2:5672/zulip`))
    const problem = amqpUrlProblem("amqp://u:secret1@rabbit1,http://u:secret2@rabbit2,amqp://rabbit3")
    assert.match(problem!, /^node 2 of 3: expected a URL with the scheme amqp: or amqps: and a host/)
    assert.notInclude(problem!, "secret")
    assert.match(amqpUrlProblem(`${broker},`)!, /^node 2 of 2: empty$/)
  })

  it("is logged with every node's password hidden", () => {
    assert.strictEqual(
      redactAmqpUrl("amqp://u:secret1@rabbit1:5672,amqp://u:secret2@rabbit2:5672"),
      "amqp://u:***@rabbit1:5672,amqp://u:***@rabbit2:5672"
    )
  })

  it.live("connects to the first node that answers, skipping one that is down, and says which", () =>
    Effect.gen(function*() {
      const down = `amqp://guest:guest@127.0.0.1:${yield* closedPort}`
      const connection = yield* RabbitMq.make({ url: Redacted.make(`${down},${broker}`), connectionName: uniqueName("conn") })
      const session = yield* connection.keepSession("probe", (context) => Effect.succeed(context.connection))
      yield* session
      assert.isTrue(yield* SubscriptionRef.get(connection.connected))
      assert.strictEqual(yield* connection.node, "amqp://guest:***@127.0.0.1:5672")
      assert.deepStrictEqual(connection.nodes, [down.replace(":guest@", ":***@"), "amqp://guest:***@127.0.0.1:5672"])
    }).pipe(Effect.scoped))
})

describe("the operator commands' own connection (stats, check)", () => {
  it.live("opens on the first node that answers; when none does, names each node's failure", () =>
    Effect.gen(function*() {
      const down = `amqp://guest:guest@127.0.0.1:${yield* closedPort}`
      const { connection, node } = yield* RabbitMq.connectToFirstNode(Redacted.make(`${down},${broker}`), Duration.seconds(5))
      assert.strictEqual(node, "amqp://guest:***@127.0.0.1:5672")
      yield* RabbitMq.closeQuietly(connection)
      const other = `amqp://guest:guest@127.0.0.1:${yield* closedPort}`
      const failure = yield* Effect.flip(RabbitMq.connectToFirstNode(Redacted.make(`${down},${other}`), Duration.seconds(5)))
      assert.match(failure.message, /^amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+: .*ECONNREFUSED.*; amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+: .*ECONNREFUSED/)
    }))
})

describe("QUEUE_TYPE=quorum", () => {
  it.live("declares the queue, its dead-letter queue and its delay queues as quorum queues a redeclaration accepts", () =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = admin.deleteAfter(uniqueName("quorum"))
      admin.deleteAfter(RabbitMq.deadLetterQueueName(queue))
      const delay = admin.deleteAfter(RabbitMqConsumer.delayQueueName(queue, 500))
      const connection = yield* RabbitMq.make({ url: Redacted.make(broker), connectionName: uniqueName("conn") })
      const declared = yield* connection.keepSession("declare", (context) =>
        Effect.gen(function*() {
          yield* RabbitMq.declareQueue(context.connection, queue, quorum)
          // a second declaration (another worker, a restart) is the same
          yield* RabbitMq.declareQueue(context.connection, queue, quorum)
          return yield* RabbitMqConsumer.declareDelayQueue(context.connection, queue, 500, "quorum")
        }))
      assert.strictEqual(yield* declared, delay)
      const stdout = execFileSync("rabbitmqctl", ["-q", "list_queues", "--no-table-headers", "name", "type", "arguments"], { encoding: "utf8" })
      const rows = new Map(stdout.split("\n").map((line) => line.split("\t")).map(([name = "", ...rest]) => [name, rest.join("\t")]))
      for (const name of [queue, RabbitMq.deadLetterQueueName(queue), delay]) assert.match(rows.get(name)!, /^quorum\t/, name)
      assert.include(rows.get(queue)!, "x-dead-letter-strategy")
      assert.include(rows.get(queue)!, "at-least-once")
      assert.include(rows.get(queue)!, "reject-publish")
      assert.include(rows.get(delay)!, "x-message-ttl")
    }).pipe(Effect.scoped))

  it.live("a message handed back past the delivery limit comes back from <queue>.dead, marked to be recorded", () =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = admin.deleteAfter(uniqueName("poison"))
      admin.deleteAfter(RabbitMq.deadLetterQueueName(queue))
      yield* Effect.gen(function*() {
        const consumer = yield* QueueConsumer
        yield* admin.awaitConsumer(queue)
        yield* admin.publish(queue, "{\"poison\":true}")
        // handed back as a crashed worker's connection would: the broker counts each return
        for (let n = 0; n <= quorum.deliveryLimit; n++) {
          const delivery = yield* nextDelivery(consumer)
          assert.isUndefined(delivery.deadLettered)
          yield* delivery.release
        }
        const dead = yield* nextDelivery(consumer)
        assert.strictEqual(dead.body, "{\"poison\":true}")
        assert.match(dead.deadLettered!, /after 2 deliveries that were never settled \(QUEUE_DELIVERY_LIMIT\)/)
        yield* dead.ack
      }).pipe(
        Effect.provide(RabbitMqConsumer.layer({ queueName: queue, declaration: quorum, url: Redacted.make(broker), connectionName: uniqueName("conn") }))
      )
      assert.strictEqual(yield* admin.messageCount(queue), 0)
      assert.strictEqual(yield* admin.messageCount(RabbitMq.deadLetterQueueName(queue)), 0)
    }).pipe(Effect.scoped))
})

describe("a dead-lettered delivery", () => {
  it.effect("is recorded as DeliveryLimit with the broker's reason and acked, never sent", () =>
    Effect.gen(function*() {
      const queue = yield* InMemoryQueue
      yield* queue.publish(confirmNewEmail)
      const taken = yield* (yield* QueueConsumer).take
      const reason = "the broker dead-lettered it after 20 deliveries that were never settled (QUEUE_DELIVERY_LIMIT)"
      const [settlement] = yield* consumeBatch([{ ...taken, deadLettered: reason }])
      assert.strictEqual(settlement!.outcome, "failed")
      const [record] = yield* (yield* InMemoryFailures).records
      assert.deepStrictEqual(record!.reason, { tag: "DeliveryLimit", message: reason, attempts: 0, smtpCode: null })
      assert.deepStrictEqual(record!.event, confirmNewEmail)
      assert.strictEqual((yield* (yield* InMemorySmtp).sent).length, 0)
      assert.strictEqual((yield* queue.acked).length, 1)
    }).pipe(Effect.provide(inMemoryLayer)))
})

describe("a queue that exists with the other type", () => {
  beforeAll(buildCli, 300_000)

  it.live.each([
    ["classic", "quorum"],
    ["quorum", "classic"]
  ] as const)("exists as %s, QUEUE_TYPE=%s: the consumer fails naming QUEUE_TYPE, with no retry", ([existing, wanted]) =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = admin.deleteAfter(uniqueName("typed"))
      admin.deleteAfter(RabbitMq.deadLetterQueueName(queue))
      const connection = yield* RabbitMq.make({ url: Redacted.make(broker), connectionName: uniqueName("conn") })
      const existingDeclaration = existing === "quorum" ? quorum : RabbitMq.classicQueue
      yield* (yield* connection.keepSession("setup", (context) => RabbitMq.declareQueue(context.connection, queue, existingDeclaration)))
      const failure = yield* Effect.gen(function*() {
        return yield* (yield* QueueConsumer).take
      }).pipe(
        Effect.provide(RabbitMqConsumer.layerNoDeps({
          queueName: queue,
          declaration: wanted === "quorum" ? quorum : RabbitMq.classicQueue
        })),
        Effect.provideService(RabbitMq.RabbitMqConnection, connection),
        Effect.flip,
        Effect.timeout("10 seconds")
      )
      assert.isTrue(RabbitMq.isFatal(failure))
      assert.strictEqual(
        failure.message,
        `queue ${queue} exists as a ${existing} queue, but QUEUE_TYPE=${wanted}: a queue's type cannot be changed; set ` +
          `QUEUE_TYPE=${existing}, or move to a new ${wanted} queue (README, "Moving from a classic to a quorum queue")`
      )
      assert.match((yield* connection.sessionProblem) ?? "", /exists as a/)
    }).pipe(Effect.scoped))

  it.live("the worker stops at start with one line naming QUEUE_TYPE, exit 1", () =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const result = yield* runCli(["worker"], { QUEUE_NAME: queue, QUEUE_TYPE: "quorum", LOG_LEVEL: "Error" })
      assert.strictEqual(result.exitCode, 1)
      assert.include(result.output, `queue ${queue} exists as a classic queue, but QUEUE_TYPE=quorum`)
    }).pipe(Effect.scoped), 120_000)
})

describe("move-queue", () => {
  beforeAll(buildCli, 300_000)

  it.live("moves a classic queue's events, and those its delay queue gives back, into a new quorum queue, each once", () =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      const old = yield* admin.declareQueue()
      const delay = admin.deleteAfter(RabbitMqConsumer.delayQueueName(old, 500))
      const target = admin.deleteAfter(uniqueName("moved"))
      admin.deleteAfter(RabbitMq.deadLetterQueueName(target))
      const bodies = [1, 2, 3].map((n) => JSON.stringify({ subject: `s${n}`, text: "t", to_emails: [`u${n}@example.com`] }))
      for (const body of bodies) yield* admin.publish(old, body)
      // a requeued event, back in the old queue half a second from now
      const connection = yield* RabbitMq.make({ url: Redacted.make(broker), connectionName: uniqueName("conn") })
      yield* (yield* connection.keepSession("delay", (context) => RabbitMqConsumer.declareDelayQueue(context.connection, old, 500, "classic")))
      yield* admin.publish(delay, JSON.stringify({ subject: "requeued", text: "t", to_emails: ["r@example.com"], failed_tries: 1 }))

      const result = yield* runCli(["move-queue", old], {
        QUEUE_NAME: target,
        QUEUE_TYPE: "quorum",
        REQUEUE_DELAY: "500 millis",
        MAX_REQUEST_RETRIES: "1"
      })
      assert.strictEqual(result.exitCode, 0, result.output)
      assert.include(result.stdout, `moved 4 event(s) from ${old} to ${target} (QUEUE_TYPE=quorum)`)
      assert.strictEqual(yield* admin.messageCount(old), 0)
      assert.strictEqual(yield* admin.messageCount(delay), 0)
      const moved = new Set<string>()
      for (let message = yield* admin.get(target); message !== false; message = yield* admin.get(target)) {
        moved.add(message.content.toString("utf8"))
      }
      assert.strictEqual(moved.size, 4)
      for (const body of bodies) assert.isTrue(moved.has(body), body)
    }).pipe(Effect.scoped), 120_000)

  it.live("refuses to move a queue into itself", () =>
    Effect.gen(function*() {
      const result = yield* runCli(["move-queue", "email_senders_same"], { QUEUE_NAME: "email_senders_same" })
      assert.strictEqual(result.exitCode, 1)
      assert.include(result.stderr, "email_senders_same is QUEUE_NAME itself")
    }))
})
