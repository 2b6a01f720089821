/**
 * `email-senders check` against the real services (RabbitMQ, Postgres, a loopback SMTP server with STARTTLS and
 * AUTH): once with everything healthy, then with each one broken, where it must exit 1 and print the right ✗ line
 * with its fix (needs `npm run build`).
 */
import { NodeFileSystem } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { createServer, type Server, type Socket } from "node:net"
import { join } from "node:path"
import { beforeAll } from "vitest"
import { closedPort } from "./support/fakeSes.ts"
import { buildCli, type CliEnv, runCli } from "./support/processes.ts"
import { makeAdmin, uniqueName } from "./support/rabbitmq.ts"
import { smtpServer } from "./support/smtpServer.ts"

beforeAll(buildCli, 300_000)

const postgres = "postgres://postgres@127.0.0.1:5432"

/** A database of its own for the test (dropped at the end); `migrated` runs `db migrate` on it. */
const database = (migrated: boolean) =>
  Effect.gen(function*() {
    const name = uniqueName("es_check")
    const admin = yield* SqlClient.SqlClient
    yield* Effect.acquireRelease(
      admin`CREATE DATABASE ${admin(name)}`,
      () => Effect.orDie(admin`DROP DATABASE ${admin(name)} WITH (FORCE)`)
    )
    const url = `${postgres}/${name}`
    if (migrated) {
      const migration = yield* runCli(["db", "migrate"], { DATABASE_URL: url })
      assert.strictEqual(migration.exitCode, 0, migration.output)
    }
    return url
  })

/** The port of a server that accepts connections and never says a word (a black hole), until the scope closes. */
const silentServer = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ readonly server: Server; readonly sockets: Set<Socket> }>((resolve) => {
      const sockets = new Set<Socket>()
      const server = createServer((socket) => void sockets.add(socket.on("error", () => undefined)))
      server.listen(0, "127.0.0.1", () => resolve({ server, sockets }))
    })
  ),
  ({ server, sockets }) =>
    Effect.promise(() => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    })
).pipe(Effect.map(({ server }) => (server.address() as { port: number }).port))

/** The ✗ lines' check names, and each ✗ line with its fix line (after the details indented below it, if any). */
const failures = (stdout: string) => {
  const lines = stdout.split("\n")
  return lines.flatMap((line, index) =>
    line.startsWith("✗ ")
      ? [{
        name: line.slice(2, line.indexOf(":")),
        line,
        fix: lines.slice(index + 1).find((next) => !next.startsWith("    ") || next.startsWith("    fix: ")) ?? ""
      }]
      : []
  )
}

