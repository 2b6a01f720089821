/**
 * Zulip's events through the real worker (`dist/main.js`) with Zulip's own templates and catalogs, delivered to a
 * loopback SMTP server, compared with what Jinja2 configured as Zulip configures it renders for the same event
 * (../shared/zulip/reference/render_jinja.py): the subject and text byte for byte, the HTML once inlined with the
 * library Zulip uses.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { inline } from "@css-inline/css-inline"
import { assert, describe, it } from "@effect/vitest"
import { connect } from "amqplib"
import { Effect, FileSystem } from "effect"
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll } from "vitest"
import { buildCli, startCli, waitUntil } from "./support/processes.ts"
import { makeAdmin } from "./support/rabbitmq.ts"
import { smtpServer } from "./support/smtpServer.ts"
import {
  hasZulipReference,
  parseEmails,
  pythonWithJinja,
  renderJinjaScript,
  zulipEventsDir,
  zulipTemplatesDir
} from "./support/zulipReference.ts"

const realmsFile = join(zulipEventsDir, "realms.json")
const settings = {
  ZULIP_ADMINISTRATOR: "support@zulip.example.com",
  EMAIL_IMAGES_BASE_URL: "https://zulip.example.com/static/images/emails",
  PHYSICAL_ADDRESS: ""
}

/** Jinja2's subject, text and HTML (before CSS inlining) for one event file. */
const referenceRendering = (directory: string, eventFile: string) => {
  const out = join(directory, "reference")
  execFileSync(pythonWithJinja(), [renderJinjaScript, zulipTemplatesDir, eventFile, out], {
    env: { ...process.env, REALMS_FILE: realmsFile, ...settings }
  })
  const read = (suffix: string) => readFileSync(`${out}.${suffix}`, "utf8")
  return { subject: read("subject"), text: read("txt"), html: read("html") }
}

describe.runIf(hasZulipReference)("Zulip's events with Zulip's templates", () => {
  beforeAll(buildCli, 300_000)

  it.live("arrive as Zulip renders them, the German one in German", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "zulip-emails-" })
      const smtp = yield* smtpServer()
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const eventFiles = readdirSync(zulipEventsDir).filter((name) => name !== "realms.json").sort()
      assert.include(eventFiles, "invitation_de.json")

      const worker = yield* startCli([], {
        QUEUE_NAME: queue,
        EMAIL_HOST: smtp.host,
        EMAIL_PORT: String(smtp.port),
        QUEUE_STATS_DIR: join(directory, "queue_stats"),
        QUEUE_ERROR_DIR: join(directory, "queue_error"),
        TEMPLATES_DIR: zulipTemplatesDir,
        REALMS_FILE: realmsFile,
        EXTERNAL_HOST: "zulip.example.com",
        ...settings
      })
      const connection = yield* Effect.acquireRelease(
        Effect.promise(() => connect("amqp://guest:guest@127.0.0.1:5672")),
        (connection) => Effect.promise(() => connection.close())
      )
      const channel = yield* Effect.promise(() => connection.createConfirmChannel())
      for (const file of eventFiles) {
        // current Zulip producers add remove_suppressed_destination to every event (send_email, EMAIL_ALWAYS_ENQUEUED)
        const event = { ...JSON.parse(readFileSync(join(zulipEventsDir, file), "utf8")), remove_suppressed_destination: false }
        channel.sendToQueue(queue, Buffer.from(JSON.stringify(event)), { persistent: true, headers: { file } })
      }
      yield* Effect.promise(() => channel.waitForConfirms())
      yield* waitUntil(() => smtp.messages.length >= eventFiles.length, () => `${eventFiles.length} emails; got ${smtp.messages.length}:\n${worker.output().slice(-3000)}`)

      const received = parseEmails(smtp.messages.map((message) => message.raw))
      for (const file of eventFiles) {
        const event = JSON.parse(readFileSync(join(zulipEventsDir, file), "utf8")) as Record<string, unknown>
        const expected = referenceRendering(directory, join(zulipEventsDir, file))
        const email = received.find((candidate) => candidate.subject === expected.subject)
        assert.isDefined(email, `${file}: no email with Jinja2's subject ${JSON.stringify(expected.subject)}; got ${received.map((r) => r.subject).join(" | ")}`)
        assert.strictEqual(email!.text, expected.text, `${file}: text`)
        assert.strictEqual(email!.html, inline(expected.html, { loadRemoteStylesheets: false }), `${file}: HTML`)
        if (event["language"] === "de") assert.include(email!.text, "eingeladen")
      }
      assert.lengthOf(smtp.messages, eventFiles.length)
      assert.notInclude(worker.output(), "Problem handling data")
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)), { timeout: 240_000 })
})
