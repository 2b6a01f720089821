/**
 * The built CLI as real processes: graceful SIGTERM, competing workers on one queue, secrets kept out of the
 * output, span export over OTLP, and SES's suppression list.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { connect } from "amqplib"
import { Effect, FileSystem, Redacted } from "effect"
import { readFileSync } from "node:fs"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import { join } from "node:path"
import { beforeAll } from "vitest"
import * as Tracing from "../src/operations/Tracing.ts"
import { closedPort, fakeSes } from "./support/fakeSes.ts"
import { buildCli, type CliEnv, runCli, startCli, terminated, waitUntil } from "./support/processes.ts"
import { brokerUser, makeAdmin } from "./support/rabbitmq.ts"
import { smtpServer, type SmtpTestServer } from "./support/smtpServer.ts"
import { workerEnv, workerSetup } from "./support/workerSetup.ts"

const brokerUrl = "amqp://guest:guest@127.0.0.1:5672"

/** One broker connection for the test: bulk publishing with confirms, and the consumer count of a queue. */
const makeBroker = Effect.gen(function*() {
  const connection = yield* Effect.acquireRelease(
    Effect.promise(() => connect(brokerUrl)),
    (connection) => Effect.promise(() => connection.close())
  )
  const channel = yield* Effect.promise(() => connection.createConfirmChannel())
  return {
    publishAll: (queue: string, bodies: ReadonlyArray<string>) =>
      Effect.promise(async () => {
        for (const body of bodies) channel.sendToQueue(queue, Buffer.from(body), { persistent: true })
        await channel.waitForConfirms()
      }),
    consumerCount: (queue: string) => Effect.promise(() => channel.checkQueue(queue)).pipe(Effect.map((ok) => ok.consumerCount))
  }
})

/** Pre-rendered events with a Message-ID of their own, so each delivery is recognisable at the SMTP server. */
const preRenderedEvents = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, n) =>
    JSON.stringify({
      subject: `Event ${n}`,
      text: "Hello from the processes test",
      to_emails: [`user${n % 50}@zulip.example`],
      message_id: `${prefix}-${n}@processes.test`
    }))

const messageIds = (smtp: SmtpTestServer) => smtp.messages.map((message) => message.header("message-id") ?? "")

/** What each worker test starts from: a scratch directory, an SMTP server, a queue of its own, and a broker. */
const setup = (prefix: string) =>
  Effect.gen(function*() {
    const base = yield* workerSetup(prefix)
    return { ...base, broker: yield* makeBroker }
  })

beforeAll(buildCli, 120_000)

