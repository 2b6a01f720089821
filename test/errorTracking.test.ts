/**
 * Error tracking with Sentry's own SDK against a loopback fake of Sentry's ingest endpoint (`support/fakeSentry.ts`):
 * what arrives for failed events and defects (tags, grouping, release, stack traces, transactions), that nothing
 * personal is in what arrives (addresses, bodies, context values, tokens, passwords), and that a Sentry that is
 * down or never answers neither slows nor stops delivery. In process on the in-memory layers, and as the built
 * worker configured by `SENTRY_*`.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer } from "effect"
import { join } from "node:path"
import { beforeAll } from "vitest"
import { Rejected } from "../src/domain/errors.ts"
import { EmailBuilder } from "../src/email/EmailBuilder.ts"
import * as ErrorTracking from "../src/operations/ErrorTracking.ts"
import { consumeBatch } from "../src/pipeline/settleDelivery.ts"
import { InMemoryFailures } from "../src/records/InMemoryFailureStore.ts"
import { InMemoryQueue } from "../src/queue/InMemoryQueue.ts"
import { QueueConsumer } from "../src/queue/QueueConsumer.ts"
import { InMemorySmtp } from "../src/smtp/InMemorySmtp.ts"
import { packageVersion } from "../src/packageInfo.ts"
import { closedPort } from "./support/fakeSes.ts"
import { fakeSentry, type FakeSentry } from "./support/fakeSentry.ts"
import { inMemoryLayer } from "./support/inMemory.ts"
import { buildCli, startCli, terminated, waitUntil } from "./support/processes.ts"
import { workerEnv, workerSetup } from "./support/workerSetup.ts"

/** Strings that must never reach Sentry, each put where a careless report would pick it up. */
const secrets = {
  password: "hunter2-Passw0rd",
  token: "tok9f8e7d6c5b4a3f2e1d0c",
  resetKey: "k3y9abc123def456ghi789",
  body: "Top secret body text of the email",
  rejectedAddress: "alice.private@example.com",
  invalidAddress: "bob.private@example.com",
  defectAddress: "carol.private@example.com",
  contextValue: "Private Context Value 12"
}

/** The template the failing events name: missing, so each one fails with a TemplateError. */
const brokenTemplate = "zerver/emails/broken_template"

const brokenTemplateEvent = (n: number) => ({
  template_prefix: brokenTemplate,
  to_emails: [`user${n}@example.com`],
  realm_id: 2,
  context: { password: secrets.password, api_token: secrets.token, note: secrets.contextValue }
})

/** Publish the bodies to the in-memory queue and settle them as the worker would. */
const settleAll = (bodies: ReadonlyArray<string | Record<string, unknown>>) =>
  Effect.gen(function*() {
    const queue = yield* InMemoryQueue
    for (const body of bodies) yield* queue.publish(body as string)
    const consumer = yield* QueueConsumer
    return yield* consumeBatch(yield* Effect.replicateEffect(consumer.take, bodies.length))
  })

const sentryLayer = (sentry: FakeSentry, options: Partial<ErrorTracking.SentryOptions> = {}) =>
  ErrorTracking.layer({ dsn: sentry.dsn, environment: "test", release: "9.9.9-test", reportInterval: "1 second", ...options })

const eventsArrived = (sentry: FakeSentry, count: number) =>
  waitUntil(() => sentry.items("event").length >= count, () => `${count} Sentry events (got ${sentry.items("event").length})`, "20 seconds")

const assertNothingPersonal = (sentry: FakeSentry) => {
  const everything = sentry.envelopes().map((envelope) => envelope.raw).join("\n")
  for (const [what, value] of Object.entries(secrets)) {
    assert.notInclude(everything, value, `the ${what} left the process`)
  }
  assert.notMatch(everything, /[A-Za-z0-9._%+-]+@example\.com/, "no recipient address")
}

const tagsOf = (event: Record<string, unknown>) => event.tags as Record<string, string>

