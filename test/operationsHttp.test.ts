/**
 * The operations endpoint next to a worker composed in-process on the live layers: RabbitMQ (a queue of its own,
 * reached through a loopback proxy the test can shut), the SMTP pool against the loopback test server, and the
 * endpoint on a free port. Metrics go to a registry of each test's own, so counts are exact.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import {
  Context,
  Duration,
  Effect,
  Fiber,
  Layer,
  Logger,
  Metric,
  Redacted,
  Ref,
  References,
  Schedule,
  SubscriptionRef
} from "effect"
import { HttpServer } from "effect/http"
import { TestClock } from "effect/testing"
import { SqlClient } from "effect/sql"
import { request } from "node:http"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NotDelivered, Rejected, StoreError, Unavailable } from "../src/domain/errors.ts"
import * as DevelopmentCapture from "../src/smtp/DevelopmentCapture.ts"
import * as InMemoryEmailBuilder from "../src/email/InMemoryEmailBuilder.ts"
import { InMemoryFailures } from "../src/records/InMemoryFailureStore.ts"
import { InMemoryQueue } from "../src/queue/InMemoryQueue.ts"
import { InMemoryRealms } from "../src/realms/InMemoryRealmRepository.ts"
import { InMemorySmtp } from "../src/smtp/InMemorySmtp.ts"
import { InMemoryStats } from "../src/records/InMemoryStatsWriter.ts"
import * as OperationsHttp from "../src/operations/OperationsHttp.ts"
import * as PostgresRealmRepository from "../src/realms/PostgresRealmRepository.ts"
import * as RabbitMq from "../src/queue/RabbitMqConnection.ts"
import * as RabbitMqConsumer from "../src/queue/RabbitMqConsumer.ts"
import * as SesSuppressionList from "../src/smtp/SesSuppressionList.ts"
import * as SmtpPool from "../src/smtp/SmtpPool.ts"
import { consumeBatch } from "../src/pipeline/settleDelivery.ts"
import { migrateDatabase } from "../src/realms/migrateDatabase.ts"
import { runWorker } from "../src/pipeline/worker.ts"
import { FailureStore } from "../src/records/FailureStore.ts"
import { QueueConsumer } from "../src/queue/QueueConsumer.ts"
import type { RealmRepository } from "../src/realms/RealmRepository.ts"
import { defaultWorkerSettings, WorkerSettings } from "../src/config/WorkerSettings.ts"
import { hamlet, inMemoryLayer } from "./support/inMemory.ts"
import { sample } from "./support/prometheusText.ts"
import { closeConnectionsNamed, makeAdmin, uniqueName } from "./support/rabbitmq.ts"
import { smtpServer, type SmtpTestServer } from "./support/smtpServer.ts"
import { makeTcpProxy } from "./support/tcpProxy.ts"

const templates = {
  "zerver/emails/password_reset": { subject: "Reset your password", text: "Reset it", html: "<p>Reset it</p>" }
}
const event = (to: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ template_prefix: "zerver/emails/password_reset", to_emails: [to], ...extra })

/** Polls `check` until it holds (every 50 ms, up to 20 s): what it waits for happens in the background. */
const eventually = <A>(what: string, probe: Effect.Effect<A>, check: (value: A) => boolean): Effect.Effect<A> =>
  probe.pipe(
    Effect.filterOrFail(check, () => new Error(`still waiting for ${what}`)),
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo({ duration: "20 seconds" }))),
    Effect.orDie
  )

interface Reply {
  readonly status: number
  readonly body: string
}

const get = (base: string, path: string): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const response = await fetch(`${base}${path}`)
    return { status: response.status, body: await response.text() }
  })

interface Readiness {
  readonly code: number
  readonly status: string
  readonly checks: Record<string, string>
  /** the broker node the worker is connected to (password hidden), null while it is not */
  readonly brokerNode: string | null
}

const readiness = (base: string): Effect.Effect<Readiness> =>
  Effect.map(get(base, "/readyz"), ({ body, status }) => ({
    code: status,
    ...(JSON.parse(body) as Omit<Readiness, "code">)
  }))

/** The machine's RabbitMQ, which the workers reach through a proxy of their own. */
const brokerPort = 5672