describe("worker processes", () => {
  it.live("SIGTERM mid-run: exits 0 within SHUTDOWN_TIMEOUT; after a restart every event is delivered", () =>
    Effect.gen(function*() {
      const { admin, broker, directory, queue, smtp } = yield* setup("es-sigterm-")
      const total = 1000
      const shutdownTimeoutSeconds = 20
      const concurrency = 32
      yield* broker.publishAll(queue, preRenderedEvents("sigterm", total))
      const env = workerEnv(queue, smtp, directory, {
        SHUTDOWN_TIMEOUT: String(shutdownTimeoutSeconds),
        CONCURRENCY: String(concurrency)
      })

      const first = yield* startCli(["worker"], env)
      yield* waitUntil(() => smtp.messages.length >= 50, () => `deliveries to start; output:\n${first.output()}`, "90 seconds")
      const signalledAt = Date.now()
      const exitCode = yield* terminated(first)
      const stoppedAfterMillis = Date.now() - signalledAt
      assert.strictEqual(exitCode, 0, first.output())
      assert.isAtMost(stoppedAfterMillis, shutdownTimeoutSeconds * 1000)
      assert.include(first.output(), `Worker disconnecting from queue ${queue}`)
      const deliveredBeforeRestart = smtp.messages.length
      assert.isBelow(deliveredBeforeRestart, total, "the SIGTERM came while events were still flowing")

      const second = yield* startCli(["worker"], env)
      yield* waitUntil(
        () => new Set(messageIds(smtp)).size === total,
        () => `all ${total} events delivered (${new Set(messageIds(smtp)).size} so far)`,
        "120 seconds"
      )
      assert.strictEqual(yield* terminated(second), 0, second.output())
      const ids = messageIds(smtp)
      const expected = Array.from({ length: total }, (_, n) => `<sigterm-${n}@processes.test>`)
      assert.sameMembers([...new Set(ids)], expected, "0 lost")
      // an email the server took just as the first worker stopped is the only possible duplicate
      const duplicates = ids.length - total
      assert.isAtMost(duplicates, concurrency, `duplicates: ${duplicates}`)
      assert.strictEqual(yield* admin.messageCount(queue), 0)
    }).pipe(Effect.provide(NodeFileSystem.layer)), 300_000)

  it.live("3 worker processes on one queue deliver 3,000 events exactly once between them", () =>
    Effect.gen(function*() {
      const { admin, broker, directory, queue, smtp } = yield* setup("es-competing-")
      const total = 3000
      const env = workerEnv(queue, smtp, directory)
      const workers = yield* Effect.forEach([1, 2, 3], () => startCli(["worker"], env))
      yield* waitUntil(
        () => broker.consumerCount(queue).pipe(Effect.map((count) => count === 3)),
        () => `3 consumers on ${queue}; outputs:\n${workers.map((worker) => worker.output()).join("\n")}`,
        "90 seconds"
      )
      yield* broker.publishAll(queue, preRenderedEvents("competing", total))
      yield* waitUntil(
        () => smtp.messages.length >= total,
        () => `${total} deliveries (${smtp.messages.length} so far)`,
        "120 seconds"
      )
      const exitCodes = yield* Effect.forEach(workers, terminated, { concurrency: "unbounded" })
      assert.deepStrictEqual(exitCodes, [0, 0, 0])
      const ids = messageIds(smtp)
      assert.strictEqual(ids.length, total, "no email sent twice")
      assert.sameMembers(ids, Array.from({ length: total }, (_, n) => `<competing-${n}@processes.test>`))
      const sentBy = workers.map((worker) => worker.stdout().split("\n").filter((log) => log.includes("\"message\":\"Sent ")).length)
      assert.strictEqual(sentBy.reduce((sum, count) => sum + count, 0), total, `sent per process: ${sentBy.join(", ")}`)
      assert.isTrue(sentBy.every((count) => count > 0), `every process took a share: ${sentBy.join(", ")}`)
      assert.strictEqual(yield* admin.messageCount(queue), 0)
    }).pipe(Effect.provide(NodeFileSystem.layer)), 300_000)
})

