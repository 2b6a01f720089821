/**
 * How one delivery attempt meets real SMTP servers: long recipient lists split into transactions, servers that
 * never greet, the attempt deadline, and replies out of turn. The pool on its own, and the worker process with a
 * real broker.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, FileSystem, Redacted } from "effect"
import { join } from "node:path"
import { beforeAll } from "vitest"
import type { OutgoingEmail } from "../src/domain/OutgoingEmail.ts"
import * as SmtpPool from "../src/smtp/SmtpPool.ts"
import { withAttemptDeadline } from "../src/pipeline/attemptDeadline.ts"
import { SmtpConnection } from "../src/smtp/SmtpConnection.ts"
import { withCapturedLogs } from "./support/logCapture.ts"
import { buildCli, type CliEnv, startCli, waitUntil } from "./support/processes.ts"
import { makeAdmin } from "./support/rabbitmq.ts"
import { rawSmtpServer } from "./support/rawSmtpServer.ts"
import { smtpServer, type SmtpTestServer } from "./support/smtpServer.ts"

/** `count` addresses; a `+NNN` tag makes the test server refuse them with that code */
const addresses = (count: number, name = "user", tag = ""): Array<string> =>
  Array.from({ length: count }, (_, i) => `${name}${i}${tag}@many.example`)

const email = (to: ReadonlyArray<string>): OutgoingEmail => ({
  messageId: "<many-1@test.example>",
  envelope: { from: "noreply@test.example", to },
  from: "noreply@test.example",
  to,
  replyTo: [],
  subject: "Many recipients",
  text: "Hello",
  html: null,
  date: "Sun, 29 Nov 2026 10:15:30 +0000",
  headers: [],
  template: "test",
  realm: null
})

type Server = { readonly host: string; readonly port: number }

/** `use` with a pool for `server` (short timeouts), released when it ends. */
const withPool = <A, E>(
  server: Server,
  options: Partial<SmtpPool.SmtpPoolOptions>,
  use: (smtp: SmtpConnection["Service"]) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    return yield* use(yield* SmtpConnection)
  }).pipe(Effect.provide(SmtpPool.layer({
    host: server.host,
    port: server.port,
    timeout: "2 seconds",
    connectRetryDelay: "10 millis",
    ...options
  })))

const sendWithPool = (server: Server, message: OutgoingEmail, options: Partial<SmtpPool.SmtpPoolOptions> = {}) =>
  withPool(server, options, (smtp) => smtp.send(message))

const deliveredTo = (server: SmtpTestServer): Array<string> => server.messages.flatMap((message) => message.envelope.to)

/** A worker process on a fresh queue and errors directory, with short requeue delays (their queues deleted after). */
const startWorker = Effect.fnUntraced(function*(server: Server, env: CliEnv = {}) {
  const fs = yield* FileSystem.FileSystem
  const directory = yield* fs.makeTempDirectoryScoped({ prefix: "es-attempts-" })
  const admin = yield* makeAdmin
  const queue = yield* admin.declareQueue()
  for (const delay of [100, 200, 400]) admin.deleteAfter(`${queue}.delay.${delay}`)
  const worker = yield* startCli(["worker"], {
    QUEUE_NAME: queue,
    EMAIL_HOST: server.host,
    EMAIL_PORT: String(server.port),
    QUEUE_ERROR_DIR: directory,
    QUEUE_STATS_DIR: directory,
    REQUEUE_DELAY: "100 millis",
    LOG_LEVEL: "Warn",
    ...env
  })
  const errorsFile = join(directory, `${queue}.errors`)
  return {
    worker,
    publish: (event: object) => admin.publish(queue, JSON.stringify(event)),
    errors: fs.readFileString(errorsFile).pipe(Effect.orElseSucceed(() => ""))
  }
})

beforeAll(buildCli, 120_000)