/** A worker on a queue of its own, SMTP to `server`, and the endpoint; gives the endpoint's base URL. */
const startWorker = (options: {
  readonly smtp: SmtpTestServer
  readonly brokerPort: number
  readonly connectionName: string
  /** in place of the in-memory store, e.g. one that cannot be written */
  readonly failureStore?: Layer.Layer<FailureStore>
}) =>
  Effect.gen(function*() {
    const admin = yield* makeAdmin
    const queueName = yield* admin.declareQueue()
    // where a requeued event waits out REQUEUE_DELAY
    admin.deleteAfter(`${queueName}.delay.100`)
    const services = Layer.mergeAll(
      RabbitMqConsumer.layerNoDeps({ queueName, prefetch: 10 }),
      SmtpPool.layer({
        host: options.smtp.host,
        port: options.smtp.port,
        connections: 2,
        timeout: "5 seconds",
        connectRetryDelay: "20 millis"
      }),
      InMemoryRealms.layer({ realms: [], users: [] }),
      InMemoryEmailBuilder.layer(templates),
      SesSuppressionList.layerDisabled,
      options.failureStore === undefined ? InMemoryFailures.layer : Layer.merge(InMemoryFailures.layer, options.failureStore),
      InMemoryStats.layer,
      Layer.succeed(WorkerSettings, {
        ...defaultWorkerSettings,
        queueName,
        retryBaseDelay: Duration.millis(20),
        requeueDelay: Duration.millis(100),
        batchTimeout: Duration.millis(100)
      })
    ).pipe(Layer.provideMerge(RabbitMq.layer({
      url: Redacted.make(`amqp://guest:guest@127.0.0.1:${options.brokerPort}`),
      connectionName: options.connectionName,
      reconnectBaseDelay: "20 millis",
      reconnectMaxDelay: "200 millis"
    })))
    // every readiness request checks SMTP anew, so an outage shows at once
    const stack = OperationsHttp.layer({ port: 0, smtpCheckMaxAge: 0, probeTimeout: "15 seconds" }).pipe(
      Layer.provideMerge(services)
    )
    const context = yield* Layer.build(stack)
    yield* runWorker.pipe(Effect.provide(context), Effect.forkScoped)
    yield* admin.awaitConsumer(queueName)
    return {
      admin,
      queueName,
      base: HttpServer.formatAddress((yield* HttpServer.HttpServer.pipe(Effect.provide(context))).address),
      failures: (yield* InMemoryFailures.pipe(Effect.provide(context))).records
    }
  })

const withOwnMetrics = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => Effect.provideService(effect, Metric.MetricRegistry, new Map()))

