/**
 * Permanent refusals on the real path (the built worker, the machine's RabbitMQ, a loopback SMTP server): a broker
 * login refused (403), an unknown vhost (530), an SMTP login refused (535). The worker keeps trying with backoff,
 * logs one ERROR naming the setting to fix and repeats at DEBUG only, `/readyz` names the setting, and once the
 * operator fixes it the worker says so at INFO and delivers, without a restart.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { createServer } from "node:net"
import { join } from "node:path"
import { beforeAll } from "vitest"
import { buildCli, type CliEnv, type CliProcess, runCli, startCli, waitUntil } from "./support/processes.ts"
import { makeAdmin, rabbitmqctl, uniqueName } from "./support/rabbitmq.ts"
import { smtpServer, type SmtpServerOptions, type SmtpTestServer } from "./support/smtpServer.ts"

beforeAll(buildCli, 300_000)

const freePort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
)

/** The worker's JSON log lines at `level` whose message contains `text`. */
const logLines = (worker: CliProcess, level: string, text = "") =>
  worker.stdout().split("\n").flatMap((line) => {
    if (!line.startsWith("{")) return []
    const entry = JSON.parse(line) as { readonly level: string; readonly message: unknown }
    const message = String(entry.message)
    return entry.level === level && message.includes(text) ? [message] : []
  })

