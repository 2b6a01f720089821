/**
 * Losing a node of a three-node RabbitMQ cluster mid-run (`npm run test:cluster`; the cluster is `globalSetup.ts`'s).
 * Each scenario accounts for every published event (delivered, recorded, still queued) like the fault scenarios,
 * and measures the time to resume: the longest pause in deliveries after the fault struck.
 *
 * `CLUSTER_EVENTS` (default 20,000, the issue's number) is how many events the two quorum scenarios publish; the
 * classic-queue, leaving-node and publisher scenarios publish a quarter of it.
 */
import { assert, it } from "@effect/vitest"
import { Effect, Fiber, Redacted } from "effect"
import { closedPort } from "../support/fakeSes.ts"
import type { QueueDeclaration } from "../../src/queue/RabbitMqConnection.ts"
import { classicQueue } from "../../src/queue/RabbitMqConnection.ts"
import type { BrokerTarget } from "../faults/support/broker.ts"
import { type Published, type Tally, tally } from "../faults/support/ledger.ts"
import { goodEvent, makeScenario, type Scenario, scenarioWithGoodEvents } from "../faults/support/scenario.ts"
import type { JsonObject } from "../../src/domain/EmailEvent.ts"
import { QueuePublisher } from "../../src/queue/QueuePublisher.ts"
import * as RabbitMqPublisher from "../../src/queue/RabbitMqPublisher.ts"
import { uniqueName } from "../support/rabbitmq.ts"
import type { WorkerProcess } from "../faults/support/worker.ts"
import {
  type ClusterNode,
  clusterNodes,
  ctlOnAnyNode,
  hostOf,
  joinCluster,
  killNode,
  leaveCluster,
  startApp,
  startNode,
  stopApp,
  unacknowledged
} from "./support/cluster.ts"

const events = Number(process.env["CLUSTER_EVENTS"] ?? "20000")
const quorum: QueueDeclaration = { type: "quorum", deliveryLimit: 20 }
/** SMTP replies held 50 ms, so the classic scenario's three workers are still busy when the fault strikes */
const slowSink = { delayMillis: 50 }
const target: BrokerTarget = { urls: clusterNodes.map((node) => node.url), rabbitmqctl: ctlOnAnyNode }

/** The node list starting with node `first`: each worker prefers another node. */
const nodesFrom = (first: number): string =>
  clusterNodes.map((_, i) => clusterNodes[(first + i) % clusterNodes.length]!.url).join(",")

interface Worker {
  readonly process: WorkerProcess
  readonly httpPort: number
}

interface Readiness {
  readonly code: number
  readonly checks: Record<string, string>
  readonly brokerNode: string | null
}

const readiness = (worker: Worker): Effect.Effect<Readiness> =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${worker.httpPort}/readyz`)
    const body = await response.json() as Omit<Readiness, "code">
    return { code: response.status, ...body }
  })

/** `count` workers, worker i preferring node i (AMQP_URL starts with it), each with its operations endpoint. */
const startWorkers = (scenario: Scenario, count: number, firstNode = 0) =>
  Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
    Effect.gen(function*() {
      const httpPort = yield* closedPort
      const process = yield* scenario.startWorker({
        AMQP_URL: nodesFrom(firstNode + i),
        HTTP_PORT: String(httpPort)
      })
      return { process, httpPort } satisfies Worker
    }))

/** Seconds of the longest pause in deliveries from `fromMillis` on (the first delivery after it counts from it). */
const longestPause = (acceptedAt: ReadonlyArray<number>, fromMillis: number): number => {
  const after = acceptedAt.filter((at) => at >= fromMillis).sort((a, b) => a - b)
  let previous = fromMillis
  let longest = 0
  for (const at of after) {
    longest = Math.max(longest, at - previous)
    previous = at
  }
  return longest / 1000
}

/** Events whose recipient the sink defers (451) the first time only: each goes through a delay queue once. */
const deferredEvents = (kind: string, count: number): ReadonlyArray<Published> =>
  Array.from({ length: count }, (_, n) => {
    const event = JSON.parse(goodEvent(`${kind}_451`, n).body) as { to_emails: Array<string> }
    return { label: `${kind}_451#${n}`, body: JSON.stringify({ ...event, to_emails: [`rcpt${n}+451first@faults.example`] }) }
  })

const recipientOf = (event: Published): string => (JSON.parse(event.body) as { to_emails: Array<string> }).to_emails[0]!

const nodeShown = (node: ClusterNode) => `amqp://guest:***@127.0.0.1:${node.amqpPort}`

/** Wait (up to 60 s) until the worker's /readyz shows it connected to a node other than `node`; gives that node. */
const awaitMovedOff = (worker: Worker, node: ClusterNode) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 60_000
    for (;;) {
      const { brokerNode } = yield* readiness(worker)
      if (brokerNode !== null && brokerNode !== nodeShown(node)) return brokerNode
      if (Date.now() > deadline) return yield* Effect.die(new Error(`the worker did not leave ${node.name} within 60 s`))
      yield* Effect.sleep("200 millis")
    }
  })