describe("operations endpoint next to a live worker", () => {
  it.live("/healthz answers ok; /metrics counts events consumed, sent, retried, failed and the latencies", () =>
    withOwnMetrics(Effect.gen(function*() {
      const smtp = yield* smtpServer()
      const proxy = yield* makeTcpProxy(brokerPort)
      const { admin, base, failures, queueName } = yield* startWorker({
        smtp,
        brokerPort: proxy.port,
        connectionName: uniqueName("conn")
      })
      assert.deepStrictEqual(yield* get(base, "/healthz"), { status: 200, body: "{\"status\":\"ok\"}" })

      const before = (yield* get(base, "/metrics")).body
      assert.strictEqual(sample(before, "email_senders_emails_sent_total"), 0)
      assert.strictEqual(sample(before, "email_senders_broker_connected"), 1)
      assert.strictEqual(sample(before, `email_senders_broker_node{node="amqp://guest:***@127.0.0.1:${proxy.port}"}`), 1)

      const aMinuteAgo = new Date(Date.now() - 60_000).toUTCString()
      yield* admin.publish(queueName, event("first@example.com", { date: aMinuteAgo }))
      yield* eventually("the first email", Effect.sync(() => smtp.messages.length), (n) => n === 1)
      // the next message loses its connection in DATA once, then is accepted on the in-process retry
      smtp.dropNextMessages(1)
      yield* admin.publish(queueName, event("second@example.com"))
      yield* eventually("the second email", Effect.sync(() => smtp.messages.length), (n) => n === 2)
      // the next one is refused once with 451: requeued (REQUEUE_DELAY), then accepted
      smtp.failNextMessages(1, 451)
      yield* admin.publish(queueName, event("third@example.com"))
      yield* eventually("the third email", Effect.sync(() => smtp.messages.length), (n) => n === 3)
      yield* admin.publish(queueName, event("nobody+550@example.com"))
      yield* eventually("the refused email's record", failures, (records) => records.length === 1)

      const metrics = yield* eventually(
        "the last event to settle",
        Effect.map(get(base, "/metrics"), ({ body }) => body),
        (text) => sample(text, "email_senders_events_in_flight") === 0
      )
      // four events published, and the 451's requeued copy
      assert.strictEqual(sample(metrics, "email_senders_events_consumed_total"), 5)
      assert.strictEqual(sample(metrics, "email_senders_emails_sent_total"), 3)
      assert.strictEqual(sample(metrics, "email_senders_send_retries_total"), 1)
      assert.strictEqual(sample(metrics, "email_senders_events_requeued_total"), 1)
      assert.strictEqual(sample(metrics, "email_senders_events_failed_total{error=\"Rejected\",smtp_class=\"5xx\"}"), 1)
      // six SMTP send calls: the first email, the dropped one and its retry, the 451 and its requeued copy, the 550
      assert.strictEqual(sample(metrics, "email_senders_smtp_send_seconds_count"), 6)
      // only the first event carried a Date: it took about a minute from its enqueue time to the 250
      assert.strictEqual(sample(metrics, "email_senders_delivery_latency_seconds_count"), 1)
      assert.isAtLeast(sample(metrics, "email_senders_delivery_latency_seconds_sum")!, 60)
      assert.strictEqual(sample(metrics, "email_senders_delivery_latency_seconds_bucket{le=\"30\"}"), 0)
      assert.strictEqual(sample(metrics, "email_senders_delivery_latency_seconds_bucket{le=\"300\"}"), 1)
      assert.strictEqual(sample(metrics, "email_senders_smtp_healthy"), 1)
      assert.strictEqual(sample(metrics, "email_senders_consumer_paused"), 0)
      assert.include(metrics, "# TYPE email_senders_smtp_send_seconds histogram")
    })))

  it.live("/metrics shows the SMTP pool's connections open, busy, and the sends waiting for one", () =>
    withOwnMetrics(Effect.gen(function*() {
      // each message takes the server a while, so the worker's two connections stay busy with the others waiting
      const smtp = yield* smtpServer({ messageDelayMillis: 1_500 })
      const proxy = yield* makeTcpProxy(brokerPort)
      const { admin, base, queueName } = yield* startWorker({ smtp, brokerPort: proxy.port, connectionName: uniqueName("conn") })
      const pool = Effect.map(get(base, "/metrics"), ({ body }) =>
        ["open", "busy", "waiting"].map((gauge) => sample(body, `email_senders_smtp_connections_${gauge}`)))
      // nothing opened before the first event
      assert.deepStrictEqual(yield* pool, [0, 0, 0])
      for (const n of [1, 2, 3, 4]) yield* admin.publish(queueName, event(`user${n}@example.com`))
      yield* eventually("two connections busy and two sends waiting", pool, ([open, busy, waiting]) =>
        open === 2 && busy === 2 && waiting === 2)
      yield* eventually("the four emails", Effect.sync(() => smtp.messages.length), (n) => n === 4)
      yield* eventually("the connections idle", pool, ([open, busy, waiting]) => open === 2 && busy === 0 && waiting === 0)
      assert.strictEqual(smtp.connections, 2)
    })))

  it.live("/readyz turns 503 naming SMTP while the server is down, and 200 once it is back", () =>
    withOwnMetrics(Effect.gen(function*() {
      const smtp = yield* smtpServer()
      const proxy = yield* makeTcpProxy(brokerPort)
      const { base } = yield* startWorker({ smtp, brokerPort: proxy.port, connectionName: uniqueName("conn") })
      assert.deepStrictEqual(yield* readiness(base), {
        code: 200,
        status: "ready",
        checks: { broker: "ok", smtp: "ok", failureStore: "ok" },
        brokerNode: `amqp://guest:***@127.0.0.1:${proxy.port}`
      })

      yield* Effect.promise(() => smtp.stop())
      const down = yield* eventually("not ready", readiness(base), (reply) => reply.code === 503)
      assert.strictEqual(down.checks["broker"], "ok")
      assert.match(down.checks["smtp"]!, /^Unavailable: /)
      assert.strictEqual(sample((yield* get(base, "/metrics")).body, "email_senders_smtp_healthy"), 0)

      yield* Effect.promise(() => smtp.start())
      const up = yield* eventually("ready again", readiness(base), (reply) => reply.code === 200)
      assert.deepStrictEqual(up.checks, { broker: "ok", smtp: "ok", failureStore: "ok" })
    })))

  it.live("/readyz turns 503 naming the failure store while a delivery slot is stuck retrying it, and 200 once written", () =>
    withOwnMetrics(Effect.gen(function*() {
      const smtp = yield* smtpServer()
      const diskFull = yield* Ref.make(true)
      const failureStore = Layer.succeed(FailureStore, FailureStore.of({
        record: () =>
          Effect.flatMap(Ref.get(diskFull), (full) =>
            full ? Effect.fail(new StoreError({ message: "ENOSPC: no space left on device", path: "/errors" })) : Effect.void)
      }))
      const { admin, base, queueName } = yield* startWorker({ smtp, brokerPort, connectionName: uniqueName("conn"), failureStore })
      yield* admin.publish(queueName, "{not json")
      const stuck = yield* eventually("not ready", readiness(base), (reply) => reply.code === 503)
      assert.deepStrictEqual(stuck.checks, {
        broker: "ok",
        smtp: "ok",
        failureStore: "1 delivery slot(s) stuck retrying the failure store (the errors file)"
      })
      assert.strictEqual(sample((yield* get(base, "/metrics")).body, "email_senders_deliveries_retrying_failure_store"), 1)

      yield* Ref.set(diskFull, false)
      const written = yield* eventually("ready again", readiness(base), (reply) => reply.code === 200)
      assert.strictEqual(written.checks["failureStore"], "ok")
      assert.strictEqual(sample((yield* get(base, "/metrics")).body, "email_senders_deliveries_retrying_failure_store"), 0)
    })))

  it.live("/readyz turns 503 naming the broker while its connection is closed, and 200 once it is back", () =>
    withOwnMetrics(Effect.gen(function*() {
      const smtp = yield* smtpServer()
      const proxy = yield* makeTcpProxy(brokerPort)
      const connectionName = uniqueName("conn")
      const { base } = yield* startWorker({ smtp, brokerPort: proxy.port, connectionName })
      assert.strictEqual((yield* readiness(base)).code, 200)

      // the broker closes our connection, and the proxy keeps it from coming back
      yield* proxy.stopListening
      assert.strictEqual(yield* closeConnectionsNamed(connectionName), 1)
      const down = yield* eventually("not ready", readiness(base), (reply) => reply.code === 503)
      // why: lost, and then each failed attempt to reopen it
      assert.match(down.checks["broker"]!, /^(connection lost; reopening|connect ECONNREFUSED 127\.0\.0\.1:\d+)$/)
      assert.deepStrictEqual({ ...down.checks, broker: "" }, { broker: "", smtp: "ok", failureStore: "ok" })
      assert.strictEqual(sample((yield* get(base, "/metrics")).body, "email_senders_broker_connected"), 0)
      // the process itself is fine
      assert.strictEqual((yield* get(base, "/healthz")).status, 200)

      yield* proxy.start
      const up = yield* eventually("ready again", readiness(base), (reply) => reply.code === 200)
      assert.deepStrictEqual(up.checks, { broker: "ok", smtp: "ok", failureStore: "ok" })
    })))
})