describe("SMTP_MAX_RECIPIENTS", () => {
  it.live("10,000 recipients go to a server that takes 100 per transaction as 100 transactions of one message", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer({ maxRecipients: 100 })
      const report = yield* sendWithPool(server, email(addresses(10_000)))
      assert.strictEqual(report.accepted.length, 10_000)
      assert.deepStrictEqual(report.rejected, [])
      assert.strictEqual(server.messages.length, 100)
      assert.deepStrictEqual(new Set(deliveredTo(server)), new Set(addresses(10_000)))
      assert.deepStrictEqual(new Set(server.messages.map((message) => message.header("Message-ID"))), new Set(["<many-1@test.example>"]))
    }), 60_000)

  it.live("a transaction the server refuses refuses its recipients alone; the others are still sent", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      const [refused, first, second] = [addresses(2, "refused", "+550"), addresses(2, "first"), addresses(2, "second")]
      const report = yield* sendWithPool(server, email([...refused, ...first, ...second]), { maxRecipients: 2 })
      assert.deepStrictEqual(report.accepted, [...first, ...second])
      assert.deepStrictEqual(report.rejected.map(({ address, smtpCode }) => [address, smtpCode]), refused.map((address) => [address, 550]))
      assert.deepStrictEqual(deliveredTo(server), [...first, ...second])
    }))

  it.live("with no transaction accepted the message fails as a whole, by a refusal that may pass later if there is one", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      const refused = yield* Effect.flip(sendWithPool(server, email(addresses(4, "refused", "+550")), { maxRecipients: 2 }))
      assert.strictEqual(refused._tag, "Rejected")
      const deferred = [...addresses(2, "refused", "+550"), ...addresses(2, "later", "+452")]
      const error = yield* Effect.flip(sendWithPool(server, email(deferred), { maxRecipients: 2 }))
      assert.strictEqual(error._tag, "NotDelivered")
      assert.strictEqual(error._tag === "NotDelivered" ? error.smtpCode : null, 452)
      assert.deepStrictEqual(deliveredTo(server), [])
    }))

  it.live("a transaction that gets no reply ends the message: its recipients and the untried ones are deferred", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      const [first, dropped, untried] = [addresses(2, "first"), addresses(2, "dropped"), addresses(2, "untried")]
      server.dropNextMessages(1, 1)
      const report = yield* sendWithPool(server, email([...first, ...dropped, ...untried]), { maxRecipients: 2 })
      assert.deepStrictEqual(report.accepted, first)
      assert.deepStrictEqual(report.rejected.map(({ address, smtpCode }) => [address, smtpCode]), [...dropped, ...untried].map((address) => [address, null]))
      assert.deepStrictEqual(deliveredTo(server), first)
    }))

  for (const count of [1_050, 10_000]) {
    it.live(`the worker delivers ${count} to_emails through a 100-per-transaction server once each, with one Message-ID and no record`, () =>
      Effect.gen(function*() {
        const server = yield* smtpServer({ maxRecipients: 100 })
        const { worker, publish, errors } = yield* startWorker(server)
        yield* publish({ subject: "Many", text: "Hello", to_emails: addresses(count), message_id: "<many-2@test.example>" })
        yield* waitUntil(() => deliveredTo(server).length >= count, () => `${count} deliveries; worker output:\n${worker.output()}`, "30 seconds")
        assert.strictEqual(yield* worker.terminate, 0, worker.output())
        assert.strictEqual(server.messages.length, Math.ceil(count / 100))
        assert.strictEqual(deliveredTo(server).length, count)
        assert.deepStrictEqual(new Set(deliveredTo(server)), new Set(addresses(count)))
        assert.deepStrictEqual(new Set(server.messages.map((message) => message.header("Message-ID"))), new Set(["<many-2@test.example>"]))
        assert.strictEqual(yield* errors, "")
      }).pipe(Effect.provide(NodeFileSystem.layer)), 60_000)
  }

  it.live("recipients a server defers with 452 \"too many recipients\" get copies for them alone until all have it", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer({ maxRecipients: 100 })
      const { worker, publish, errors } = yield* startWorker(server, { SMTP_MAX_RECIPIENTS: "150" })
      yield* publish({ subject: "Many", text: "Hello", to_emails: addresses(1_050), message_id: "<many-3@test.example>" })
      yield* waitUntil(() => deliveredTo(server).length >= 1_050, () => `1,050 deliveries; worker output:\n${worker.output()}`, "30 seconds")
      assert.strictEqual(yield* worker.terminate, 0, worker.output())
      assert.deepStrictEqual(deliveredTo(server).length, 1_050)
      assert.deepStrictEqual(new Set(deliveredTo(server)), new Set(addresses(1_050)))
      // the 350 deferred in the first round come back as one copy (its own Message-ID), 100 of those once more
      const ids = server.messages.map((message) => message.header("Message-ID"))
      assert.strictEqual(ids.filter((id) => id === "<many-3@test.example>").length, 7)
      assert.strictEqual(new Set(ids).size, 3)
      assert.strictEqual(yield* errors, "")
    }).pipe(Effect.provide(NodeFileSystem.layer)), 60_000)
})