/** None lost, `expected` delivered, none recorded as failed, all settled in time, and no worker exited on the way. */
const assertEveryoneDelivered = (
  outcome: { readonly allSettled: boolean; readonly anyExited: boolean; readonly counts: Tally },
  expected: number
) => {
  assert.strictEqual(outcome.counts.lost, 0, `lost: ${outcome.counts.lostLabels.join(", ")}`)
  assert.isTrue(outcome.allSettled, "delivery did not finish after the fault")
  assert.strictEqual(outcome.counts.delivered, expected)
  assert.strictEqual(outcome.counts.failed, 0)
  assert.isFalse(outcome.anyExited, "a worker exited instead of failing over")
}

/** Let every event settle, stop the workers, and account. */
const finish = (scenario: Scenario, published: ReadonlyArray<Published>, workers: ReadonlyArray<Worker>) =>
  Effect.gen(function*() {
    const allSettled = yield* scenario.awaitSettled(published, "300 seconds")
    const exited = yield* Effect.forEach(workers, (worker) => worker.process.hasExited)
    yield* Effect.forEach(workers, (worker) => scenario.stopWorker(worker.process), { concurrency: "unbounded" })
    const counts = yield* scenario.account(published)
    return { allSettled, counts, anyExited: exited.some(Boolean) }
  })

it.live("1 quorum queue, leader's node stopped (stop_app): every event delivered, none lost, resumed within 10 s", ({ task }) =>
  Effect.gen(function*() {
    const { published: good, scenario } = yield* scenarioWithGoodEvents("cluster_stop", events, {}, { target, declaration: quorum })
    // 1 % of the events deferred once (451): requeued through a quorum delay queue, across the failover
    const deferred = deferredEvents("cluster_stop", events / 100)
    yield* scenario.publish(deferred)
    const published = [...good, ...deferred]
    const workers = yield* startWorkers(scenario, 3)
    yield* scenario.awaitSettledCount(published, Math.round(events / 3), "300 seconds")
    const leader = yield* Effect.promise(() => hostOf(scenario.queue))
    const inFlight = yield* Effect.promise(() => unacknowledged(scenario.queue))
    const stoppedAt = Date.now()
    yield* Effect.promise(() => stopApp(leader))
    // the worker that preferred the leader's node moves to another one
    const movedTo = yield* awaitMovedOff(workers[clusterNodes.indexOf(leader)]!, leader)
    const { allSettled, anyExited, counts } = yield* finish(scenario, published, workers)
    yield* Effect.promise(() => startApp(leader))
    const resume = longestPause(scenario.sink.acceptedAt, stoppedAt)
    scenario.report(task, "1 quorum, leader stopped", counts, `leader ${leader.name}; its worker moved to ${movedTo}; ${inFlight} unacked when it stopped (duplicates bound); ${deferred.length} of the events requeued once (451)`, resume)

    assertEveryoneDelivered({ allSettled, anyExited, counts }, published.length)
    assert.isAtMost(counts.duplicates, inFlight)
    assert.isAtMost(resume, 10)
    for (const event of deferred) assert.isAtLeast(scenario.sink.rcptAttempts(recipientOf(event)), 2, event.label)
  }).pipe(Effect.scoped))

it.live("2 quorum queue, leader's Erlang process killed (kill -9) and restarted: none lost", ({ task }) =>
  Effect.gen(function*() {
    const { published, scenario } = yield* scenarioWithGoodEvents("cluster_kill", events, {}, { target, declaration: quorum })
    const workers = yield* startWorkers(scenario, 3)
    yield* scenario.awaitSettledCount(published, Math.round(events / 3), "300 seconds")
    const leader = yield* Effect.promise(() => hostOf(scenario.queue))
    const inFlight = yield* Effect.promise(() => unacknowledged(scenario.queue))
    const killedAt = Date.now()
    const pid = yield* Effect.promise(() => killNode(leader))
    // delivery goes on with two of three members; then the node comes back and rejoins
    yield* scenario.awaitSettledCount(published, Math.round((2 * events) / 3), "300 seconds")
    yield* Effect.promise(() => startNode(leader))
    const { allSettled, anyExited, counts } = yield* finish(scenario, published, workers)
    const resume = longestPause(scenario.sink.acceptedAt, killedAt)
    scenario.report(task, "2 quorum, leader killed -9, restarted", counts, `leader ${leader.name} (pid ${pid}); ${inFlight} unacked when killed`, resume)

    assertEveryoneDelivered({ allSettled, anyExited, counts }, events)
    assert.isAtMost(counts.duplicates, inFlight)
  }).pipe(Effect.scoped))