/** The endpoint alone, with a broker that is up and SMTP captured: only the database decides. */
const endpointWithRealms = <E>(realms: Layer.Layer<RealmRepository, E>, allowedHosts: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const directory = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "ops-http-"))),
      (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
    )
    const broker = Layer.effect(
      RabbitMq.RabbitMqConnection,
      Effect.map(SubscriptionRef.make(true), (connected) =>
        RabbitMq.RabbitMqConnection.of({ connected, problem: Effect.succeed("not connected"), sessionProblem: Effect.succeed(undefined), nodes: [], node: Effect.succeed(undefined), keepSession: () => Effect.die("no session in this test") }))
    )
    const context = yield* Layer.build(
      OperationsHttp.layer({
        port: 0,
        checkDatabase: true,
        probeTimeout: "15 seconds",
        capturedEmailsDirectory: directory,
        allowedHosts
      }).pipe(
        Layer.provide(Layer.mergeAll(broker, DevelopmentCapture.layer({ directory }), realms))
      )
    )
    return HttpServer.formatAddress((yield* HttpServer.HttpServer.pipe(Effect.provide(context))).address)
  })

describe("/readyz and the database", () => {
  it.live("names the database when it cannot be reached", () =>
    Effect.gen(function*() {
      // a port nothing listens on
      const base = yield* endpointWithRealms(PostgresRealmRepository.layer({ url: Redacted.make("postgres://postgres@127.0.0.1:1/test") }))
      const reply = yield* readiness(base)
      assert.deepStrictEqual([reply.code, reply.status], [503, "not ready"])
      assert.deepStrictEqual(Object.keys(reply.checks).sort(), ["broker", "database", "failureStore", "smtp"])
      assert.strictEqual(reply.checks["broker"], "ok")
      assert.strictEqual(reply.checks["smtp"], "ok")
      assert.match(reply.checks["database"]!, /^database: /)
    }))

  it.live("is ready when Zulip's tables answer", () =>
    Effect.gen(function*() {
      const url = Redacted.make("postgres://postgres@127.0.0.1:5432/test")
      const schema = uniqueName("es_ready")
      const inSchema = { url, startupParameters: { search_path: schema } }
      // the schema is dropped after the endpoint and its pool are gone
      const sql = Context.get(yield* Layer.build(PgClient.layer({ url })).pipe(Effect.orDie), SqlClient.SqlClient)
      yield* Effect.acquireRelease(
        Effect.orDie(sql`CREATE SCHEMA ${sql(schema)}`),
        () => Effect.orDie(sql`DROP SCHEMA ${sql(schema)} CASCADE`)
      )
      yield* migrateDatabase.pipe(Effect.provide(PgClient.layer(inSchema)), Effect.orDie)
      const base = yield* endpointWithRealms(PostgresRealmRepository.layer(inSchema))
      assert.deepStrictEqual(yield* readiness(base), {
        code: 200,
        status: "ready",
        checks: { broker: "ok", smtp: "ok", failureStore: "ok", database: "ok" },
        brokerNode: null
      })
    }))
})