describe("a server that accepts connections but never greets", () => {
  it.live("is Unavailable for send and healthCheck, never a TimeoutError", () =>
    Effect.gen(function*() {
      const silent = yield* rawSmtpServer({ silent: true })
      const [sendError, checkError] = yield* withPool(silent, { timeout: "200 millis" }, (smtp) =>
        Effect.all([Effect.flip(smtp.send(email(["one@test.example"]))), Effect.flip(smtp.healthCheck)]))
      assert.strictEqual(sendError._tag, "Unavailable")
      assert.strictEqual(checkError._tag, "Unavailable")
      assert.include(sendError.message, "no answer within 200 ms")
      assert.strictEqual(silent.connections, 6)
    }))

  it.live("one that greets but never answers the login is Unavailable too", () =>
    Effect.gen(function*() {
      const server = yield* rawSmtpServer({ stallLogin: true })
      const error = yield* withPool(server, { timeout: "200 millis", user: "worker", password: Redacted.make("s3cret") }, (smtp) =>
        Effect.flip(smtp.send(email(["one@test.example"]))))
      assert.strictEqual(error._tag, "Unavailable")
      assert.include(error.message, "no answer within 200 ms")
      assert.strictEqual(server.messages.length, 0)
    }))

  const cuts = [
    { by: "EMAIL_TIMEOUT", env: { EMAIL_TIMEOUT: "0.2" }, logged: /smtp unavailable, waiting before trying again[^\n]*no answer within 200 ms/ },
    {
      // the deadline does not count the pool opening a connection: EMAIL_TIMEOUT and the 3 tries bound it
      by: "EMAIL_TIMEOUT, with a shorter attempt deadline",
      env: { EMAIL_TIMEOUT: "0.5", MAX_CONSUME_SECONDS: "0.2" },
      logged: /smtp unavailable, waiting before trying again[^\n]*no answer within 500 ms/
    }
  ]
  for (const { by, env, logged } of cuts) {
    it.live(`cut by ${by}, it is waited out by the worker: nothing requeued or recorded, and delivery resumes when a real server answers`, () =>
      Effect.gen(function*() {
        const silent = yield* rawSmtpServer({ silent: true })
        const { worker, publish, errors } = yield* startWorker(silent, {
          RETRY_BASE_DELAY: "50 millis",
          OUTAGE_MAX_DELAY: "200 millis",
          ...env
        })
        for (const n of [1, 2, 3]) {
          yield* publish({ subject: "Hi", text: "Hello", to_emails: [`user${n}@test.example`], message_id: `<silent-${n}@test.example>` })
        }
        yield* worker.waitForOutput(logged, "20 seconds")
        yield* waitUntil(() => silent.connections >= 20, "20 connections to the silent server", "20 seconds")
        yield* Effect.promise(silent.close)
        const server = yield* smtpServer({ port: silent.port })
        yield* waitUntil(() => server.messages.length >= 3, () => `3 deliveries; worker output:\n${worker.output()}`, "20 seconds")
        assert.strictEqual(yield* worker.terminate, 0, worker.output())
        assert.deepStrictEqual(
          server.messages.map((message) => message.header("Message-ID")).sort(),
          ["<silent-1@test.example>", "<silent-2@test.example>", "<silent-3@test.example>"]
        )
        assert.notInclude(worker.output(), "requeued")
        assert.notInclude(worker.output(), "TimeoutError")
        assert.notInclude(worker.output(), "attempt deadline")
        assert.strictEqual(yield* errors, "")
      }).pipe(Effect.provide(NodeFileSystem.layer)), 90_000)
  }
})