describe("secrets", () => {
  it.live("never appear in the output of the worker, publish or stats, on their error paths included", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "es-secrets-" })
      const secret = (label: string) => `${label}${randomUUID().replaceAll("-", "")}`
      const secrets = {
        amqp: secret("AmqpPw"),
        wrongAmqp: secret("WrongAmqpPw"),
        smtp: secret("SmtpPw"),
        database: secret("DbPw")
      }
      const user = yield* brokerUser(secrets.amqp)
      const goodAmqpUrl = `amqp://${user}:${secrets.amqp}@127.0.0.1:5672`
      const refusedAmqpUrl = `amqp://${user}:${secrets.wrongAmqp}@127.0.0.1:5672`
      const smtp = yield* smtpServer({ auth: { user: "mailer", password: "the-password-the-server-wants" } })
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const outputs: Array<string> = []

      const worker = yield* startCli(["worker"], workerEnv(queue, smtp, directory, {
        AMQP_URL: goodAmqpUrl,
        EMAIL_HOST_USER: "mailer",
        EMAIL_HOST_PASSWORD: secrets.smtp,
        // nothing listens on port 1: every realm lookup meets a database outage
        DATABASE_URL: `postgres://postgres:${secrets.database}@127.0.0.1:1/test`,
        SHUTDOWN_TIMEOUT: "2",
        LOG_LEVEL: "Debug"
      }))
      // a publisher whose login the broker refuses keeps retrying (and logging) until it is stopped
      const refused = yield* startCli(["publish"], { AMQP_URL: refusedAmqpUrl, QUEUE_NAME: queue, LOG_LEVEL: "Debug" })
      refused.endInput(JSON.stringify({ subject: "Hi", text: "t", to_emails: ["a@zulip.example"] }))
      const publishes = yield* Effect.forEach([
        { subject: "Hi", text: "needs SMTP", to_emails: ["someone@zulip.example"] },
        { template_prefix: "zerver/emails/password_reset", to_user_ids: [10], realm_id: 2, context: {} }
      ], (event) =>
        runCli(["publish"], { AMQP_URL: goodAmqpUrl, QUEUE_NAME: queue, LOG_LEVEL: "Debug" }, {
          stdin: JSON.stringify(event)
        }), { concurrency: "unbounded" })
      for (const published of publishes) {
        assert.strictEqual(published.exitCode, 0, published.output)
        outputs.push(published.output)
      }
      yield* refused.waitForOutput("ACCESS_REFUSED", "90 seconds")
      yield* worker.waitForOutput("535", "90 seconds")
      yield* worker.waitForOutput("database unavailable", "90 seconds")
      yield* terminated(refused)
      outputs.push(refused.output())

      const statsDirectory = join(directory, "queue_stats")
      const stats = yield* runCli(["stats"], { AMQP_URL: refusedAmqpUrl, QUEUE_NAME: queue, QUEUE_STATS_DIR: statsDirectory })
      assert.strictEqual(stats.exitCode, 3, stats.output)
      assert.include(stats.stdout, "cannot read the queue depth")
      outputs.push(stats.output)

      yield* terminated(worker)
      outputs.push(worker.output())
      const everything = outputs.join("\n")
      assert.include(everything, "***", "URLs are logged, with their password masked")
      for (const [name, value] of Object.entries(secrets)) {
        assert.notInclude(everything, value, `the ${name} password leaked`)
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)), 300_000)
})

/** A collector stand-in: records the body of every OTLP/HTTP POST. */
const otlpCollector = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ readonly url: string; readonly requests: Array<{ readonly path: string; readonly body: string }>; readonly close: () => void }>(
      (resolve) => {
        const requests: Array<{ readonly path: string; readonly body: string }> = []
        const server = createServer((request, response) => {
          const chunks: Array<Buffer> = []
          request.on("data", (chunk: Buffer) => chunks.push(chunk))
          request.on("end", () => {
            requests.push({ path: request.url ?? "", body: Buffer.concat(chunks).toString("utf8") })
            response.writeHead(200, { "content-type": "application/json" }).end("{}")
          })
        })
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          const port = typeof address === "object" && address !== null ? address.port : 0
          resolve({ url: `http://127.0.0.1:${port}`, requests, close: () => server.close() })
        })
      }
    )
  ),
  (collector) => Effect.sync(collector.close)
)

interface ExportedSpans {
  readonly resourceSpans: ReadonlyArray<{
    readonly resource: { readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: { readonly stringValue?: string } }> }
    readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<{ readonly name: string }> }>
  }>
}

describe("tracing", () => {
  it("posts spans to <OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces and reads OpenTelemetry's header list", () => {
    assert.strictEqual(Tracing.tracesUrl(new URL("http://collector:4318")), "http://collector:4318/v1/traces")
    assert.strictEqual(Tracing.tracesUrl(new URL("https://otel.example/base/")), "https://otel.example/base/v1/traces")
    const headers = Tracing.parseHeaderList("x-api-key=abc%3D%3D, x-team = mail ,broken")
    assert.deepStrictEqual(Object.keys(headers), ["x-api-key", "x-team"])
    assert.strictEqual(Redacted.value(headers["x-api-key"]!), "abc==")
    assert.strictEqual(Redacted.value(headers["x-team"]!), "mail")
  })

  it.live("with OTEL_EXPORTER_OTLP_ENDPOINT set, the worker's delivery spans reach the collector", () =>
    Effect.gen(function*() {
      const { broker, directory, queue, smtp } = yield* setup("es-tracing-")
      const collector = yield* otlpCollector
      const worker = yield* startCli(["worker"], workerEnv(queue, smtp, directory, {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_SERVICE_NAME: "email-senders-under-test"
      }))
      yield* broker.publishAll(queue, preRenderedEvents("traced", 3))
      yield* waitUntil(() => smtp.messages.length === 3, () => `3 deliveries; output:\n${worker.output()}`, "90 seconds")
      // the exporter sends what it still holds when the worker stops
      assert.strictEqual(yield* terminated(worker), 0, worker.output())
      const exports = collector.requests.map((request) => {
        assert.strictEqual(request.path, "/v1/traces")
        return JSON.parse(request.body) as ExportedSpans
      })
      const resourceSpans = exports.flatMap((body) => body.resourceSpans)
      const names = resourceSpans.flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans.map((span) => span.name)))
      assert.strictEqual(names.filter((name) => name === "settleDelivery").length, 3, names.join(", "))
      assert.strictEqual(names.filter((name) => name === "SmtpPool.send").length, 3, names.join(", "))
      assert.include(names, "runWorker")
      const serviceNames = resourceSpans.map((resource) =>
        resource.resource.attributes.find((attribute) => attribute.key === "service.name")?.value.stringValue
      )
      assert.isTrue(serviceNames.every((name) => name === "email-senders-under-test"), serviceNames.join(", "))
    }).pipe(Effect.provide(NodeFileSystem.layer)), 240_000)
})