describe("scrubText", () => {
  it("blanks addresses, quoted values, URL paths, secrets after their names and token-like strings", () => {
    assert.strictEqual(
      ErrorTracking.scrubText("recipients refused: Alice <alice@example.com> (550 5.1.1 user unknown)"),
      "recipients refused: Alice <[address]> (550 5.1.1 user unknown)"
    )
    assert.strictEqual(
      ErrorTracking.scrubText("Expected string, got \"private value\" at [\"context\"]['name']"),
      "Expected string, got \"[scrubbed]\" at [\"[scrubbed]\"]['[scrubbed]']"
    )
    assert.strictEqual(
      ErrorTracking.scrubText("link https://zulip.example/accounts/reset/k3y9abc123/?token=x failed"),
      "link https://zulip.example/[scrubbed] failed"
    )
    assert.strictEqual(ErrorTracking.scrubText("login with password=hunter2 refused"), "login with password=[scrubbed] refused")
    assert.strictEqual(ErrorTracking.scrubText("api_key: abc"), "api_key: [scrubbed]")
    assert.strictEqual(ErrorTracking.scrubText("key 9f8e7d6c5b4a3f2e1d0c9b8a used"), "key [scrubbed] used")
    // what an operator needs stays: tags, codes, template names, plain words
    const plain = "TemplateError: template zerver/emails/confirm_registration_realm does not exist (451 4.3.0)"
    assert.strictEqual(ErrorTracking.scrubText(plain), plain)
    // scrubbing twice changes nothing
    const once = ErrorTracking.scrubText("to bob@example.com via https://x.example/a?b=c: \"v\"")
    assert.strictEqual(ErrorTracking.scrubText(once), once)
  })
})

