/**
 * The scenarios' own view of a RabbitMQ broker (the machine's, or a test cluster), independent of the worker: bulk
 * publishing, queue checks, the worker's queues (the main one, its `<queue>.delay.*` queues and `<queue>.dead`), and
 * force-closing one process's connections.
 */
import { type ChannelModel, type ConfirmChannel, connect } from "amqplib"
import { Effect, type Scope } from "effect"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { classicQueue, declareQueue, type QueueDeclaration } from "../../../src/queue/RabbitMqConnection.ts"
import { tcpClientPorts } from "./worker.ts"

/** Where the broker is: its nodes' URLs (the first that answers is used), and how `rabbitmqctl` reaches it. */
export interface BrokerTarget {
  readonly urls: ReadonlyArray<string>
  /** `rabbitmqctl` with these arguments (and `--quiet`), its stdout */
  readonly rabbitmqctl: (...args: Array<string>) => Promise<string>
}

/** The machine's broker on 5672. */
export const machineBroker: BrokerTarget = {
  urls: ["amqp://guest:guest@127.0.0.1:5672"],
  rabbitmqctl: async (...args) => (await promisify(execFile)("rabbitmqctl", ["--quiet", ...args])).stdout
}

export interface Broker {
  /** declare `queue` as the worker does (by default as Zulip's producers do: durable, no arguments) */
  readonly declare: (queue: string, declaration?: QueueDeclaration) => Effect.Effect<void>
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

export const makeBroker = (target: BrokerTarget = machineBroker): Effect.Effect<Broker, never, Scope.Scope> => Effect.gen(function*() {
  const rabbitmqctl = (...args: Array<string>) =>
    Effect.promise(() => target.rabbitmqctl(...args)).pipe(
      Effect.map((stdout) => stdout.split("\n").filter((line) => line !== "").map((line) => line.split("\t")))
    )
  // one connection at a time, to the first node that answers; opened again when it closed (its node went down)
  let open: { readonly connection: ChannelModel; readonly channel: ConfirmChannel; closed: boolean } | undefined
  const session = async () => {
    if (open !== undefined && !open.closed) return open
    const failures: Array<string> = []
    for (const url of target.urls) {
      try {
        const connection = await connect(url)
        connection.on("error", () => undefined)
        const channel = await connection.createConfirmChannel()
        channel.on("error", () => undefined)
        const opened = { connection, channel, closed: false }
        connection.on("close", () => {
          opened.closed = true
        })
        channel.on("close", () => {
          opened.closed = true
        })
        return open = opened
      } catch (error) {
        failures.push(`${url}: ${String(error)}`)
      }
    }
    throw new Error(`no broker node answers: ${failures.join("; ")}`)
  }
  yield* Effect.addFinalizer(() => Effect.promise(() => open?.connection.close().catch(() => undefined) ?? Promise.resolve()))
  // a check of a queue that does not exist closes its channel, so each check gets a channel of its own
  const withProbe = <A>(use: (probe: Awaited<ReturnType<ChannelModel["createChannel"]>>) => Promise<A>) =>
    Effect.promise(async () => {
      const probe = await (await session()).connection.createChannel()
      probe.on("error", () => undefined)
      try {
        return await use(probe)
      } finally {
        await probe.close().catch(() => undefined)
      }
    })

  return {
    declare: (queue, declaration = classicQueue) =>
      Effect.promise(session).pipe(Effect.flatMap(({ connection }) => declareQueue(connection, queue, declaration)), Effect.orDie),
    publish: (queue, bodies) =>
      Effect.promise(async () => {
        const { channel } = await session()
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
        Effect.map((rows) => rows.map(([name = ""]) => name).filter((name) =>
          name === queue || name === `${queue}.dead` || name.startsWith(`${queue}.delay.`)
        ))
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
        const ports = tcpClientPorts(pid, Number(new URL(target.urls[0]!).port))
        const connections = yield* rabbitmqctl("list_connections", "--no-table-headers", "pid", "peer_port")
        const ours = connections.filter(([, port]) => ports.has(Number(port)))
        yield* Effect.forEach(ours, ([connectionPid = ""]) =>
          rabbitmqctl("close_connection", connectionPid, "fault injection: forced close"), { discard: true })
        return ours.length
      })
  }
})