/** What a running process was started with: its command line and its environment, from /proc. */
const commandLineOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((part) => part !== "")
const environmentOf = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")

/** The `heap_limit_mb` of the worker's "email-senders starting" line; fails unless there is exactly one such line. */
const startingHeapLimitMb = (output: string): number => {
  const lines = output.split("\n").filter((line) => line.includes("\"email-senders starting\""))
  assert.strictEqual(lines.length, 1, output)
  return (JSON.parse(lines[0]!) as { annotations: { heap_limit_mb: number } }).annotations.heap_limit_mb
}

describe("heap", () => {
  it.live("with no heap flags given, the worker replaces its process with one that grows its heap slowly, and delivers", () =>
    Effect.gen(function*() {
      const { broker, directory, queue, smtp } = yield* setup("es-heap-")
      const worker = yield* startCli(["worker"], workerEnv(queue, smtp, directory))
      yield* worker.waitForOutput("email-senders starting")
      // the same process (its pid is the one started), now running with a 40 % growth and two malloc arenas, under
      // the limit V8 gives this host (24 GB: a 4 GB old generation)
      assert.include(commandLineOf(worker.pid), "--heap-growing-percent=40")
      assert.isFalse(commandLineOf(worker.pid).some((part) => part.startsWith("--max-old-space-size")))
      assert.include(environmentOf(worker.pid), "MALLOC_ARENA_MAX=2")
      const limitMb = startingHeapLimitMb(worker.output())
      assert.isTrue(limitMb >= 2048, `heap_limit_mb ${limitMb}`)
      yield* broker.publishAll(queue, preRenderedEvents("heap", 2))
      yield* waitUntil(() => smtp.messages.length === 2, () => `2 deliveries; output:\n${worker.output()}`, "90 seconds")
      assert.strictEqual(yield* terminated(worker), 0, worker.output())
      assert.notInclude(worker.output(), "heap limit")
      // the process was replaced before the services were built: their start-up warning (no REALMS_FILE) came once
      assert.strictEqual(worker.output().split("no realms file").length - 1, 1, worker.output())
    }).pipe(Effect.provide(NodeFileSystem.layer)), 180_000)

  it.live("a heap size the operator gave is kept as it is, with a warning when the settings may need more", () =>
    Effect.gen(function*() {
      const { directory, queue, smtp } = yield* setup("es-heap-given-")
      const worker = yield* startCli(["worker"], workerEnv(queue, smtp, directory, {
        NODE_OPTIONS: "--max-old-space-size=200",
        CONCURRENCY: "300"
      }))
      yield* worker.waitForOutput("email-senders starting")
      assert.isFalse(commandLineOf(worker.pid).some((part) => part.startsWith("--heap-growing-percent")))
      assert.notInclude(environmentOf(worker.pid), "MALLOC_ARENA_MAX=2")
      // V8's limit counts the young generation too
      const limitMb = startingHeapLimitMb(worker.output())
      assert.isTrue(limitMb >= 200 && limitMb < 300, `heap_limit_mb ${limitMb}`)
      assert.include(
        worker.output(),
        `the heap limit (${limitMb} MB) is below the 490 MB that CONCURRENCY (300) × 3 × MAX_EVENT_BYTES (524288) + 40 MB may need`
      )
      assert.strictEqual(yield* terminated(worker), 0, worker.output())
    }).pipe(Effect.provide(NodeFileSystem.layer)), 180_000)
})

