/**
 * What every fault scenario starts from: a scratch directory, a queue of its own, an SMTP sink, the broker view,
 * and the real worker process configured for them; and how every scenario ends: let the events settle, stop the
 * worker, drain what is left queued, and account for each published event.
 */
import { Duration, Effect, Exit, Option, type Scope } from "effect"
import type { TaskMeta } from "vitest"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { uniqueName } from "../../support/rabbitmq.ts"
import { classicQueue, type QueueDeclaration } from "../../../src/queue/RabbitMqConnection.ts"
import { type Broker, type BrokerTarget, machineBroker, makeBroker } from "./broker.ts"
import {
  type FailureLog,
  identitiesOfBody,
  makeFailureLog,
  type Published,
  settledCount,
  type Tally,
  tally
} from "./ledger.ts"
import { makeSink, type Sink, type SinkOptions } from "./sink.ts"
import { recordRow } from "./summary.ts"
import { awaitWorker, exitWithin, spawnMain, type WorkerExit, type WorkerProcess } from "./worker.ts"

/**
 * Short retry and requeue delays, so a scenario's retries finish in seconds (Zulip's defaults take minutes); during
 * an outage the worker checks at least every 2 s, so it notices the return of SMTP or the database quickly.
 */
const fastSettings = {
  REQUEUE_DELAY: "1",
  RETRY_BASE_DELAY: "100 millis",
  RETRY_MAX_DELAY: "1",
  OUTAGE_MAX_DELAY: "2",
  SHUTDOWN_TIMEOUT: "10",
  EMAIL_TIMEOUT: "5",
  // a health server, where the worker has one, must not collide with other runs
  HTTP_PORT: "0",
  LOG_LEVEL: "Info"
}

export interface Scenario {
  readonly queue: string
  readonly directory: string
  readonly sink: Sink
  readonly broker: Broker
  readonly failures: FailureLog
  readonly logPath: string
  /** declare the queue as Zulip's producers do and publish the events, confirmed */
  readonly publish: (published: ReadonlyArray<Published>) => Effect.Effect<void>
  /** the worker's environment, with `extra` on top */
  readonly settings: (extra?: Readonly<Record<string, string>>) => Record<string, string>
  /** start the worker and wait until it consumes the queue */
  readonly startWorker: (extra?: Readonly<Record<string, string>>) => Effect.Effect<WorkerProcess, never, Scope.Scope>
  /** published events delivered or recorded as failed so far */
  readonly settled: (published: ReadonlyArray<Published>) => number
  /** wait until every published event is settled; false if `timeout` passed first */
  readonly awaitSettled: (published: ReadonlyArray<Published>, timeout: Duration.Input) => Effect.Effect<boolean>
  /** wait until `count` events are settled (to strike in the middle of a run) */
  readonly awaitSettledCount: (published: ReadonlyArray<Published>, count: number, timeout: Duration.Input) => Effect.Effect<void>
  /** SIGTERM, then SIGKILL if it has not exited within 30 s */
  readonly stopWorker: (worker: WorkerProcess) => Effect.Effect<WorkerExit>
  /** with the worker stopped: drain and delete the worker's queues and account for every published event */
  readonly account: (published: ReadonlyArray<Published>) => Effect.Effect<Tally>
  /** the scenario's row of the summary table, timed from the scenario's start */
  readonly report: (task: { readonly meta: TaskMeta }, title: string, counts: Tally, notes: string, resumeSeconds?: number) => void
}

/** A scratch directory, removed when the scenario passes and kept (its path logged) for a look when it fails. */
const scratchDirectory = (name: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), `email-senders-faults-${name}-`))),
    (directory, exit) =>
      Exit.isSuccess(exit)
        ? Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
        : Effect.logWarning(`fault scenario ${name} failed; its worker log and files are kept in ${directory}`)
  )

/** Which broker a scenario runs against (default: the machine's), and how the queue is declared (default: classic). */
export interface ScenarioBroker {
  readonly target?: BrokerTarget
  readonly declaration?: QueueDeclaration
}

