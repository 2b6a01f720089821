import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, FileSystem } from "effect"
import { TestClock } from "effect/testing"
import { join } from "node:path"
import type { OutgoingEmail } from "../src/domain/OutgoingEmail.ts"
import * as DevelopmentCapture from "../src/smtp/DevelopmentCapture.ts"
import { SmtpConnection } from "../src/smtp/SmtpConnection.ts"

const email = (messageId: string, subject = "Welcome to Example Org"): OutgoingEmail => ({
  messageId,
  envelope: { from: "noreply@zulip.example.com", to: ["alice@example.com", "bob@example.com"] },
  from: "Example Org <noreply@zulip.example.com>",
  to: ["Alice <alice@example.com>", "bob@example.com"],
  replyTo: [],
  subject,
  text: "Hello, welcome aboard.",
  html: "<p>Hello, welcome aboard.</p>",
  date: "Sun, 29 Nov 2026 10:15:30 +0000",
  headers: [["List-Id", "Example Org <example.zulip.example.com>"]],
  template: "zerver/emails/followup_day1",
  realm: "example"
})

/** A fresh temporary root, removed with the test's scope; the capture directory inside it does not exist yet. */
const captureDirectory = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const root = yield* fs.makeTempDirectoryScoped({ prefix: "es-capture-" })
  return { fs, directory: join(root, "var", "emails") }
})

const withCapture = <A, E>(directory: string, use: (smtp: SmtpConnection["Service"]) => Effect.Effect<A, E>) =>
  SmtpConnection.use(use).pipe(Effect.provide(DevelopmentCapture.layer({ directory })))

describe("DevelopmentCapture", () => {
  it.effect("writes the full message and its summary, private to the user, in a directory it creates", () =>
    Effect.gen(function*() {
      const { fs, directory } = yield* captureDirectory
      yield* TestClock.adjust("1 second")
      const report = yield* withCapture(directory, (smtp) => smtp.send(email("<a1b2c3@zulip.example.com>")))
      assert.deepStrictEqual(report.accepted, ["alice@example.com", "bob@example.com"])
      assert.deepStrictEqual(report.rejected, [])

      const base = "1970-01-01T00_00_01.000Z-a1b2c3@zulip.example.com"
      assert.deepStrictEqual((yield* fs.readDirectory(directory)).sort(), [`${base}.eml`, `${base}.json`])
      for (const file of [`${base}.eml`, `${base}.json`]) {
        assert.strictEqual((yield* fs.stat(join(directory, file))).mode & 0o777, 0o600)
      }
      const eml = yield* fs.readFileString(join(directory, `${base}.eml`))
      assert.include(eml, "Message-ID: <a1b2c3@zulip.example.com>\r\n")
      assert.include(eml, "Date: Sun, 29 Nov 2026 10:15:30 +0000\r\n")
      assert.include(eml, "To: Alice <alice@example.com>, bob@example.com\r\n")
      assert.include(eml, "List-Id: Example Org <example.zulip.example.com>\r\n")
      assert.notInclude(eml, "Reply-To:")
      assert.match(
        eml,
        /Content-Type: multipart\/alternative;[\s\S]*text\/plain[\s\S]*Hello, welcome aboard\.[\s\S]*text\/html/
      )
      assert.deepStrictEqual(JSON.parse(yield* fs.readFileString(join(directory, `${base}.json`))), {
        time: "1970-01-01T00:00:01.000Z",
        messageId: "<a1b2c3@zulip.example.com>",
        from: "Example Org <noreply@zulip.example.com>",
        to: ["Alice <alice@example.com>", "bob@example.com"],
        subject: "Welcome to Example Org",
        template: "zerver/emails/followup_day1",
        realm: "example",
        emlFile: `${base}.eml`,
        summaryFile: `${base}.json`
      })
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("lists the captured emails newest first and skips a summary it cannot read", () =>
    Effect.gen(function*() {
      const { fs, directory } = yield* captureDirectory
      assert.deepStrictEqual(yield* DevelopmentCapture.listCapturedEmails(directory), [])
      yield* withCapture(directory, (smtp) =>
        Effect.gen(function*() {
          for (const id of ["first", "second", "third"]) {
            yield* TestClock.adjust("1 minute")
            yield* smtp.send(email(`<${id}@zulip.example.com>`, `Subject ${id}`))
          }
        }))
      yield* fs.writeFileString(join(directory, "1970-01-01T09_00_00.000Z-broken.json"), "{not json")
      const listed = yield* DevelopmentCapture.listCapturedEmails(directory)
      assert.deepStrictEqual(listed.map((summary) => [summary.subject, summary.time]), [
        ["Subject third", "1970-01-01T00:03:00.000Z"],
        ["Subject second", "1970-01-01T00:02:00.000Z"],
        ["Subject first", "1970-01-01T00:01:00.000Z"]
      ])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("healthCheck always succeeds; an unwritable directory makes send Unavailable", () =>
    Effect.gen(function*() {
      const { fs, directory } = yield* captureDirectory
      yield* fs.makeDirectory(join(directory, ".."), { recursive: true })
      yield* fs.writeFileString(directory, "a file where the directory should be")
      const error = yield* withCapture(directory, (smtp) =>
        Effect.andThen(smtp.healthCheck, Effect.flip(smtp.send(email("<x@zulip.example.com>")))))
      assert.strictEqual(error._tag, "Unavailable")
      assert.strictEqual(error._tag === "Unavailable" ? error.dependency : null, "smtp")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("layerConfig writes to EMAIL_LOG_DIR", () =>
    Effect.gen(function*() {
      const { fs, directory } = yield* captureDirectory
      yield* SmtpConnection.use((smtp) => smtp.send(email("<env@zulip.example.com>"))).pipe(
        Effect.provide(DevelopmentCapture.layerConfig),
        Effect.provideService(
          ConfigProvider.ConfigProvider,
          ConfigProvider.fromEnv({ env: { EMAIL_LOG_DIR: directory } })
        )
      )
      assert.strictEqual((yield* fs.readDirectory(directory)).length, 2)
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
