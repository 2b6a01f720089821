/** `publish` as operators run it: an event from flags or stdin, validated first, then delivered by a worker. */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { beforeAll } from "vitest"
import { buildCli, runCli, startCli, waitUntil } from "./support/processes.ts"
import { makeAdmin } from "./support/rabbitmq.ts"
import { smtpServer } from "./support/smtpServer.ts"

beforeAll(buildCli, 120_000)

describe("publish command", () => {
  it.live("builds the event from flags, adds a message_id, and publishes it with a confirm", () =>
    Effect.scoped(Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const result = yield* runCli([
        "publish",
        "--template", "zerver/emails/password_reset",
        "--to", "a@zulip.example",
        "--to", "b@zulip.example",
        "--realm-id", "2",
        "--context", "reset_url=https://zulip.example/reset",
        "--context", "realm_name=Zulip Dev"
      ], { QUEUE_NAME: queue })
      assert.strictEqual(result.exitCode, 0, result.output)
      const message = yield* admin.get(queue)
      assert.isNotFalse(message)
      const { message_id, ...event } = JSON.parse((message as { content: Buffer }).content.toString())
      assert.deepStrictEqual(event, {
        template_prefix: "zerver/emails/password_reset",
        to_emails: ["a@zulip.example", "b@zulip.example"],
        realm_id: 2,
        context: { reset_url: "https://zulip.example/reset", realm_name: "Zulip Dev" }
      })
      assert.isString(message_id)
    })))

  it.live("refuses an invalid event with the reason and publishes nothing", () =>
    Effect.scoped(Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const missingContent = yield* runCli(["publish", "--to", "a@zulip.example"], { QUEUE_NAME: queue })
      assert.strictEqual(missingContent.exitCode, 1)
      assert.include(missingContent.stderr, "template_prefix: is required")
      const unknownKey = yield* runCli(["publish"], { QUEUE_NAME: queue }, {
        stdin: JSON.stringify({ template_prefix: "a/b", to_emails: ["a@zulip.example"], bcc: ["x@zulip.example"] })
      })
      assert.strictEqual(unknownKey.exitCode, 1)
      assert.include(unknownKey.stderr, "bcc: unknown key")
      const tooDeep = yield* runCli(["publish"], { QUEUE_NAME: queue }, {
        stdin: JSON.stringify({ subject: "s", text: "t", to_emails: ["a@zulip.example"], context: { a: "DEEP" } })
          .replace("\"DEEP\"", "[".repeat(100_000) + "]".repeat(100_000))
      })
      assert.strictEqual(tooDeep.exitCode, 1)
      assert.include(tooDeep.stderr, "the body nests 100002 levels deep, over MAX_EVENT_DEPTH (64)")
      assert.notInclude(tooDeep.output, "RangeError")
      assert.strictEqual(yield* admin.messageCount(queue), 0)
    })))

  it.live("an event published from stdin is delivered by a running worker", () =>
    Effect.scoped(Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const server = yield* smtpServer()
      const env = { QUEUE_NAME: queue, EMAIL_HOST: server.host, EMAIL_PORT: String(server.port) }
      const worker = yield* startCli(["worker"], env)
      // a loaded machine can take several seconds to start a process
      yield* worker.waitForOutput(`consumer of ${queue} open`)
      const published = yield* runCli(["publish"], env, {
        stdin: JSON.stringify({ subject: "Hello", text: "From the CLI", to_emails: ["you@zulip.example"], message_id: "cli@zulip.example" })
      })
      assert.strictEqual(published.exitCode, 0, published.output)
      yield* waitUntil(() => server.messages.length === 1, () => `the email at the SMTP server; worker said:\n${worker.output().slice(-1500)}`)
      assert.strictEqual(server.messages[0]!.header("Message-ID"), "<cli@zulip.example>")
      assert.strictEqual(server.messages[0]!.header("Subject"), "Hello")
    })))
})
