/**
 * The worker on the live layers, end to end: RabbitMQ, Postgres realms, the template builder, the SMTP pool
 * against a loopback SMTP server, and the stats and errors files.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Redacted, References, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { randomUUID } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as ErrorsFile from "../src/records/ErrorsFile.ts"
import * as PostgresRealmRepository from "../src/realms/PostgresRealmRepository.ts"
import * as RabbitMqConsumer from "../src/queue/RabbitMqConsumer.ts"
import * as RabbitMqPublisher from "../src/queue/RabbitMqPublisher.ts"
import * as SesSuppressionList from "../src/smtp/SesSuppressionList.ts"
import * as SmtpPool from "../src/smtp/SmtpPool.ts"
import * as StatsFile from "../src/records/StatsFile.ts"
import * as ZulipEmailBuilder from "../src/email/ZulipEmailBuilder.ts"
import { migrateDatabase } from "../src/realms/migrateDatabase.ts"
import { runWorker } from "../src/pipeline/worker.ts"
import { QueuePublisher } from "../src/queue/QueuePublisher.ts"
import { defaultWorkerSettings, WorkerSettings } from "../src/config/WorkerSettings.ts"
import { closeConnectionsNamed, connectionOptions, makeAdmin, uniqueName } from "./support/rabbitmq.ts"
import { smtpServer, type SmtpTestServer } from "./support/smtpServer.ts"

const databaseUrl = Redacted.make("postgres://postgres@127.0.0.1:5432/test")

/** A schema of its own with one realm and two users, dropped at the end. */
const testRealms = Effect.gen(function*() {
  const schema = `es_e2e_${randomUUID().replaceAll("-", "").slice(0, 12)}`
  const admin = yield* Layer.build(PgClient.layer({ url: databaseUrl }))
  const sql = yield* SqlClient.SqlClient.pipe(Effect.provide(admin))
  yield* Effect.acquireRelease(sql`CREATE SCHEMA ${sql(schema)}`, () => Effect.orDie(sql`DROP SCHEMA ${sql(schema)} CASCADE`))
  const inSchema = { url: databaseUrl, startupParameters: { search_path: schema } }
  yield* Effect.gen(function*() {
    yield* migrateDatabase
    const db = yield* SqlClient.SqlClient
    yield* db`INSERT INTO zerver_realm (id, string_id, name) VALUES (2, 'zulip', 'Zulip Dev')`
    yield* db`INSERT INTO zerver_userprofile (id, realm_id, full_name, delivery_email, default_language)
      VALUES (10, 2, 'King Hamlet', 'hamlet@zulip.example', 'en'), (11, 2, 'Othello', 'othello@zulip.example', 'en')`
  }).pipe(Effect.provide(PgClient.layer(inSchema)))
  return inSchema
})

interface Harness {
  readonly server: SmtpTestServer
  readonly queue: string
  readonly connectionName: string
  readonly directory: string
  readonly publish: (event: Record<string, unknown>) => Effect.Effect<void>
  readonly errorLines: () => ReadonlyArray<string>
}

/** Starts everything, runs `body` with the worker running, then stops the worker gracefully. */
const withWorker = <A>(body: (harness: Harness) => Effect.Effect<A, unknown>) =>
  Effect.scoped(Effect.gen(function*() {
    const admin = yield* makeAdmin
    const server = yield* smtpServer()
    const realms = yield* testRealms
    const queue = uniqueName("e2e")
    admin.deleteAfter(queue)
    for (const delay of [200, 400, 800]) admin.deleteAfter(`${queue}.delay.${delay}`)
    const connectionName = uniqueName("e2e-worker")
    const directory = mkdtempSync(join(tmpdir(), "email-senders-e2e-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))

    const services = Layer.mergeAll(
      RabbitMqConsumer.layer({ queueName: queue, prefetch: 20, ...connectionOptions(connectionName) }),
      RabbitMqPublisher.layer({ queueName: queue, ...connectionOptions(`${connectionName}-publisher`) }),
      SmtpPool.layer({ host: server.host, port: server.port, connections: 2, timeout: "2 seconds", connectRetryDelay: "50 millis" }),
      SesSuppressionList.layerDisabled,
      PostgresRealmRepository.layer(realms),
      StatsFile.layer({ directory, queueName: queue }),
      ErrorsFile.layer({ directory, queueName: queue }),
      ZulipEmailBuilder.layer({ externalHost: "zulip.example" })
    )
    const settings = {
      ...defaultWorkerSettings,
      queueName: queue,
      retryBaseDelay: Duration.millis(50),
      retryMaxDelay: Duration.millis(200),
      requeueDelay: Duration.millis(200),
      outageMaxDelay: Duration.millis(500),
      batchTimeout: Duration.millis(100)
    }
    return yield* Effect.gen(function*() {
      const publisher = yield* QueuePublisher
      const worker = yield* Effect.forkChild(runWorker)
      yield* admin.awaitConsumer(queue)
      const result = yield* body({
        server,
        queue,
        connectionName,
        directory,
        publish: (event) => Effect.orDie(publisher.publishEmail(event)),
        errorLines: () => {
          try {
            return readFileSync(join(directory, `${queue}.errors`), "utf8").split("\n").filter((line) => line !== "")
          } catch {
            return []
          }
        }
      })
      yield* Fiber.interrupt(worker)
      return result
    }).pipe(
      Effect.provide(services),
      Effect.provideService(WorkerSettings, settings),
      // the worker logs every email; keep the test output to real problems
      Effect.provideService(References.MinimumLogLevel, "Error")
    )
  }))

/** Poll until `check` holds (the worker runs on real time here). */
const eventually = (what: string, check: () => boolean) =>
  Effect.suspend(() => check() ? Effect.void : Effect.fail(new Error(`not yet: ${what}`))).pipe(
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo({ duration: "20 seconds" }))),
    Effect.orDie
  )