describe("Sentry error tracking (in process)", () => {
  it.live("failed events arrive tagged (tag, SMTP code, template, realm), one issue per tag and template, scrubbed", () =>
    Effect.gen(function*() {
      const sentry = yield* fakeSentry()
      yield* Effect.gen(function*() {
        const smtp = yield* InMemorySmtp
        yield* smtp.failNext(1, new Rejected({
          message: `550 5.1.1 <${secrets.rejectedAddress}>: Recipient address rejected (password=${secrets.password})`,
          smtpCode: 550,
          response: `550 5.1.1 <${secrets.rejectedAddress}>: Recipient address rejected`,
          recipients: [secrets.rejectedAddress]
        }))
        yield* settleAll([
          // rejected for good (5xx): the record keeps the whole event, the report only the reason
          {
            subject: "Hello",
            text: secrets.body,
            to_emails: [secrets.rejectedAddress],
            context: { reset_url: `https://zulip.example/reset/${secrets.resetKey}` }
          },
          brokenTemplateEvent(1),
          brokenTemplateEvent(2),
          brokenTemplateEvent(3),
          // not an event: to_emails is a string, which the schema error quotes
          JSON.stringify({ template_prefix: "zerver/emails/password_reset", to_emails: secrets.invalidAddress })
        ])
        assert.strictEqual((yield* (yield* InMemoryFailures).records).length, 5)
        // one report per tag and template a second: the next one counts those not sent
        yield* eventsArrived(sentry, 3)
        yield* Effect.sleep("1100 millis")
        yield* settleAll([brokenTemplateEvent(4)])
      }).pipe(Effect.provide(Layer.merge(inMemoryLayer, sentryLayer(sentry))))
      yield* eventsArrived(sentry, 4)

      const events = sentry.items("event")
      assert.strictEqual(events.length, 4)
      for (const event of events) {
        assert.strictEqual(event.release, "9.9.9-test")
        assert.strictEqual(event.environment, "test")
        assert.strictEqual(event.level, "error")
      }
      const broken = events.filter((event) => tagsOf(event).tag === "TemplateError")
      assert.deepStrictEqual(broken.map((event) => (event.extra as Record<string, number>).similar_failures_not_reported), [0, 2])
      for (const event of broken) {
        assert.deepStrictEqual(event.fingerprint, ["email-senders", "TemplateError", brokenTemplate])
        assert.deepInclude(tagsOf(event), { template: brokenTemplate, realm: "2", smtp_code: "none", smtp_class: "none" })
      }
      const rejected = events.find((event) => tagsOf(event).tag === "Rejected")!
      assert.deepInclude(tagsOf(rejected), { smtp_code: "550", smtp_class: "5xx", template: "(no template)", realm: "none" })
      assert.deepStrictEqual(rejected.fingerprint, ["email-senders", "Rejected", "(no template)"])
      assert.include(String(rejected.message), "550 5.1.1 <[address]>: Recipient address rejected (password=[scrubbed])")
      const invalid = events.find((event) => tagsOf(event).tag === "InvalidEvent")!
      assert.deepInclude(tagsOf(invalid), { template: "zerver/emails/password_reset" })
      assertNothingPersonal(sentry)
    }), { timeout: 60_000 })

  it.live("a defect arrives as an exception with its stack trace, scrubbed, grouped by tag and template", () =>
    Effect.gen(function*() {
      const sentry = yield* fakeSentry()
      const crashingBuilder = Layer.succeed(EmailBuilder, EmailBuilder.of({
        build: () => Effect.die(new Error(`renderer crashed on ${secrets.defectAddress} with "${secrets.contextValue}"`))
      }))
      yield* settleAll([{ template_prefix: "zerver/emails/password_reset", to_emails: [secrets.defectAddress], realm_id: 2 }]).pipe(
        Effect.provide(Layer.mergeAll(inMemoryLayer, crashingBuilder, sentryLayer(sentry)))
      )
      yield* eventsArrived(sentry, 1)
      const [event] = sentry.items("event")
      assert.strictEqual(event!.level, "fatal")
      assert.deepStrictEqual(event!.fingerprint, ["email-senders", "Defect", "zerver/emails/password_reset"])
      const exception = (event!.exception as { values: Array<{ type: string; value: string; stacktrace?: { frames: Array<unknown> } }> }).values[0]!
      assert.strictEqual(exception.type, "Error")
      assert.strictEqual(exception.value, "renderer crashed on [address] with \"[scrubbed]\"")
      assert.isAbove(exception.stacktrace?.frames.length ?? 0, 0, "the stack trace is sent")
      assertNothingPersonal(sentry)
    }), { timeout: 60_000 })

  it.live("with SENTRY_TRACES_SAMPLE_RATE the pipeline's spans arrive as transactions, attributes scrubbed", () =>
    Effect.gen(function*() {
      const sentry = yield* fakeSentry()
      yield* Effect.gen(function*() {
        yield* settleAll([{ template_prefix: "zerver/emails/password_reset", to_emails: ["dave.private@example.com"] }])
        assert.strictEqual((yield* (yield* InMemorySmtp).sent).length, 1)
      }).pipe(Effect.provide(Layer.merge(inMemoryLayer, sentryLayer(sentry, { tracesSampleRate: 1 }))))
      yield* waitUntil(() => sentry.items("transaction").length >= 1, "a transaction", "20 seconds")
      const [transaction] = sentry.items("transaction")
      assert.strictEqual(transaction!.transaction, "consumeBatch")
      const spans = (transaction!.spans as Array<{ description: string }>).map((span) => span.description)
      assert.include(spans, "settleDelivery")
      assert.notInclude(sentry.envelopes().map((envelope) => envelope.raw).join("\n"), "dave.private")
    }), { timeout: 60_000 })

  for (const outage of ["down (connection refused)", "hanging (never answers)"] as const) {
    it.live(`a Sentry that is ${outage} neither slows nor stops delivery, nor the stop`, () =>
      Effect.gen(function*() {
        const hanging = outage.startsWith("hanging") ? yield* fakeSentry("hang") : undefined
        const dsn = hanging?.dsn ?? `http://public@127.0.0.1:${yield* closedPort}/42`
        const total = 400
        // each failure a template of its own, so each is reported: more than the SDK's transport holds at once
        const bodies = Array.from({ length: total }, (_, n) =>
          n % 2 === 0
            ? { ...brokenTemplateEvent(n), template_prefix: `${brokenTemplate}_${n}` }
            : { template_prefix: "zerver/emails/password_reset", to_emails: [`user${n}@example.com`] })
        const startedAt = Date.now()
        yield* Effect.gen(function*() {
          const settlements = yield* settleAll(bodies)
          assert.strictEqual(settlements.length, total)
          assert.strictEqual((yield* (yield* InMemoryFailures).records).length, total / 2)
          assert.strictEqual((yield* (yield* InMemorySmtp).sent).length, total / 2)
        }).pipe(Effect.provide(Layer.merge(inMemoryLayer, ErrorTracking.layer({ dsn, closeTimeoutMillis: 1000 }))))
        // everything settled and the layer closed: the stop waits for buffered reports at most closeTimeoutMillis
        assert.isAtMost(Date.now() - startedAt, 20_000)
        if (hanging !== undefined) assert.isAbove(hanging.requests(), 10, "the SDK did try to send")
      }), { timeout: 60_000 })
  }
})

