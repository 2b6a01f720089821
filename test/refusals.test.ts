/**
 * Permanent refusals on the real path (the built worker, the machine's RabbitMQ, a loopback SMTP server): a broker
 * login refused (403), an unknown vhost (530), an SMTP login refused (535). The worker keeps trying with backoff,
 * logs one ERROR naming the setting to fix and repeats at DEBUG only, `/readyz` names the setting, and once the
 * operator fixes it the worker says so at INFO and delivers, without a restart.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { join } from "node:path"
import { beforeAll } from "vitest"
import { closedPort } from "./support/fakeSes.ts"
import { buildCli, type CliEnv, type CliProcess, runCli, startCli, waitUntil } from "./support/processes.ts"
import { makeAdmin, rabbitmqctl, uniqueName } from "./support/rabbitmq.ts"
import { smtpServer, type SmtpServerOptions, type SmtpTestServer } from "./support/smtpServer.ts"

beforeAll(buildCli, 300_000)

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

/** The settings of a worker on its own queue, SMTP server, directory and operations port. */
const setup = (prefix: string, smtpOptions: SmtpServerOptions = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped({ prefix })
    const smtp = yield* smtpServer(smtpOptions)
    const admin = yield* makeAdmin
    const queue = admin.deleteAfter(uniqueName("refusals"))
    // free now, for the worker to listen on
    const httpPort = yield* closedPort
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
    return { smtp, httpPort, env }
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

/** Refused repeatedly, logged once at ERROR with the peer's `answer`, and named by `/readyz`'s `part` check. */
const refusedAndShown = (worker: CliProcess, httpPort: number, setting: string, answer: string, part: "broker" | "smtp") =>
  Effect.gen(function*() {
    yield* refusedRepeatedly(worker, setting)
    assert.include(logLines(worker, "ERROR")[0], answer)
    const down = yield* readiness(httpPort)
    assert.strictEqual(down.code, 503)
    assert.include(down.checks[part], `fix ${setting}`)
  })

/** Once fixed: `accepted` at INFO once, then (after `then`) a delivery, ready again, and still the one ERROR. */
const recovered = (
  worker: CliProcess,
  httpPort: number,
  smtp: SmtpTestServer,
  accepted: string,
  then: Effect.Effect<void> = Effect.void
) =>
  Effect.gen(function*() {
    yield* worker.waitForOutput(accepted)
    assert.lengthOf(logLines(worker, "INFO", accepted), 1)
    yield* then
    yield* waitUntil(() => smtp.messages.length === 1, () => `a delivery; worker output:\n${worker.output().slice(-3000)}`, "60 seconds")
    yield* waitUntil(() => readiness(httpPort).pipe(Effect.map((reply) => reply.code === 200)), "/readyz 200", "30 seconds")
    assert.lengthOf(logLines(worker, "ERROR"), 1)
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

      yield* refusedAndShown(worker, httpPort, "AMQP_URL (user/password)", "ACCESS_REFUSED", "broker")
      // the operator gives the broker's user the password AMQP_URL has; the worker is not restarted
      yield* rabbitmqctl("change_password", user, "configured-password")
      yield* recovered(
        worker,
        httpPort,
        smtp,
        "broker accepts AMQP_URL (user/password) again",
        publishWith(workerEnv, "login@example.com")
      )
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)), 120_000)

  it.live("an unknown vhost (530): one ERROR naming AMQP_URL (vhost); created, INFO and delivery", () =>
    Effect.gen(function*() {
      const { env, httpPort, smtp } = yield* setup("refusals-vhost-")
      const vhost = uniqueName("refusals_vhost")
      const workerEnv = env({ AMQP_URL: `amqp://guest:guest@127.0.0.1:5672/${vhost}` })
      const worker = yield* startCli([], workerEnv)

      yield* refusedAndShown(worker, httpPort, "AMQP_URL (vhost)", `vhost ${vhost}`, "broker")
      yield* Effect.acquireRelease(rabbitmqctl("add_vhost", vhost), () => rabbitmqctl("delete_vhost", vhost))
      yield* rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
      yield* recovered(worker, httpPort, smtp, "broker accepts AMQP_URL (vhost) again", publishWith(workerEnv, "vhost@example.com"))
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)), 120_000)

  it.live("an SMTP login refused (535): one ERROR naming EMAIL_HOST_USER / EMAIL_HOST_PASSWORD; fixed, INFO and delivery", () =>
    Effect.gen(function*() {
      const { env, httpPort, smtp } = yield* setup("refusals-smtp-", { auth: { user: "mailer", password: "the-right-one" } })
      const workerEnv = env({ EMAIL_HOST_USER: "mailer", EMAIL_HOST_PASSWORD: "configured-password" })
      const worker = yield* startCli([], workerEnv)
      yield* publishWith(workerEnv, "smtp@example.com")

      yield* refusedAndShown(worker, httpPort, "EMAIL_HOST_USER / EMAIL_HOST_PASSWORD", "535 Authentication credentials invalid", "smtp")
      assert.lengthOf(smtp.messages, 0)

      // the mail server's account gets the password the worker is configured with
      smtp.changePassword("configured-password")
      yield* recovered(worker, httpPort, smtp, `SMTP server ${smtp.host}:${smtp.port} accepts EMAIL_HOST_USER / EMAIL_HOST_PASSWORD again`)
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)), 120_000)
})