describe("worker end to end on live services", () => {
  it.live("delivers a template event for realm users with Zulip's headers and both bodies; writes the stats file", () =>
    withWorker(({ directory, publish, queue, server }) =>
      Effect.gen(function*() {
        yield* publish({
          template_prefix: "zerver/emails/password_reset",
          to_user_ids: [10],
          from_name: "Zulip Account Security",
          from_address: "NO_REPLY",
          realm_id: 2,
          context: { reset_url: "https://zulip.example/reset/abc", unsubscribe_link: "https://zulip.example/unsub" },
          message_id: "e2e-1@zulip.example"
        })
        yield* eventually("message received", () => server.messages.length === 1)
        const [message] = server.messages
        assert.deepStrictEqual(message!.envelope, { from: "noreply@zulip.example", to: ["hamlet@zulip.example"] })
        assert.strictEqual(message!.header("Message-ID"), "<e2e-1@zulip.example>")
        assert.strictEqual(message!.header("From"), "Zulip Account Security <noreply@zulip.example>")
        assert.strictEqual(message!.header("To"), "King Hamlet <hamlet@zulip.example>")
        assert.strictEqual(message!.header("Reply-To"), "noreply@zulip.example")
        assert.strictEqual(message!.header("List-Id"), "Zulip Dev <zulip.zulip.example>")
        assert.strictEqual(message!.header("List-Unsubscribe"), "<https://zulip.example/unsub>")
        assert.strictEqual(message!.header("X-Auto-Response-Suppress"), "All")
        assert.isString(message!.header("Subject"))
        assert.include(message!.header("Content-Type") ?? "", "multipart/alternative")
        assert.include(message!.raw, "text/plain")
        assert.include(message!.raw, "text/html")
        assert.include(message!.raw.replace(/=\r\n/g, ""), "https://zulip.example/reset/abc")

        const statsPath = join(directory, `${queue}.stats`)
        yield* eventually("stats drained", () => {
          try {
            return JSON.parse(readFileSync(statsPath, "utf8")).recent_average_consume_time !== null
          } catch {
            return false
          }
        })
        const stats = JSON.parse(readFileSync(statsPath, "utf8"))
        assert.deepStrictEqual(Object.keys(stats), [
          "update_time", "recent_average_consume_time", "queue_last_emptied_timestamp", "consumed_since_last_emptied"
        ])
        assert.strictEqual(stats.consumed_since_last_emptied, 0)
        assert.isAtMost(Math.abs(stats.update_time - Date.now() / 1000), 60)
      })))

  it.live("renders every shipped template through the real SMTP path", () =>
    withWorker(({ errorLines, publish, server }) =>
      Effect.gen(function*() {
        const shipped = [
          ["invitation", { referrer_full_name: "Iago", referrer_email: "iago@zulip.example", referrer_realm_name: "Zulip Dev", activate_url: "https://zulip.example/join/abc" }, "Iago invited you to join Zulip Dev on Zulip"],
          ["confirm_new_email", { old_email: "old@zulip.example", new_email: "new@zulip.example", activate_url: "https://zulip.example/confirm/abc" }, "Confirm your new email address for Zulip"],
          ["password_reset", { email: "hamlet@zulip.example", reset_url: "https://zulip.example/reset/abc", realm_url: "https://zulip.zulip.example" }, null],
          ["notify_new_login", { realm_name: "Zulip Dev", device_browser: "Firefox", device_os: "Linux", device_ip: "192.0.2.1", login_time: "now", unsubscribe_link: "https://zulip.example/unsub" }, "New login to your Zulip account in Zulip Dev"]
        ] as const
        for (const [template, context] of shipped) {
          yield* publish({ template_prefix: `zerver/emails/${template}`, to_user_ids: [10], context, message_id: `${template}@e2e` })
        }
        yield* eventually("all shipped templates delivered", () => server.messages.length === shipped.length)
        for (const [template, context, subject] of shipped) {
          const message = server.messages.find((m) => m.header("Message-ID") === `<${template}@e2e>`)!
          if (subject !== null) assert.strictEqual(message.header("Subject"), subject)
          assert.isAbove((message.header("Subject") ?? "").length, 0, template)
          const body = message.raw.replace(/=\r\n/g, "")
          assert.include(body, "text/plain", template)
          assert.include(body, "text/html", template)
          const link = Object.values(context).find((value) => value.startsWith("https://zulip.example/"))
          if (link !== undefined) assert.include(body, link, template)
        }
        assert.deepStrictEqual(errorLines(), [])
      })))

  it.live("requeues a 451 (REQUEUE_DELAY) then delivers once; records a 550 once after a single attempt, in Zulip's errors format", () =>
    withWorker(({ directory, errorLines, publish, queue, server }) =>
      Effect.gen(function*() {
        server.failNextMessages(1, 451, "try again later")
        yield* publish({ subject: "Retry me", text: "body", to_emails: ["a@zulip.example"], message_id: "retry@e2e" })
        yield* eventually("requeued message received", () => server.messages.length === 1)
        assert.strictEqual(server.messages[0]!.header("Message-ID"), "<retry@e2e>")

        const mailBefore = server.commandCount("RCPT")
        yield* publish({ subject: "Reject me", text: "body", to_emails: ["nobody+550@zulip.example"], message_id: "reject@e2e" })
        yield* eventually("failure recorded", () => errorLines().length === 1)
        yield* Effect.sleep("300 millis")
        assert.strictEqual(server.commandCount("RCPT") - mailBefore, 1, "a 5xx is attempted once")
        assert.strictEqual(errorLines().length, 1, "recorded once")
        const [asctime, events, reason] = errorLines()[0]!.split("\t")
        assert.match(asctime!, /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$/)
        assert.deepStrictEqual(JSON.parse(events!), [{ subject: "Reject me", text: "body", to_emails: ["nobody+550@zulip.example"], message_id: "reject@e2e" }])
        const parsedReason = JSON.parse(reason!)
        assert.strictEqual(parsedReason.tag, "Rejected")
        assert.strictEqual(parsedReason.smtpCode, 550)
        assert.strictEqual(parsedReason.attempts, 1)
        assert.strictEqual(statSync(join(directory, `${queue}.errors`)).mode & 0o777, 0o600)
        assert.strictEqual(server.messages.length, 1)
      })))

  it.live("keeps delivering after the broker force-closes its connection, losing nothing", () =>
    withWorker(({ connectionName, errorLines, publish, server }) =>
      Effect.gen(function*() {
        const send = (n: number) => publish({ subject: `n${n}`, text: "body", to_emails: [`u${n}@zulip.example`], message_id: `conn-${n}@e2e` })
        for (let n = 0; n < 20; n++) yield* send(n)
        const closed = yield* closeConnectionsNamed(connectionName)
        assert.isAtLeast(closed, 1)
        for (let n = 20; n < 40; n++) yield* send(n)
        yield* eventually("all 40 delivered", () => new Set(server.messages.map((m) => m.header("Message-ID"))).size === 40)
        assert.deepStrictEqual(errorLines(), [])
      })))

  it.live("waits out an SMTP outage: nothing lost, nothing recorded as failed", () =>
    withWorker(({ errorLines, publish, server }) =>
      Effect.gen(function*() {
        yield* Effect.promise(() => server.stop())
        for (let n = 0; n < 10; n++) {
          yield* publish({ subject: `n${n}`, text: "body", to_emails: [`u${n}@zulip.example`], message_id: `outage-${n}@e2e` })
        }
        yield* Effect.sleep("1500 millis")
        assert.strictEqual(server.messages.length, 0)
        yield* Effect.promise(() => server.start())
        yield* eventually("all 10 delivered", () => new Set(server.messages.map((m) => m.header("Message-ID"))).size === 10)
        assert.deepStrictEqual(errorLines(), [])
      })))
})