const readiness = (port: number) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`)
    return { code: response.status, ...(await response.json() as { status: string; checks: Record<string, string> }) }
  })

const event = (to: string) => ({ subject: "Refusals", text: "Hello", to_emails: [to] })

/** A worker on its own queue, SMTP server and directory; `amqpUrl` is what the operator configured. */
const setup = (prefix: string, smtpOptions: SmtpServerOptions = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped({ prefix })
    const smtp = yield* smtpServer(smtpOptions)
    const admin = yield* makeAdmin
    const queue = admin.deleteAfter(uniqueName("refusals"))
    const httpPort = yield* freePort
    const env = (extra: CliEnv): CliEnv => ({
      QUEUE_NAME: queue,
      EMAIL_HOST: smtp.host,
      EMAIL_PORT: String(smtp.port),
      QUEUE_STATS_DIR: join(directory, "queue_stats"),
      QUEUE_ERROR_DIR: join(directory, "queue_error"),
      HTTP_PORT: String(httpPort),
      LOG_LEVEL: "Debug",
      RETRY_BASE_DELAY: "0.1",
      OUTAGE_MAX_DELAY: "0.5",
      ...extra
    })
    return { smtp, admin, queue, httpPort, env }
  })

/** The refusal met at least three times, logged once at ERROR (naming the setting) and otherwise at DEBUG. */
const refusedRepeatedly = (worker: CliProcess, setting: string) =>
  Effect.gen(function*() {
    yield* waitUntil(
      () => logLines(worker, "DEBUG", `fix ${setting}`).length >= 3,
      () => `three repeats of the refusal naming ${setting}; output:\n${worker.output().slice(-3000)}`,
      "60 seconds"
    )
    const errors = logLines(worker, "ERROR")
    assert.strictEqual(errors.length, 1, errors.join("\n"))
    assert.include(errors[0], `fix ${setting}`)
  })

const publishWith = (env: CliEnv, to: string) =>
  Effect.gen(function*() {
    const result = yield* runCli(["publish", "--to", to, "--subject", "Refusals", "--text", "Hello"], env)
    assert.strictEqual(result.exitCode, 0, result.output)
  })

const delivered = (smtp: SmtpTestServer, worker: CliProcess) =>
  waitUntil(() => smtp.messages.length === 1, () => `a delivery; worker output:\n${worker.output().slice(-3000)}`, "60 seconds")

const ready = (port: number) =>
  Effect.gen(function*() {
    yield* waitUntil(() => readiness(port).pipe(Effect.map((reply) => reply.code === 200)), "/readyz 200", "30 seconds")
  })

describe("permanent refusals", () => {
  it.live("a broker login refused (403): one ERROR naming AMQP_URL (user/password); fixed, INFO and delivery", () =>
    Effect.gen(function*() {
      const { env, httpPort, smtp } = yield* setup("refusals-login-")
      const user = uniqueName("refusals_user")
      yield* Effect.acquireRelease(rabbitmqctl("add_user", user, "the-right-one"), () => rabbitmqctl("delete_user", user))
      yield* rabbitmqctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
      const workerEnv = env({ AMQP_URL: `amqp://${user}:configured-password@127.0.0.1:5672` })
      const worker = yield* startCli([], workerEnv)

      yield* refusedRepeatedly(worker, "AMQP_URL (user/password)")
      assert.include(logLines(worker, "ERROR")[0], "ACCESS_REFUSED")
      const down = yield* readiness(httpPort)
      assert.strictEqual(down.code, 503)
      assert.include(down.checks["broker"], "fix AMQP_URL (user/password)")

      // the operator gives the broker's user the password AMQP_URL has; the worker is not restarted
      yield* rabbitmqctl("change_password", user, "configured-password")
      yield* worker.waitForOutput("broker accepts AMQP_URL (user/password) again")
      assert.lengthOf(logLines(worker, "INFO", "accepts AMQP_URL (user/password) again"), 1)
      yield* publishWith(workerEnv, "login@example.com")
      yield* delivered(smtp, worker)
      yield* ready(httpPort)
      assert.lengthOf(logLines(worker, "ERROR"), 1)
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)), 120_000)

  it.live("an unknown vhost (530): one ERROR naming AMQP_URL (vhost); created, INFO and delivery", () =>
    Effect.gen(function*() {
      const { env, httpPort, smtp } = yield* setup("refusals-vhost-")
      const vhost = uniqueName("refusals_vhost")
      const workerEnv = env({ AMQP_URL: `amqp://guest:guest@127.0.0.1:5672/${vhost}` })
      const worker = yield* startCli([], workerEnv)

      yield* refusedRepeatedly(worker, "AMQP_URL (vhost)")
      assert.include(logLines(worker, "ERROR")[0], `vhost ${vhost}`)
      const down = yield* readiness(httpPort)
      assert.strictEqual(down.code, 503)
      assert.include(down.checks["broker"], "fix AMQP_URL (vhost)")

      yield* Effect.acquireRelease(rabbitmqctl("add_vhost", vhost), () => rabbitmqctl("delete_vhost", vhost))
      yield* rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
      yield* worker.waitForOutput("broker accepts AMQP_URL (vhost) again")
      yield* publishWith(workerEnv, "vhost@example.com")
      yield* delivered(smtp, worker)
      yield* ready(httpPort)
      assert.lengthOf(logLines(worker, "ERROR"), 1)
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)), 120_000)

  it.live("an SMTP login refused (535): one ERROR naming EMAIL_HOST_USER / EMAIL_HOST_PASSWORD; fixed, INFO and delivery", () =>
    Effect.gen(function*() {
      const { admin, env, httpPort, queue, smtp } = yield* setup("refusals-smtp-", {
        auth: { user: "mailer", password: "the-right-one" }
      })
      const worker = yield* startCli([], env({ EMAIL_HOST_USER: "mailer", EMAIL_HOST_PASSWORD: "configured-password" }))
      yield* admin.awaitConsumer(queue).pipe(Effect.retry({ times: 20 }))
      yield* admin.publish(queue, JSON.stringify(event("smtp@example.com")))

      yield* refusedRepeatedly(worker, "EMAIL_HOST_USER / EMAIL_HOST_PASSWORD")
      assert.include(logLines(worker, "ERROR")[0], "535 Authentication credentials invalid")
      const down = yield* readiness(httpPort)
      assert.strictEqual(down.code, 503)
      assert.include(down.checks["smtp"], "fix EMAIL_HOST_USER / EMAIL_HOST_PASSWORD")
      assert.lengthOf(smtp.messages, 0)

      // the mail server's account gets the password the worker is configured with
      smtp.changePassword("configured-password")
      yield* delivered(smtp, worker)
      yield* worker.waitForOutput(`SMTP server ${smtp.host}:${smtp.port} accepts EMAIL_HOST_USER / EMAIL_HOST_PASSWORD again`)
      yield* ready(httpPort)
      assert.lengthOf(logLines(worker, "ERROR"), 1)
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)), 120_000)
})
