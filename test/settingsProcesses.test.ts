/**
 * Every command of the built CLI as a real process, against the machine's RabbitMQ and PostgreSQL, with secrets in
 * every setting that can hold one: `AMQP_URL` (as a URL, without a scheme, as `amqp:user:password@`),
 * `DATABASE_URL` (`?password=`), `EMAIL_HOST_PASSWORD`, `OTEL_EXPORTER_OTLP_HEADERS` and the collector's URL. No
 * secret may appear anywhere in the output, in success runs and failure runs. A malformed setting ends a command
 * at once with exit 1 (`stats`: 3, Nagios's UNKNOWN) and one line naming the setting.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { execFile } from "node:child_process"
import { randomUUID } from "node:crypto"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll } from "vitest"
import { closedPort } from "./support/fakeSes.ts"
import { buildCli, type CliEnv, type CliResult, runCli, startCli, terminated, waitUntil } from "./support/processes.ts"
import { addBrokerUser, deleteBrokerUser, makeAdmin, uniqueName } from "./support/rabbitmq.ts"
import { smtpServer } from "./support/smtpServer.ts"

const secretValue = (label: string) => `${label}${randomUUID().replaceAll("-", "").slice(0, 16)}`

const secrets = {
  amqp: secretValue("AmqpPw"),
  wrongAmqp: secretValue("WrongAmqpPw"),
  database: secretValue("DbPw"),
  smtp: secretValue("SmtpPw"),
  otelHeader: secretValue("OtelHeader"),
  otelUrl: secretValue("OtelUrlPw")
}

const schema = uniqueName("es_settings")
/** Run one SQL command in the test database; its output unaligned, without headers. */
const psql = (command: string) =>
  promisify(execFile)("psql", ["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qAtc", command])

let brokerUser = ""
let collectorPort = 0

beforeAll(async () => {
  await buildCli()
  brokerUser = await addBrokerUser(secrets.amqp)
  await psql(`CREATE SCHEMA ${schema}`)
  collectorPort = await Effect.runPromise(closedPort)
}, 120_000)

afterAll(async () => {
  await deleteBrokerUser(brokerUser)
  await psql(`DROP SCHEMA ${schema} CASCADE`)
})

const amqpUrl = (password = secrets.amqp) => `amqp://${brokerUser}:${password}@127.0.0.1:5672`
/** Postgres trusts loopback here, so the password in the query is sent and ignored; the schema is the test's own. */
const databaseUrl = (port = 5432) =>
  `postgresql://postgres@127.0.0.1:${port}/test?password=${secrets.database}&options=-c%20search_path%3D${schema}`

/**
 * The secret-holding settings every run gets, whether the command reads them or not; spans go to a collector
 * that is not there, so the exporter's failure is on the output too (at `Debug`, in the worker's run).
 */
const secretSettings = (): CliEnv => ({
  LOG_LEVEL: "Debug",
  EMAIL_HOST_USER: "mailer",
  EMAIL_HOST_PASSWORD: secrets.smtp,
  OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}/?token=${secrets.otelUrl}`,
  OTEL_EXPORTER_OTLP_HEADERS: `x-collector-token=${secrets.otelHeader}`
})

const run = (args: ReadonlyArray<string>, env: CliEnv, options: { readonly stdin?: string } = {}) =>
  runCli(args, { ...secretSettings(), ...env }, options)

const assertNoSecret = (output: string, what: string) => {
  for (const [name, value] of Object.entries(secrets)) assert.notInclude(output, value, `${what}: the ${name} secret leaked`)
}

/** Exit `code` with the output one line naming `setting`, and no secret in it. */
const assertRefusedSetting = (result: CliResult, setting: string, code = 1) => {
  assert.strictEqual(result.exitCode, code, result.output)
  const lines = result.output.trim().split("\n")
  assert.lengthOf(lines, 1, result.output)
  assert.include(lines[0], setting)
  assertNoSecret(result.output, setting)
}

/** `AMQP_URL` values that are no URL the broker takes, each holding the password (the user exists once started). */
const malformedAmqpUrls = () => ({
  "without a scheme": `${brokerUser}:${secrets.amqp}@127.0.0.1:5672`,
  "as amqp:user:password@": `amqp:${brokerUser}:${secrets.amqp}@127.0.0.1:5672`,
  "with http://": `http://${brokerUser}:${secrets.amqp}@127.0.0.1:5672`
})

