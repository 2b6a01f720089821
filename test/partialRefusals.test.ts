/**
 * Partial recipient refusals on the real path: the worker process, a real broker and a loopback SMTP server that
 * answers 452 or 550 at RCPT TO for some recipients and accepts the others.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { join } from "node:path"
import { beforeAll } from "vitest"
import type { JsonObject } from "../src/domain/EmailEvent.ts"
import { buildCli, runCli, startCli, waitUntil } from "./support/processes.ts"
import { makeAdmin } from "./support/rabbitmq.ts"
import { smtpServer } from "./support/smtpServer.ts"

interface RecordedLine {
  readonly event: JsonObject
  readonly reason: { readonly tag: string; readonly message: string; readonly smtpCode: number | null }
}

const readRecords = (text: string): ReadonlyArray<RecordedLine> =>
  text.split("\n").filter((line) => line !== "").map((line) => {
    const [, events, reason] = line.split("\t") as [string, string, string]
    return { event: (JSON.parse(events) as Array<JsonObject>)[0]!, reason: JSON.parse(reason) as RecordedLine["reason"] }
  })

describe("partial recipient refusals", () => {
  beforeAll(buildCli, 120_000)

  it.live("accepted recipients get it once; a 452 recipient gets copies for it alone; a 550 recipient is recorded alone and replayed alone", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "es-partial-" })
      const smtp = yield* smtpServer()
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      for (const delay of [100, 200, 400]) admin.deleteAfter(`${queue}.delay.${delay}`)
      const replayQueue = yield* admin.declareQueue()
      const errorsFile = join(directory, `${queue}.errors`)
      const worker = yield* startCli(["worker"], {
        QUEUE_NAME: queue,
        EMAIL_HOST: smtp.host,
        EMAIL_PORT: String(smtp.port),
        QUEUE_ERROR_DIR: directory,
        QUEUE_STATS_DIR: directory,
        SEND_ATTEMPTS: "1",
        REQUEUE_DELAY: "100 millis",
        HTTP_PORT: "0",
        LOG_LEVEL: "Warn"
      })
      yield* admin.publish(queue, JSON.stringify({
        subject: "Partly refused",
        text: "Hello",
        to_emails: ["one@partial.example", "later+452@partial.example", "never+550@partial.example", "two@partial.example"],
        message_id: "<partial-1@test.example>"
      }))
      const records = fs.readFileString(errorsFile).pipe(Effect.map(readRecords), Effect.orElseSucceed(() => []))
      yield* waitUntil(
        () => records.pipe(Effect.map((lines) => lines.length === 2)),
        () => `two records; worker output:\n${worker.output()}`,
        "60 seconds"
      )
      assert.strictEqual(yield* worker.terminate, 0, worker.output())

      // one message reached the server, for the two accepted recipients; each copy for the 452 one was refused whole
      assert.deepStrictEqual(smtp.messages.map((message) => message.envelope.to), [["one@partial.example", "two@partial.example"]])
      assert.strictEqual(smtp.messages[0]!.header("Message-ID"), "<partial-1@test.example>")
      const [deferredRecord, refusedRecord] = [...(yield* records)].sort((a, b) => a.reason.tag.localeCompare(b.reason.tag)) as [RecordedLine, RecordedLine]
      assert.strictEqual(deferredRecord.reason.tag, "NotDelivered")
      assert.deepStrictEqual(deferredRecord.event.to_emails, ["later+452@partial.example"])
      assert.strictEqual(deferredRecord.event.failed_tries, 3)
      assert.match(deferredRecord.event.message_id as string, /^<partial-1\.rcpt-[0-9a-f]{12}@test\.example>$/)
      assert.strictEqual(refusedRecord.reason.tag, "Rejected")
      assert.strictEqual(refusedRecord.reason.smtpCode, 550)
      assert.deepStrictEqual(refusedRecord.event.to_emails, ["never+550@partial.example"])
      assert.notInclude(refusedRecord.reason.message, "one@partial.example")
      assert.notInclude(refusedRecord.reason.message, "later+452")
      assert.match(refusedRecord.event.message_id as string, /^<partial-1\.rcpt-[0-9a-f]{12}@test\.example>$/)

      const replay = yield* runCli(["replay", errorsFile, "--tag", "Rejected"], { QUEUE_NAME: replayQueue })
      assert.strictEqual(replay.exitCode, 0, replay.output)
      const message = yield* admin.get(replayQueue)
      assert.notStrictEqual(message, false)
      if (message !== false) {
        assert.deepStrictEqual((JSON.parse(message.content.toString("utf8")) as JsonObject).to_emails, ["never+550@partial.example"])
      }
      assert.strictEqual(yield* admin.messageCount(replayQueue), 0)
    }).pipe(Effect.provide(NodeFileSystem.layer)), 180_000)
})