it.live("3 classic queue on the stopped node: workers fail over and wait, /readyz says why, delivery resumes when it is back", ({ task }) =>
  Effect.gen(function*() {
    const count = Math.round(events / 4)
    const { published, scenario } = yield* scenarioWithGoodEvents("cluster_classic", count, slowSink, { target, declaration: classicQueue })
    const workers = yield* startWorkers(scenario, 3)
    yield* scenario.awaitSettledCount(published, Math.round(count / 3), "300 seconds")
    const home = yield* Effect.promise(() => hostOf(scenario.queue))
    yield* Effect.promise(() => stopApp(home))
    // every worker is on a live node, and not ready: the queue's node is down
    const notReady = yield* Effect.forEach(workers, (worker) =>
      Effect.promise(async () => {
        const deadline = Date.now() + 60_000
        for (;;) {
          const reply = await Effect.runPromise(readiness(worker))
          const onLiveNode = reply.brokerNode !== null && reply.brokerNode !== nodeShown(home)
          if (reply.code === 503 && onLiveNode && reply.checks["broker"]!.includes(scenario.queue)) return reply
          if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(reply)} 60 s after ${home.name} stopped`)
          await new Promise((resolve) => setTimeout(resolve, 250))
        }
      }))
    // the deliveries taken before the stop finish (sent, their acks skipped: the broker redelivers them); then none
    yield* Effect.sleep("3 seconds")
    const settledWhileDown = scenario.settled(published)
    yield* Effect.sleep("5 seconds")
    const settledLater = scenario.settled(published)
    const restartedAt = Date.now()
    yield* Effect.promise(() => startApp(home))
    const { allSettled, anyExited, counts } = yield* finish(scenario, published, workers)
    const resume = longestPause(scenario.sink.acceptedAt, restartedAt)
    scenario.report(task, "3 classic, its node stopped", counts, `home ${home.name}; /readyz: ${notReady[0]!.checks["broker"]!.slice(0, 80)}`, resume)

    assert.strictEqual(settledLater, settledWhileDown, "deliveries went on while the queue's node was down")
    assertEveryoneDelivered({ allSettled, anyExited, counts }, count)
  }).pipe(Effect.scoped))

it.live("4 a worker's node leaves the cluster: it moves to another node by itself, none lost", ({ task }) =>
  Effect.gen(function*() {
    const count = Math.round(events / 4)
    const { published, scenario } = yield* scenarioWithGoodEvents("cluster_leave", count, { delayMillis: 10 }, { target, declaration: quorum })
    const leaving = clusterNodes[2]!
    const [worker] = yield* startWorkers(scenario, 1, 2)
    assert.strictEqual((yield* readiness(worker!)).brokerNode, nodeShown(leaving))
    yield* scenario.awaitSettledCount(published, Math.round(count / 3), "300 seconds")
    const leftAt = Date.now()
    yield* Effect.promise(() => leaveCluster(leaving))
    const movedTo = yield* awaitMovedOff(worker!, leaving)
    const { allSettled, anyExited, counts } = yield* finish(scenario, published, [worker!])
    const after = yield* Effect.promise(() => joinCluster(leaving, clusterNodes[0]!)).pipe(Effect.as("rejoined"))
    const resume = longestPause(scenario.sink.acceptedAt, leftAt)
    scenario.report(task, "4 worker's node leaves the cluster", counts, `${leaving.name} left (reset); the worker moved to ${movedTo}; then ${after}`, resume)

    assertEveryoneDelivered({ allSettled, anyExited, counts }, count)
  }).pipe(Effect.scoped))

it.live("5 publisher confirms across a failover: what the lost node never confirmed is published on the next, none lost", ({ task }) =>
  Effect.gen(function*() {
    const count = Math.round(events / 4)
    const scenario = yield* makeScenario("cluster_publish", {}, { target, declaration: quorum })
    // the publisher's first node, which also gets the quorum queue's leader: it declares the queue
    const first = clusterNodes[1]!
    const published = Array.from({ length: count }, (_, n) => goodEvent("cluster_publish", n))
    const confirmedAt: Array<number> = []
    const stoppedAt = yield* Effect.gen(function*() {
      const publisher = yield* QueuePublisher
      const publishing = yield* Effect.forEach(
        published,
        (event) =>
          publisher.publishEmail(JSON.parse(event.body) as JsonObject).pipe(Effect.tap(() => Effect.sync(() => confirmedAt.push(Date.now())))),
        { discard: true }
      ).pipe(Effect.forkChild)
      while (confirmedAt.length < count / 3) yield* Effect.sleep("20 millis")
      const at = Date.now()
      yield* Effect.promise(() => stopApp(first))
      yield* Fiber.join(publishing)
      return at
    }).pipe(
      Effect.provide(RabbitMqPublisher.layer({
        queueName: scenario.queue,
        declaration: quorum,
        url: Redacted.make(nodesFrom(1)),
        connectionName: uniqueName("cluster_publisher")
      }))
    )
    yield* Effect.promise(() => startApp(first))
    const queues = yield* scenario.broker.queuesOf(scenario.queue)
    const queued = yield* scenario.broker.drain(queues)
    const counts = tally(published, new Map(), [], queued)
    const duplicates = queued.length - counts.queued
    const resume = longestPause(confirmedAt, stoppedAt)
    scenario.report(task, "5 publisher's node stopped mid-publish", { ...counts, duplicates }, `${count} publishes confirmed one by one; ${first.name} stopped after ${Math.round(count / 3)}; duplicates: copies in the queue`, resume)

    assert.strictEqual(confirmedAt.length, count)
    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.strictEqual(counts.queued, count)
    assert.isAtMost(resume, 10)
  }).pipe(Effect.scoped))