const event = { subject: "Settings test", text: "Hello", to_emails: ["someone@zulip.example"] }

/** `args` with a malformed `DATABASE_URL` (exit 1, one line naming it) and an unreachable one (exit 1); no secret. */
const databaseFailures = (args: ReadonlyArray<string>, stdin = "") =>
  Effect.gen(function*() {
    const malformed = `mysql://root:${secrets.database}@127.0.0.1/zulip`
    assertRefusedSetting(yield* run(args, { DATABASE_URL: malformed }, { stdin }), "DATABASE_URL")
    const unreachable = yield* run(args, { DATABASE_URL: databaseUrl(collectorPort) }, { stdin })
    assert.strictEqual(unreachable.exitCode, 1, unreachable.output)
    assertNoSecret(unreachable.output, `${args.join(" ")} without its database`)
  })

const scratchDirectory = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "es-settings-" }))

describe("the worker", () => {
  it.live("delivers with secrets in every setting, and prints none of them; URLs are shown with ***", () =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const directory = yield* scratchDirectory
      const smtp = yield* smtpServer({ auth: { user: "mailer", password: secrets.smtp } })
      const worker = yield* startCli(["worker"], {
        ...secretSettings(),
        AMQP_URL: amqpUrl(),
        QUEUE_NAME: queue,
        DATABASE_URL: databaseUrl(),
        EMAIL_HOST: smtp.host,
        EMAIL_PORT: String(smtp.port),
        QUEUE_STATS_DIR: join(directory, "stats"),
        QUEUE_ERROR_DIR: join(directory, "errors"),
        SHUTDOWN_TIMEOUT: "2"
      })
      yield* worker.waitForOutput("email-senders starting")
      yield* admin.publish(queue, JSON.stringify(event))
      yield* waitUntil(() => smtp.messages.length === 1, "the email at the SMTP server")
      // its spans cannot be sent: the exporter's error, with the request it made, is logged
      yield* worker.waitForOutput("Disabling exporter")
      assert.strictEqual(yield* terminated(worker), 0, worker.output())
      assert.lengthOf(smtp.messages, 1)
      assertNoSecret(worker.output(), "worker")
      assert.include(worker.output(), `"amqp":"amqp://${brokerUser}:***@127.0.0.1:5672`)
      assert.include(worker.output(), `?password=***&options=`)
    }).pipe(Effect.provide(NodeFileSystem.layer)), 120_000)

  it.live("keeps a refused password out of its reconnect warnings", () =>
    Effect.gen(function*() {
      const worker = yield* startCli(["worker"], { ...secretSettings(), AMQP_URL: amqpUrl(secrets.wrongAmqp) })
      yield* worker.waitForOutput(/ACCESS_REFUSED[\s\S]*ACCESS_REFUSED/)
      yield* terminated(worker)
      assertNoSecret(worker.output(), "worker with a refused login")
      assert.include(worker.output(), `amqp://${brokerUser}:***@127.0.0.1:5672`)
    }), 120_000)

  it.live.each(Object.keys(malformedAmqpUrls()) as Array<keyof ReturnType<typeof malformedAmqpUrls>>)(
    "AMQP_URL %s: exit 1, one line naming AMQP_URL",
    (form) =>
      Effect.gen(function*() {
        assertRefusedSetting(yield* run(["worker"], { AMQP_URL: malformedAmqpUrls()[form] }), "AMQP_URL")
      }),
    60_000
  )

  it.live.each([
    ["AMQP_URL", "not a URL", "not-a-url"],
    ["DATABASE_URL", "a mysql:// URL", `mysql://root:${secrets.database}@127.0.0.1/zulip`],
    ["EMAIL_HOST", "with a port", "smtp.example.com:587", "EMAIL_PORT"],
    ["EMAIL_HOST", "with a scheme and a login", `smtp://mailer:${secrets.smtp}@smtp.example.com`],
    ["EMAIL_PORT", "out of range", "70000"],
    ["HTTP_PORT", "out of range", "65536"],
    ["HTTP_HOST", "with a scheme", "http://0.0.0.0"],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "without a scheme", `collector:${secrets.otelUrl}@127.0.0.1:4318`],
    // fetch would refuse it, naming the URL in its error
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "with a password", `http://collector:${secrets.otelUrl}@127.0.0.1:4318`],
    ["EMAIL_IMAGES_BASE_URL", "relative", "/static/images/emails"],
    ["LOG_LEVEL", "an unknown name", "verbose"]
  ] as const)("%s %s: exit 1, one line naming it", ([name, _problem, value, alsoNamed]) =>
    Effect.gen(function*() {
      // EMAIL_PORT is read only with EMAIL_HOST set
      const result = yield* run(["worker"], { EMAIL_HOST: "127.0.0.1", [name]: value })
      assertRefusedSetting(result, name)
      if (alsoNamed !== undefined) assert.include(result.output, alsoNamed)
      assert.notInclude(result.output, value)
    }), 60_000)

  it.live("LOG_LEVEL=WARNING and --log-level CRITICAL are taken, in any case", () =>
    Effect.gen(function*() {
      for (const [args, env] of [[["worker"], { LOG_LEVEL: "WARNING" }], [["--log-level", "CRITICAL", "worker"], { LOG_LEVEL: "info" }]] as const) {
        const worker = yield* startCli(args, env)
        // development capture: its warning is the first line at WARNING, and no line at all at CRITICAL
        if (env.LOG_LEVEL === "WARNING") yield* worker.waitForOutput("EMAIL_HOST is not set")
        else yield* Effect.sleep("3 seconds")
        assert.isTrue(worker.running(), worker.output())
        assert.strictEqual(yield* terminated(worker), 0, worker.output())
        assert.notInclude(worker.output(), `"level":"INFO"`)
        if (env.LOG_LEVEL === "info") assert.strictEqual(worker.output(), "")
      }
    }), 120_000)
})