describe("the attempt deadline (MAX_CONSUME_SECONDS)", () => {
  const underDeadline = (
    millis: number,
    server: Server,
    options: Partial<SmtpPool.SmtpPoolOptions>,
    messages: ReadonlyArray<OutgoingEmail>
  ) =>
    withPool(server, options, (smtp) =>
      Effect.forEach(
        messages,
        (message) => Effect.result(smtp.send(message).pipe(withAttemptDeadline(Duration.millis(millis)))),
        { concurrency: "unbounded" }
      ))

  it.live("cutting a slow transaction is a TimeoutError, logged with the stage it cut", () =>
    withCapturedLogs((lines) =>
      Effect.gen(function*() {
        const server = yield* smtpServer({ messageDelayMillis: 1_000 })
        const [outcome] = yield* underDeadline(300, server, {}, [email(["one@test.example"])])
        assert.strictEqual(outcome?._tag, "Failure")
        const error = outcome?._tag === "Failure" ? outcome.failure : undefined
        assert.strictEqual(error?._tag, "TimeoutError")
        assert.include(error?.message, "cut at the stage \"SMTP transaction\"")
        assert.deepInclude(lines, {
          level: "Warn",
          message: "The attempt deadline of 300ms (MAX_CONSUME_SECONDS) cut the attempt at the stage \"SMTP transaction\""
        })
      })
    ))

  it.live("it does not cut the pool opening a connection: EMAIL_TIMEOUT and the 3 tries bound that, an outage (Unavailable)", () =>
    withCapturedLogs((lines) =>
      Effect.gen(function*() {
        const silent = yield* rawSmtpServer({ silent: true })
        const [outcome] = yield* underDeadline(300, silent, { timeout: "500 millis" }, [email(["one@test.example"])])
        const error = outcome?._tag === "Failure" ? outcome.failure : undefined
        assert.strictEqual(error?._tag, "Unavailable")
        assert.include(error?.message, "no answer within 500 ms")
        assert.strictEqual(silent.connections, 3)
        assert.isFalse(lines.some((line) => String(line.message).includes("attempt deadline")), JSON.stringify(lines))
      })
    ))

  it.live("cutting the NOOP check of an idle connection is an outage (Unavailable), logged as getting the connection ready", () =>
    withCapturedLogs((lines) =>
      Effect.gen(function*() {
        const server = yield* rawSmtpServer({ stallNoop: true })
        const outcomes = yield* withPool(server, { idleCheck: "100 millis" }, (smtp) =>
          Effect.gen(function*() {
            yield* smtp.send(email(["one@test.example"]))
            yield* Effect.sleep("200 millis")
            const cut = yield* Effect.result(smtp.send(email(["two@test.example"])).pipe(withAttemptDeadline(Duration.millis(300))))
            // the connection whose check was cut is not reused
            const next = yield* Effect.result(smtp.send(email(["three@test.example"])))
            return [cut, next]
          }))
        const [cut, next] = outcomes
        const error = cut?._tag === "Failure" ? cut.failure : undefined
        assert.strictEqual(error?._tag, "Unavailable")
        assert.deepInclude(lines, {
          level: "Warn",
          message: "The attempt deadline of 300ms (MAX_CONSUME_SECONDS) cut the attempt at the stage \"getting the connection ready\""
        })
        assert.strictEqual(next?._tag, "Success")
        assert.deepStrictEqual(server.messages.map((message) => message.to), [["one@test.example"], ["three@test.example"]])
        assert.strictEqual(server.connections, 2)
      })
    ))

  it.live("waiting for the one pooled connection other sends hold does not count against it", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer({ messageDelayMillis: 200 })
      const messages = [1, 2, 3, 4].map((n) => email([`user${n}@test.example`]))
      const outcomes = yield* underDeadline(600, server, { connections: 1 }, messages)
      // the fourth waits about 600 ms for the connection, then takes about 200 ms
      assert.deepStrictEqual(outcomes.map((outcome) => outcome._tag), ["Success", "Success", "Success", "Success"])
      assert.strictEqual(server.messages.length, 4)
    }))

  it.live("it stops once one transaction of a split message is accepted: cutting it then would send that one again", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer({ messageDelayMillis: 200 })
      const [outcome] = yield* underDeadline(500, server, { maxRecipients: 2 }, [email(addresses(10))])
      assert.strictEqual(outcome?._tag, "Success")
      assert.deepStrictEqual(outcome?._tag === "Success" ? outcome.success.accepted : [], addresses(10))
      assert.strictEqual(server.messages.length, 5)
    }))

  it.live("the worker with one SMTP connection and a slow server delivers every event once, none requeued", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer({ messageDelayMillis: 300 })
      const { worker, publish, errors } = yield* startWorker(server, {
        SMTP_CONNECTIONS: "1",
        CONCURRENCY: "8",
        MAX_CONSUME_SECONDS: "1"
      })
      for (const n of [1, 2, 3, 4, 5, 6, 7, 8]) {
        yield* publish({ subject: "Hi", text: "Hello", to_emails: [`user${n}@test.example`], message_id: `<slow-${n}@test.example>` })
      }
      yield* waitUntil(() => server.messages.length >= 8, () => `8 deliveries; worker output:\n${worker.output()}`, "30 seconds")
      assert.strictEqual(yield* worker.terminate, 0, worker.output())
      assert.strictEqual(server.messages.length, 8)
      assert.notInclude(worker.output(), "requeued")
      assert.notInclude(worker.output(), "attempt deadline")
      assert.strictEqual(yield* errors, "")
    }).pipe(Effect.provide(NodeFileSystem.layer)), 60_000)
})

