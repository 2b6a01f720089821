/**
 * The scenarios' own view of the machine's RabbitMQ, independent of the worker: bulk publishing, queue checks, the
 * worker's queues (the main one and its `<queue>.delay.*` queues), and force-closing one process's connections.
 */
import { connect } from "amqplib"
import { Effect, type Scope } from "effect"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { tcpClientPorts } from "./worker.ts"

const brokerUrl = "amqp://guest:guest@127.0.0.1:5672"
const brokerPort = 5672

const rabbitmqctl = (...args: Array<string>) =>
  Effect.promise(() => promisify(execFile)("rabbitmqctl", ["--quiet", ...args])).pipe(
    Effect.map(({ stdout }) => stdout.split("\n").filter((line) => line !== "").map((line) => line.split("\t")))
  )

export interface Broker {
  /** declare `queue` as Zulip's producers do (durable, no arguments) */
  readonly declare: (queue: string) => Effect.Effect<void>
  /** publish each body as is (persistent, default exchange), waiting for the broker's confirms */
  readonly publish: (queue: string, bodies: ReadonlyArray<string>) => Effect.Effect<void>
  readonly consumerCount: (queue: string) => Effect.Effect<number>
  /** `queue` and its delay queues, as they exist on the broker now */
  readonly queuesOf: (queue: string) => Effect.Effect<ReadonlyArray<string>>
  /** take every message left in these queues (the worker must be stopped), returning the bodies */
  readonly drain: (queues: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>>
  readonly deleteQueues: (queues: ReadonlyArray<string>) => Effect.Effect<void>
  /** force-close the broker connections of process `pid`, leaving every other connection alone; gives the count */
  readonly closeConnectionsOf: (pid: number) => Effect.Effect<number>
}

const publishChunk = 500

export const makeBroker: Effect.Effect<Broker, never, Scope.Scope> = Effect.gen(function*() {
  const connection = yield* Effect.acquireRelease(
    Effect.promise(() => connect(brokerUrl)),
    (connection) => Effect.promise(() => connection.close().catch(() => undefined))
  )
  const channel = yield* Effect.promise(() => connection.createConfirmChannel())
  // a check of a queue that does not exist closes its channel, so each check gets a channel of its own
  const withProbe = <A>(use: (probe: Awaited<ReturnType<typeof connection.createChannel>>) => Promise<A>) =>
    Effect.promise(async () => {
      const probe = await connection.createChannel()
      probe.on("error", () => undefined)
      try {
        return await use(probe)
      } finally {
        await probe.close().catch(() => undefined)
      }
    })

  return {
    declare: (queue) => Effect.promise(() => channel.assertQueue(queue, { durable: true })).pipe(Effect.asVoid),
    publish: (queue, bodies) =>
      Effect.promise(async () => {
        for (let start = 0; start < bodies.length; start += publishChunk) {
          for (const body of bodies.slice(start, start + publishChunk)) {
            channel.sendToQueue(queue, Buffer.from(body), { persistent: true })
          }
          await channel.waitForConfirms()
        }
      }),
    consumerCount: (queue) =>
      withProbe((probe) => probe.checkQueue(queue).then((ok) => ok.consumerCount, () => 0)),
    queuesOf: (queue) =>
      rabbitmqctl("list_queues", "--no-table-headers", "name").pipe(
        Effect.map((rows) => rows.map(([name = ""]) => name).filter((name) => name === queue || name.startsWith(`${queue}.delay.`)))
      ),
    drain: (queues) =>
      withProbe(async (probe) => {
        const bodies: Array<string> = []
        for (const queue of queues) {
          for (let message = await probe.get(queue, { noAck: true }); message !== false; message = await probe.get(queue, { noAck: true })) {
            bodies.push(message.content.toString("utf8"))
          }
        }
        return bodies
      }),
    deleteQueues: (queues) =>
      Effect.forEach(queues, (queue) => withProbe((probe) => probe.deleteQueue(queue)), { discard: true }),
    closeConnectionsOf: (pid) =>
      Effect.gen(function*() {
        const ports = tcpClientPorts(pid, brokerPort)
        const connections = yield* rabbitmqctl("list_connections", "--no-table-headers", "pid", "peer_port")
        const ours = connections.filter(([, port]) => ports.has(Number(port)))
        yield* Effect.forEach(ours, ([connectionPid = ""]) =>
          rabbitmqctl("close_connection", connectionPid, "fault injection: forced close"), { discard: true })
        return ours.length
      })
  }
})