describe("publish", () => {
  it.live("enqueues with a secret in AMQP_URL and prints none", () =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const result = yield* run(["publish"], { AMQP_URL: amqpUrl(), QUEUE_NAME: queue }, { stdin: JSON.stringify(event) })
      assert.strictEqual(result.exitCode, 0, result.output)
      assert.strictEqual(yield* admin.messageCount(queue), 1)
      assertNoSecret(result.output, "publish")
    }), 60_000)

  it.live("AMQP_URL=not-a-url and the other malformed forms end it at once: exit 1, one line", () =>
    Effect.gen(function*() {
      for (const url of ["not-a-url", ...Object.values(malformedAmqpUrls())]) {
        const started = Date.now()
        const result = yield* run(["publish"], { AMQP_URL: url }, { stdin: JSON.stringify(event) })
        assertRefusedSetting(result, "AMQP_URL")
        // it used to wait for the broker forever
        assert.isBelow(Date.now() - started, 15_000)
      }
    }), 120_000)
})

describe("replay", () => {
  it.live("replays with a secret in AMQP_URL, refuses the malformed forms, and prints no secret", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const errorsFile = join(yield* scratchDirectory, "email_senders.errors")
      yield* fs.writeFileString(errorsFile, `Tue Mar  4 16:09:25 2025\t${JSON.stringify([event])}\n`)
      const replayed = yield* run(["replay", errorsFile], { AMQP_URL: amqpUrl(), QUEUE_NAME: queue })
      assert.strictEqual(replayed.exitCode, 0, replayed.output)
      assert.strictEqual(yield* admin.messageCount(queue), 1)
      assertNoSecret(replayed.output, "replay")
      for (const url of Object.values(malformedAmqpUrls())) {
        assertRefusedSetting(yield* run(["replay", errorsFile], { AMQP_URL: url, QUEUE_NAME: queue }), "AMQP_URL")
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)), 120_000)
})