/** A GET over real HTTP with the given `Host` header (fetch would write its own). */
const getAs = (base: string, path: string, host: string): Effect.Effect<Reply> =>
  Effect.callback<Reply>((resume) => {
    const url = new URL(path, base)
    const outgoing = request({ hostname: url.hostname, port: url.port, path: url.pathname, headers: { host } }, (response) => {
      let body = ""
      response.setEncoding("utf8").on("data", (chunk: string) => {
        body += chunk
      }).on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body })))
    })
    outgoing.on("error", (error) => resume(Effect.die(error)))
    outgoing.end()
  })

describe("the Host a request is addressed to (DNS rebinding)", () => {
  const paths = ["/emails", "/metrics", "/readyz", "/healthz", "/no-such-path"]

  it.live("any other name is answered 421 on every path, and nothing of the page is sent", () =>
    Effect.gen(function*() {
      const base = yield* endpointWithRealms(InMemoryRealms.layer({ realms: [], users: [] }))
      const port = new URL(base).port
      for (const path of paths) {
        for (const host of ["evil.example", `evil.example:${port}`, "127.0.0.1.evil.example", "localhost.", "[::2]"]) {
          const reply = yield* getAs(base, path, host)
          assert.strictEqual(reply.status, 421, `${path} as ${host}`)
          assert.match(reply.body, /^Misdirected Request: /)
        }
      }
    }))

  it.live("the bind address, loopback names and HTTP_ALLOWED_HOSTS are answered, with or without a port", () =>
    Effect.gen(function*() {
      const base = yield* endpointWithRealms(InMemoryRealms.layer({ realms: [], users: [] }), ["ops.internal", "::5"])
      const port = new URL(base).port
      const hosts = ["127.0.0.1", "localhost", "LocalHost", "[::1]", "ops.internal", "OPS.internal", "[::5]"]
      for (const host of hosts.flatMap((name) => [name, `${name}:${port}`])) {
        assert.strictEqual((yield* getAs(base, "/emails", host)).status, 200, host)
        assert.strictEqual((yield* getAs(base, "/healthz", host)).status, 200, host)
        assert.strictEqual((yield* getAs(base, "/no-such-path", host)).status, 404, host)
      }
    }))
})