describe("email-senders check", () => {
  it.live("passes every check against healthy services, sending nothing; names what is broken, with its fix", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "check-" })
      const smtp = yield* smtpServer({ auth: { user: "mailer", password: "secret" }, startTls: true })
      const admin = yield* makeAdmin
      const queue = uniqueName("check")
      for (const name of [queue, `${queue}.delay.1000`, `${queue}.delay.2000`]) admin.deleteAfter(name)
      const healthyDatabase = yield* database(true)
      const healthy: CliEnv = {
        QUEUE_NAME: queue,
        REQUEUE_DELAY: "1",
        MAX_REQUEST_RETRIES: "2",
        EMAIL_HOST: smtp.host,
        EMAIL_PORT: String(smtp.port),
        EMAIL_HOST_USER: "mailer",
        EMAIL_HOST_PASSWORD: "secret",
        EMAIL_USE_TLS: "true",
        EMAIL_TLS_INSECURE: "true",
        DATABASE_URL: healthyDatabase,
        QUEUE_STATS_DIR: join(directory, "stats"),
        QUEUE_ERROR_DIR: join(directory, "errors"),
        COMMAND_TIMEOUT: "5"
      }

      const ok = yield* runCli(["check"], healthy)
      assert.strictEqual(ok.exitCode, 0, ok.output)
      const lines = ok.stdout.trimEnd().split("\n")
      assert.strictEqual(lines.at(-1), "all 10 checks passed")
      assert.deepStrictEqual(lines.slice(0, -1).map((line) => line.slice(0, line.indexOf(":"))), [
        "✓ configuration",
        "✓ broker",
        "✓ queue",
        "✓ delay queues",
        "✓ SMTP",
        "✓ realms",
        "✓ templates",
        "✓ catalogs",
        "✓ stats directory",
        "✓ errors directory"
      ])
      assert.include(ok.stdout, `✓ queue: ${queue}: declared, durable, type classic; 0 message(s) ready`)
      assert.include(ok.stdout, `✓ delay queues: ${queue}.delay.1000, ${queue}.delay.2000 exist`)
      assert.include(ok.stdout, `✓ SMTP: ${smtp.host}:${smtp.port}: EHLO, TLS, AUTH as mailer, NOOP 250`)
      assert.include(ok.stdout, "zerver_realm, zerver_userprofile have the columns the lookups read")
      assert.strictEqual(yield* admin.messageCount(queue), 0)
      // nothing was sent: no MAIL command reached the server, only the checks
      assert.deepStrictEqual([smtp.messages.length, smtp.commandCount("MAIL"), smtp.commandCount("NOOP")], [0, 0, 1])

      // with REDIS_URL (the machine's Redis), one more check
      const withRedis = yield* runCli(["check"], { ...healthy, REDIS_URL: "redis://127.0.0.1:6379", EMAIL_RATE_LIMIT: "14/s" })
      assert.strictEqual(withRedis.exitCode, 0, withRedis.output)
      assert.include(withRedis.stdout, "✓ Redis: redis://127.0.0.1:6379: answers PING with PONG")
      assert.include(withRedis.stdout, "all 11 checks passed")

      const brokenTemplates = join(directory, "templates")
      yield* fs.makeDirectory(join(brokenTemplates, "zerver", "emails"), { recursive: true })
      yield* fs.writeFileString(join(brokenTemplates, "zerver", "emails", "broken.subject.txt"), "Hello")
      yield* fs.writeFileString(join(brokenTemplates, "zerver", "emails", "broken.txt"), "Hi {% if %}\n")
      const aFile = join(directory, "a-file")
      yield* fs.writeFileString(aFile, "not a directory")
      const emptyDatabase = yield* database(false)
      const smtpDown = yield* closedPort
      const silent = yield* silentServer

      const cases: ReadonlyArray<readonly [CliEnv, ReadonlyArray<string>, RegExp, string]> = [
        [{ AMQP_URL: "amqp://guest:wrong@127.0.0.1:5672" }, ["broker", "queue", "delay queues"], /ACCESS_REFUSED/, "AMQP_URL (user/password)"],
        [{ EMAIL_HOST_PASSWORD: "wrong" }, ["SMTP"], /^✗ SMTP: 127\.0\.0\.1:\d+ refused: 535 Authentication credentials invalid$/, "EMAIL_HOST_USER / EMAIL_HOST_PASSWORD"],
        [{ AMQP_URL: `amqp://guest:guest@127.0.0.1:5672/${uniqueName("no_vhost")}` }, ["broker", "queue", "delay queues"], /refused: the broker would not open vhost no_vhost_/, "AMQP_URL (vhost)"],
        [{ EMAIL_PORT: String(smtpDown) }, ["SMTP"], /ECONNREFUSED/, "EMAIL_HOST / EMAIL_PORT"],
        [{ DATABASE_URL: emptyDatabase }, ["realms"], /lacks table zerver_realm; table zerver_userprofile/, "email-senders db migrate"],
        [{ TEMPLATES_DIR: brokenTemplates }, ["templates"], /1 problem\(s\)/, "email-senders templates check"],
        [{ LOCALE_DIR: join(directory, "no-locale") }, ["catalogs"], /LOCALE_DIR .*no-locale cannot be read \(ENOENT\)/, "LOCALE_DIR"],
        [{ QUEUE_ERROR_DIR: join(aFile, "errors") }, ["errors directory"], /a-file\/errors: /, "QUEUE_ERROR_DIR"],
        [{ AMQP_URL: `amqp://guest:guest@127.0.0.1:${silent}`, COMMAND_TIMEOUT: "1" }, ["broker", "queue", "delay queues"], /no answer within 1s|ETIMEDOUT/, "AMQP_URL"],
        // EMAIL_TIMEOUT longer than the test's bound: only COMMAND_TIMEOUT can end this one in time
        [{ EMAIL_PORT: String(silent), EMAIL_TIMEOUT: "30", COMMAND_TIMEOUT: "1" }, ["SMTP"], /no answer within 1s/, "COMMAND_TIMEOUT"],
        [{ SMTP_CONNECTIONS: "many" }, ["configuration"], /ConfigError: SMTP_CONNECTIONS: /, "README's Configuration table"],
        [{ REDIS_URL: `redis://127.0.0.1:${smtpDown}` }, ["Redis"], /ECONNREFUSED/, "REDIS_URL"],
        [{ EMAIL_RATE_LIMIT: "lots" }, ["configuration"], /ConfigError: EMAIL_RATE_LIMIT: expected <count>\/<s\|min\|h\|day>/, "README's Configuration table"],
        [{ NOREPLY_EMAIL_ADDRESS: "no address" }, ["configuration"], /NOREPLY_EMAIL_ADDRESS "no address" is not a valid email address/, "README's Configuration table"]
      ]
      for (const [broken, failedChecks, detail, fix] of cases) {
        const started = Date.now()
        const result = yield* runCli(["check"], { ...healthy, ...broken })
        const context = `${JSON.stringify(broken)}:\n${result.output}`
        assert.strictEqual(result.exitCode, 1, context)
        // bounded by COMMAND_TIMEOUT (5 s here, 1 s for the services that never answer)
        assert.isBelow((Date.now() - started) / 1000, 15, context)
        const found = failures(result.stdout)
        assert.deepStrictEqual(found.map((failure) => failure.name), failedChecks, context)
        assert.match(found[0]!.line, detail, context)
        assert.match(found[0]!.fix, /^ {4}fix: /, context)
        assert.include(found[0]!.fix, fix, context)
        assert.include(result.stderr, "ChecksFailed", context)
      }
    }).pipe(
      Effect.scoped,
      // outlives the scope, so the test databases are dropped with it
      Effect.provide([NodeFileSystem.layer, PgClient.layer({ url: Redacted.make(`${postgres}/test`) })])
    ), 240_000)
})