describe("stats", () => {
  it.live("answers OK with a secret in AMQP_URL; a refused login or an invalid setting is UNKNOWN (exit 3); no secret", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const directory = yield* scratchDirectory
      yield* fs.writeFileString(join(directory, `${queue}.stats`), JSON.stringify({
        update_time: Date.now() / 1000,
        recent_average_consume_time: 0.1,
        queue_last_emptied_timestamp: Date.now() / 1000,
        consumed_since_last_emptied: 1
      }))
      const env = { QUEUE_NAME: queue, QUEUE_STATS_DIR: directory }
      const ok = yield* run(["stats"], { ...env, AMQP_URL: amqpUrl() })
      assert.strictEqual(ok.exitCode, 0, ok.output)
      assert.match(ok.stdout, /^OK: /)
      assertNoSecret(ok.output, "stats")
      const refused = yield* run(["stats"], { ...env, AMQP_URL: amqpUrl(secrets.wrongAmqp) })
      assert.strictEqual(refused.exitCode, 3, refused.output)
      assert.match(refused.stdout, /^UNKNOWN: .*cannot read the queue depth/)
      assertNoSecret(refused.output, "stats with a refused login")
      for (const url of ["not-a-url", ...Object.values(malformedAmqpUrls())]) {
        const malformed = yield* run(["stats"], { ...env, AMQP_URL: url })
        assertRefusedSetting(malformed, "AMQP_URL", 3)
        assert.match(malformed.stdout, /^UNKNOWN: email-senders: ConfigError: AMQP_URL: expected a URL/)
      }
      // its log's settings too: Nagios shows the line, and a restart loop helps nobody
      const wrongLevel = yield* run(["stats"], { ...env, AMQP_URL: amqpUrl(), LOG_LEVEL: "verbose" })
      assertRefusedSetting(wrongLevel, "LOG_LEVEL", 3)
      assert.match(wrongLevel.stdout, /^UNKNOWN: email-senders: ConfigError: LOG_LEVEL: expected one of /)
    }).pipe(Effect.provide(NodeFileSystem.layer)), 120_000)
})

describe("render", () => {
  it.live("renders with a secret in DATABASE_URL; a malformed or unreachable one fails; no secret", () =>
    Effect.gen(function*() {
      const stdin = JSON.stringify(event)
      const rendered = yield* run(["render"], { DATABASE_URL: databaseUrl() }, { stdin })
      assert.strictEqual(rendered.exitCode, 0, rendered.output)
      assert.include(rendered.stdout, "Subject: Settings test")
      assertNoSecret(rendered.output, "render")
      // a realm to look up: the database is asked
      yield* databaseFailures(["render"], JSON.stringify({ ...event, realm_id: 2 }))
    }), 120_000)
})

describe("db migrate", () => {
  it.live("creates the tables with a secret in DATABASE_URL; a malformed or unreachable one fails; no secret", () =>
    Effect.gen(function*() {
      const migrated = yield* run(["db", "migrate"], { DATABASE_URL: databaseUrl() })
      assert.strictEqual(migrated.exitCode, 0, migrated.output)
      const { stdout } = yield* Effect.promise(() =>
        psql(`SELECT count(*) FROM information_schema.tables WHERE table_schema = '${schema}'`)
      )
      // Zulip's two tables and the duplicate ledger's
      assert.strictEqual(stdout.trim(), "3")
      assertNoSecret(migrated.output, "db migrate")
      yield* databaseFailures(["db", "migrate"])
    }), 120_000)
})

describe("templates check", () => {
  it.live("passes with every secret set, and fails naming a malformed collector URL; no secret", () =>
    Effect.gen(function*() {
      const checked = yield* run(["templates", "check"], {})
      assert.strictEqual(checked.exitCode, 0, checked.output)
      assertNoSecret(checked.output, "templates check")
      const malformed = `collector:${secrets.otelUrl}@127.0.0.1:4318`
      assertRefusedSetting(
        yield* run(["templates", "check"], { OTEL_EXPORTER_OTLP_ENDPOINT: malformed }),
        "OTEL_EXPORTER_OTLP_ENDPOINT"
      )
    }), 60_000)
})