describe("a server that sends a reply out of turn (a second 250 after a message's own)", () => {
  const sendInTurn = (server: Server, count: number) =>
    withPool(server, { connections: 1 }, (smtp) =>
      Effect.forEach(Array.from({ length: count }, (_, n) => n + 1), (n) =>
        smtp.send({ ...email([`user${n}@test.example`]), messageId: `<turn-${n}@test.example>` })))

  for (const [when, extraReplyLate] of [["with it", false], ["after the next command went out", true]] as const) {
    it.live(`sent ${when}: each message is delivered once, reported with its own reply, and the connection is not reused`, () =>
      Effect.gen(function*() {
        const server = yield* rawSmtpServer({ extraReply: "250 OK again", extraReplyLate })
        const reports = yield* sendInTurn(server, 6)
        assert.deepStrictEqual(reports.map((report) => report.response), [1, 2, 3, 4, 5, 6].map((n) => `250 OK: queued as ${n}`))
        assert.deepStrictEqual(server.messages.map((message) => message.to), [1, 2, 3, 4, 5, 6].map((n) => [`user${n}@test.example`]))
        assert.isAbove(server.connections, 1)
      }))
  }

  it.live("left over after a message, it is noticed before the next one: that one's refusals are its own", () =>
    Effect.gen(function*() {
      const server = yield* rawSmtpServer({ extraReply: "250 OK again" })
      const [first, second] = yield* withPool(server, { connections: 1 }, (smtp) =>
        Effect.all([smtp.send(email(["user1@test.example"])), smtp.send(email(["refused@test.example", "user2@test.example"]))]))
      assert.deepStrictEqual(first.accepted, ["user1@test.example"])
      assert.deepStrictEqual(second.accepted, ["user2@test.example"])
      assert.deepStrictEqual(second.rejected.map(({ address, smtpCode }) => [address, smtpCode]), [["refused@test.example", 550]])
      assert.strictEqual(server.connections, 2)
    }))

  it.live("the worker delivers each event exactly once", () =>
    Effect.gen(function*() {
      const server = yield* rawSmtpServer({ extraReply: "250 OK again", extraReplyLate: true })
      const { worker, publish, errors } = yield* startWorker(server, { SMTP_CONNECTIONS: "1", SEND_ATTEMPTS: "3" })
      const ids = Array.from({ length: 10 }, (_, n) => `<twice-${n}@test.example>`)
      for (const [n, id] of ids.entries()) {
        yield* publish({ subject: "Hi", text: "Hello", to_emails: [`user${n}@test.example`], message_id: id })
      }
      yield* waitUntil(() => server.messages.length >= 10, () => `10 deliveries; worker output:\n${worker.output()}`, "30 seconds")
      // a duplicate would follow within the retry delays
      yield* Effect.sleep("2 seconds")
      assert.strictEqual(yield* worker.terminate, 0, worker.output())
      const delivered = server.messages.map((message) => /^Message-ID: (.*)$/im.exec(message.text)?.[1])
      assert.deepStrictEqual([...delivered].sort(), [...ids].sort())
      assert.notInclude(worker.output(), "requeued")
      assert.strictEqual(yield* errors, "")
    }).pipe(Effect.provide(NodeFileSystem.layer)), 60_000)
})
