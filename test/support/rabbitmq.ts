/** Helpers for tests against the machine's RabbitMQ, independent of the layers under test. */
import { connect, type GetMessage } from "amqplib"
import { Effect, Redacted, Schedule, type Scope } from "effect"
import { execFile } from "node:child_process"
import { randomUUID } from "node:crypto"
import { promisify } from "node:util"
import type { Delivery, QueueConsumer } from "../../src/queue/QueueConsumer.ts"

const brokerUrl = "amqp://guest:guest@127.0.0.1:5672"

/** Options for a layer under test; the connection name lets a test close exactly its own connection. */
export const connectionOptions = (connectionName: string) => ({ url: Redacted.make(brokerUrl), connectionName })

export const uniqueName = (prefix: string): string => `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 12)}`

/**
 * A plain amqplib channel to prepare and inspect queues. The queues it declares or is told about are deleted when
 * the scope closes, so run the layers under test in an inner scope that ends first.
 */
export const makeAdmin: Effect.Effect<{
  /** a durable queue of a unique name, declared like Zulip's producers do unless `args` are given */
  readonly declareQueue: (args?: Record<string, unknown>) => Effect.Effect<string>
  /** delete this queue (created by the code under test) at the end */
  readonly deleteAfter: (queue: string) => string
  /** publish the way Zulip does: persistent JSON through the default exchange */
  readonly publish: (queue: string, body: string) => Effect.Effect<void>
  readonly messageCount: (queue: string) => Effect.Effect<number>
  /** wait (up to 5 s) until the queue exists and has a consumer */
  readonly awaitConsumer: (queue: string) => Effect.Effect<void>
  readonly deleteQueue: (queue: string) => Effect.Effect<void>
  readonly get: (queue: string) => Effect.Effect<GetMessage | false>
}, never, Scope.Scope> = Effect.gen(function*() {
  const connection = yield* Effect.acquireRelease(
    Effect.promise(() => connect(brokerUrl)),
    (connection) => Effect.promise(() => connection.close())
  )
  const channel = yield* Effect.promise(() => connection.createConfirmChannel())
  const created = new Set<string>()
  yield* Effect.addFinalizer(() =>
    Effect.forEach(created, (queue) => Effect.promise(() => channel.deleteQueue(queue)), { discard: true })
  )
  return {
    declareQueue: (args = {}) => {
      const queue = uniqueName("test")
      created.add(queue)
      return Effect.promise(() => channel.assertQueue(queue, { durable: true, arguments: args })).pipe(Effect.as(queue))
    },
    deleteAfter: (queue) => {
      created.add(queue)
      return queue
    },
    publish: (queue, body) =>
      Effect.promise(async () => {
        channel.sendToQueue(queue, Buffer.from(body), { persistent: true })
        await channel.waitForConfirms()
      }),
    messageCount: (queue) => Effect.promise(() => channel.checkQueue(queue)).pipe(Effect.map((ok) => ok.messageCount)),
    // a check of a missing queue closes its channel, so each check gets a channel of its own
    awaitConsumer: (queue) =>
      Effect.tryPromise(async () => {
        const probe = await connection.createChannel()
        probe.on("error", () => {})
        const { consumerCount } = await probe.checkQueue(queue).finally(() => probe.close().catch(() => {}))
        if (consumerCount === 0) throw new Error(`${queue} has no consumer yet`)
      }).pipe(
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo({ duration: "5 seconds" }))),
        Effect.orDie
      ),
    deleteQueue: (queue) => Effect.promise(() => channel.deleteQueue(queue)).pipe(Effect.asVoid),
    get: (queue) => Effect.promise(() => channel.get(queue, { noAck: true }))
  }
})

/** The consumer's next delivery, or a defect when none arrives within 5 seconds. */
export const nextDelivery = (consumer: QueueConsumer["Service"]): Effect.Effect<Delivery> =>
  consumer.take.pipe(
    Effect.orDie,
    Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die(new Error("no delivery within 5 seconds")) })
  )

/** `rabbitmqctl --quiet <args>` (users, vhosts, connections). */
export const rabbitmqctl = (...args: Array<string>) =>
  Effect.promise(() => promisify(execFile)("rabbitmqctl", ["--quiet", ...args]))

/** Add a broker user with all rights on the default vhost, for tests of logins; give it back to `deleteBrokerUser`. */
export const addBrokerUser = async (password: string): Promise<string> => {
  const user = uniqueName("es_user")
  await promisify(execFile)("rabbitmqctl", ["--quiet", "add_user", user, password])
  await promisify(execFile)("rabbitmqctl", ["--quiet", "set_permissions", "-p", "/", user, ".*", ".*", ".*"])
  return user
}

export const deleteBrokerUser = async (user: string): Promise<void> => {
  await promisify(execFile)("rabbitmqctl", ["--quiet", "delete_user", user])
}

/** A broker user of its own with this password, deleted when the scope closes. */
export const brokerUser = (password: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => addBrokerUser(password)), (user) => Effect.promise(() => deleteBrokerUser(user)))

/**
 * Force-close the broker connections with this name, as `rabbitmqctl close_all_connections` would, but leaving
 * other tests' connections alone.
 */
export const closeConnectionsNamed = (connectionName: string): Effect.Effect<number> =>
  Effect.gen(function*() {
    const { stdout } = yield* rabbitmqctl("list_connections", "--no-table-headers", "pid", "client_properties")
    const pids = stdout.split("\n")
      .filter((line) => line.includes(`{"connection_name","${connectionName}"}`))
      .map((line) => line.split("\t")[0]!)
    yield* Effect.forEach(pids, (pid) => rabbitmqctl("close_connection", pid, "test: forced close"), { discard: true })
    return pids.length
  })