export const makeScenario = (
  name: string,
  sinkOptions: SinkOptions = {},
  { declaration = classicQueue, target = machineBroker }: ScenarioBroker = {}
): Effect.Effect<Scenario, never, Scope.Scope> =>
  Effect.gen(function*() {
    const startedAtMillis = Date.now()
    const directory = yield* scratchDirectory(name)
    const queue = uniqueName(`faults_${name}`)
    const sink = yield* makeSink(sinkOptions)
    const broker = yield* makeBroker(target)
    let queuesDeleted = false
    // queues of a scenario that failed half way go too
    yield* Effect.addFinalizer(() =>
      queuesDeleted ? Effect.void : broker.queuesOf(queue).pipe(Effect.flatMap(broker.deleteQueues))
    )
    const failures = makeFailureLog(join(directory, "errors", `${queue}.errors`))
    const logPath = join(directory, "worker.log")
    const settings = (extra: Readonly<Record<string, string>> = {}) => ({
      AMQP_URL: target.urls.join(","),
      QUEUE_TYPE: declaration.type,
      QUEUE_DELIVERY_LIMIT: String(declaration.deliveryLimit),
      QUEUE_NAME: queue,
      EMAIL_HOST: "127.0.0.1",
      EMAIL_PORT: String(sink.port),
      QUEUE_ERROR_DIR: join(directory, "errors"),
      QUEUE_STATS_DIR: join(directory, "stats"),
      EMAIL_LOG_DIR: join(directory, "emails"),
      ...fastSettings,
      ...extra
    })
    const identitiesOf = (published: ReadonlyArray<Published>) => published.map((item) => identitiesOfBody(item.body))
    const settled = (published: ReadonlyArray<Published>) =>
      settledCount(identitiesOf(published), sink.deliveries, failures.read())
    const pollSettled = (identities: ReadonlyArray<ReadonlyArray<string>>, count: number, timeout: Duration.Input) =>
      Effect.gen(function*() {
        const deadline = Date.now() + Duration.toMillis(Duration.fromInputUnsafe(timeout))
        while (settledCount(identities, sink.deliveries, failures.read()) < count) {
          if (Date.now() > deadline) return false
          yield* Effect.sleep("200 millis")
        }
        return true
      })

    return {
      queue,
      directory,
      sink,
      broker,
      failures,
      logPath,
      publish: (published) =>
        broker.declare(queue, declaration).pipe(Effect.andThen(broker.publish(queue, published.map((event) => event.body)))),
      settings,
      startWorker: (extra) =>
        Effect.gen(function*() {
          const worker = yield* spawnMain([], settings(extra), logPath)
          yield* awaitWorker(
            worker,
            logPath,
            `consuming ${queue}`,
            broker.consumerCount(queue).pipe(Effect.map((count) => count > 0)),
            "60 seconds"
          )
          return worker
        }),
      settled,
      awaitSettled: (published, timeout) => pollSettled(identitiesOf(published), published.length, timeout),
      awaitSettledCount: (published, count, timeout) =>
        pollSettled(identitiesOf(published), count, timeout).pipe(
          Effect.flatMap((reached) =>
            reached ? Effect.void : Effect.die(new Error(`fewer than ${count} events settled within ${Duration.format(Duration.fromInputUnsafe(timeout))}`))
          )
        ),
      stopWorker: (worker) =>
        worker.signal("SIGTERM").pipe(
          Effect.andThen(exitWithin(worker, "30 seconds")),
          Effect.flatMap(Option.match({
            onSome: Effect.succeed,
            onNone: () => Effect.andThen(worker.signal("SIGKILL"), worker.exit)
          }))
        ),
      account: (published) =>
        Effect.gen(function*() {
          const queues = yield* broker.queuesOf(queue)
          // delay queues first: what expires meanwhile lands in the main queue, drained last
          const bodies = yield* broker.drain([...queues].sort((a, b) => (a === queue ? 1 : 0) - (b === queue ? 1 : 0)))
          yield* broker.deleteQueues(queues)
          queuesDeleted = true
          return tally(published, sink.deliveries, failures.read(), bodies)
        }),
      report: (task, title, counts, notes, resumeSeconds) => recordRow(task, title, counts, startedAtMillis, notes, resumeSeconds)
    }
  })

/** A valid pre-rendered event with a Message-ID of its own, for one recipient. */
export const goodEvent = (kind: string, n: number): Published => ({
  label: `${kind}#${n}`,
  body: JSON.stringify({
    subject: `Fault scenario ${kind} #${n}`,
    text: `Event ${n} of the ${kind} scenario.`,
    to_emails: [`rcpt${n}@faults.example`],
    message_id: `${kind}-${n}-${process.pid}@faults.example`
  })
})

const goodEvents = (kind: string, count: number): ReadonlyArray<Published> =>
  Array.from({ length: count }, (_, n) => goodEvent(kind, n))

/** A scenario whose queue already holds `count` good events. */
export const scenarioWithGoodEvents = (name: string, count: number, sinkOptions: SinkOptions = {}, broker: ScenarioBroker = {}) =>
  Effect.gen(function*() {
    const scenario = yield* makeScenario(name, sinkOptions, broker)
    const published = goodEvents(name, count)
    yield* scenario.publish(published)
    return { scenario, published }
  })

/** "12.3 s" */
export const seconds = (millis: number): string => `${(millis / 1000).toFixed(1)} s`