describe("log lines about an event", () => {
  it.effect("carry its Message-ID, template, realm and attempt, and keep Zulip's wording in the message", () =>
    Effect.gen(function*() {
      const lines: Array<{ readonly message: string; readonly annotations: Record<string, unknown> }> = []
      const keepLines = Logger.layer([Logger.make(({ fiber, message }) => {
        lines.push({
          message: (Array.isArray(message) ? message : [message]).map(String).join(" "),
          annotations: fiber.getRef(References.CurrentLogAnnotations)
        })
      })])
      yield* Effect.gen(function*() {
        const smtp = yield* InMemorySmtp
        // the first event meets an outage, then a dropped connection, then goes out; the second is refused for good
        yield* smtp.failNext(1, new Unavailable({ message: "connection refused", dependency: "smtp" }))
        yield* smtp.failNext(1, new NotDelivered({ message: "Connection closed unexpectedly", smtpCode: null, response: null }))
        const queue = yield* InMemoryQueue
        const event = { template_prefix: "zerver/emails/password_reset", to_user_ids: [hamlet.id], realm_id: 2 }
        yield* queue.publish(JSON.stringify({ ...event, message_id: "first@zulip.example" }))
        const first = yield* (yield* QueueConsumer).take
        const settling = yield* Effect.forkChild(consumeBatch([first]))
        yield* TestClock.adjust("1 minute")
        yield* Fiber.join(settling)
        yield* smtp.failNext(1, new Rejected({ message: "550 unknown", smtpCode: 550, response: "550 unknown", recipients: [] }))
        yield* queue.publish(JSON.stringify({ ...event, message_id: "second@zulip.example", failed_tries: 2 }))
        const second = yield* (yield* QueueConsumer).take
        yield* consumeBatch([second])
      }).pipe(Effect.provide(Layer.mergeAll(inMemoryLayer, keepLines)))

      const about = (messageId: string) => lines.filter((line) => line.annotations["message_id"] === messageId)
      assert.deepStrictEqual(about("<first@zulip.example>").map(({ annotations, message }) => [message, annotations]), [
        [
          "smtp unavailable, waiting before trying again: connection refused",
          { template: "password_reset", realm_id: 2, failed_tries: 0, attempt: 1, message_id: "<first@zulip.example>", realm: "zulip" }
        ],
        [
          "Error sending password_reset email to 1 recipient(s): Connection closed unexpectedly",
          { template: "password_reset", realm_id: 2, failed_tries: 0, attempt: 1, message_id: "<first@zulip.example>", realm: "zulip" }
        ],
        [
          "Sent password_reset email to 1 recipient(s) in zulip",
          { template: "password_reset", realm_id: 2, failed_tries: 0, attempt: 2, message_id: "<first@zulip.example>", realm: "zulip" }
        ]
      ])
      assert.deepStrictEqual(about("<second@zulip.example>").map(({ annotations, message }) => [message, annotations]), [
        [
          "Error sending password_reset email to 1 recipient(s) with error code 550: 550 unknown",
          { template: "password_reset", realm_id: 2, failed_tries: 2, attempt: 1, message_id: "<second@zulip.example>", realm: "zulip" }
        ],
        [
          "Problem handling data on queue email_senders: Rejected: 550 unknown",
          { template: "password_reset", realm_id: 2, failed_tries: 2, attempt: 1, message_id: "<second@zulip.example>", realm: "zulip" }
        ]
      ])
      assert.strictEqual(lines.length, 5, "no line about either event goes without its context")
    }).pipe(Effect.provideService(WorkerSettings, { ...defaultWorkerSettings, retryBaseDelay: Duration.millis(100) })))
})