beforeAll(buildCli, 120_000)

describe("Sentry error tracking (the built worker)", () => {
  const setup = (prefix: string) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const { admin, directory, queue, smtp } = yield* workerSetup(prefix)
      const env = (dsn: string, extra: Record<string, string> = {}) => workerEnv(queue, smtp, directory, { SENTRY_DSN: dsn, ...extra })
      const errorLines = Effect.map(
        fs.readFileString(join(directory, "queue_error", `${queue}.errors`)).pipe(Effect.orElseSucceed(() => "")),
        (text) => text.split("\n").filter((line) => line !== "").length
      )
      return { admin, env, errorLines, queue, smtp }
    }).pipe(Effect.provide(NodeFileSystem.layer))

  const goodEvent = (n: number) => JSON.stringify({ subject: `Event ${n}`, text: secrets.body, to_emails: [`user${n}@example.com`] })

  it.live("SENTRY_DSN, SENTRY_ENVIRONMENT: a failing template arrives from the worker with the package version", () =>
    Effect.gen(function*() {
      const sentry = yield* fakeSentry()
      const { admin, env, queue } = yield* setup("es-sentry-")
      const worker = yield* startCli(["worker"], env(sentry.dsn, { SENTRY_ENVIRONMENT: "staging" }))
      yield* worker.waitForOutput("error_tracking")
      assert.include(worker.output(), `"error_tracking":"Sentry http://127.0.0.1:`)
      // no realms in this deployment: the event names none
      yield* admin.publish(queue, JSON.stringify({ ...brokenTemplateEvent(7), realm_id: undefined }))
      yield* eventsArrived(sentry, 1)
      const [event] = sentry.items("event")
      assert.strictEqual(event!.release, packageVersion)
      assert.strictEqual(event!.environment, "staging")
      assert.deepInclude(tagsOf(event!), { tag: "TemplateError", template: brokenTemplate, realm: "none" })
      assert.strictEqual(yield* terminated(worker), 0, worker.output())
      assertNothingPersonal(sentry)
    }), { timeout: 120_000 })

  it.live("a Sentry that never answers: every email is still delivered or recorded, and SIGTERM still exits 0", () =>
    Effect.gen(function*() {
      const sentry = yield* fakeSentry("hang")
      const { admin, env, errorLines, queue, smtp } = yield* setup("es-sentry-hang-")
      const worker = yield* startCli(["worker"], env(sentry.dsn))
      const total = 200
      for (let n = 0; n < total; n++) {
        yield* admin.publish(queue, n % 2 === 0 ? JSON.stringify({ ...brokenTemplateEvent(n), realm_id: undefined }) : goodEvent(n))
      }
      yield* waitUntil(
        () => Effect.map(errorLines, (lines) => lines === total / 2 && smtp.messages.length === total / 2),
        () => `${total / 2} delivered (${smtp.messages.length}) and ${total / 2} recorded`
      )
      assert.isAbove(sentry.requests(), 0, "the SDK did try to send")
      const signalledAt = Date.now()
      assert.strictEqual(yield* terminated(worker), 0, worker.output())
      // SHUTDOWN_TIMEOUT is 25 s; the reports still buffered get 2 s on top, then are dropped
      assert.isAtMost(Date.now() - signalledAt, 30_000)
    }), { timeout: 180_000 })
})