describe("SES suppression list", () => {
  /** SES's suppression list on, relayed through the test's SMTP server, with the SESv2 API at `endpoint`. */
  const sesEnv = (endpoint: string): CliEnv => ({
    SES_SUPPRESSION_REGION: "us-east-1",
    AWS_ENDPOINT_URL_SESV2: endpoint,
    AWS_ACCESS_KEY_ID: "AKIDPROCESSESTEST",
    AWS_SECRET_ACCESS_KEY: "not-a-real-secret",
    // never probe for an instance role from a test
    AWS_EC2_METADATA_DISABLED: "true"
  })
  const event = (messageId: string, toEmails: ReadonlyArray<string>, removeSuppressed?: boolean) =>
    JSON.stringify({
      subject: "Confirm your email",
      text: "Hello from the SES test",
      to_emails: toEmails,
      message_id: `${messageId}@processes.test`,
      ...(removeSuppressed === undefined ? {} : { remove_suppressed_destination: removeSuppressed })
    })

  it.live("removes the recipients of an event that asks, by their bare addresses, before its email is sent", () =>
    Effect.gen(function*() {
      const { broker, directory, queue, smtp } = yield* setup("es-ses-")
      const ses = yield* fakeSes()
      const worker = yield* startCli(["worker"], workerEnv(queue, smtp, directory, sesEnv(ses.url)))
      yield* broker.publishAll(queue, [
        event("asks", ["King Hamlet <hamlet@zulip.example>", "othello@zulip.example"], true),
        event("does-not-ask", ["iago@zulip.example"], false),
        event("says-nothing", ["cordelia@zulip.example"])
      ])
      yield* waitUntil(() => smtp.messages.length === 3, () => `3 deliveries; output:\n${worker.output()}`, "90 seconds")
      assert.sameMembers(ses.requests.map((request) => request.address), ["hamlet@zulip.example", "othello@zulip.example"])
      for (const request of ses.requests) {
        assert.strictEqual(request.method, "DELETE")
        assert.match(request.authorization ?? "", /^AWS4-HMAC-SHA256 Credential=AKIDPROCESSESTEST\/\d{8}\/us-east-1\/ses\/aws4_request, /)
      }
      const asked = smtp.messages.find((message) => message.header("message-id") === "<asks@processes.test>")
      assert.sameMembers([...asked!.envelope.to], ["hamlet@zulip.example", "othello@zulip.example"])
      assert.strictEqual(yield* terminated(worker), 0, worker.output())
      assert.include(worker.output(), "Removed 2 recipient(s) from the SES suppression list")
      assert.include(worker.output(), "\"ses_suppression_list\":\"us-east-1\"", "the start-up line says it is on")
    }).pipe(Effect.provide(NodeFileSystem.layer)), 120_000)

  it.live("with the SES API unreachable the email is still delivered, and the warning names no address", () =>
    Effect.gen(function*() {
      const { broker, directory, queue, smtp } = yield* setup("es-ses-down-")
      const port = yield* closedPort
      const worker = yield* startCli(["worker"], workerEnv(queue, smtp, directory, sesEnv(`http://127.0.0.1:${port}`)))
      yield* broker.publishAll(queue, [event("ses-down", ["hamlet@zulip.example"], true)])
      yield* waitUntil(() => smtp.messages.length === 1, () => `the delivery; output:\n${worker.output()}`, "90 seconds")
      assert.strictEqual(yield* terminated(worker), 0, worker.output())
      const warning = worker.output().split("\n").find((line) => line.includes("SES suppression list"))
      assert.include(warning, "Could not remove 1 of 1 recipient(s) from the SES suppression list (ECONNREFUSED); sending anyway")
      assert.notInclude(worker.output(), "hamlet@zulip.example")
    }).pipe(Effect.provide(NodeFileSystem.layer)), 120_000)
})
