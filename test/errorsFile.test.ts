import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { TestClock } from "effect/testing"
import { createHash } from "node:crypto"
import { join } from "node:path"
import * as ErrorsFile from "../src/records/ErrorsFile.ts"
import { FailureStore, type FailureReason } from "../src/records/FailureStore.ts"

// asctime is local time: pin a zone that is not UTC so the test proves the conversion (Node honours a runtime TZ).
process.env.TZ = "America/New_York"

const asctimePattern = /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3]\d \d{2}:\d{2}:\d{2} \d{4}$/

const rejected: FailureReason = { tag: "Rejected", message: "550 5.1.1 no such user", attempts: 1, smtpCode: 550 }

const setup = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const root = yield* fs.makeTempDirectoryScoped({ prefix: "es-errors-" })
  const directory = join(root, "queue_error")
  const store = yield* FailureStore.pipe(
    Effect.provide(ErrorsFile.layer({ directory, queueName: "email_senders" }))
  )
  const path = join(directory, "email_senders.errors")
  const lines = Effect.map(fs.readFileString(path), (text) => {
    assert.isTrue(text.endsWith("\n"))
    return text.slice(0, -1).split("\n")
  })
  return { fs, path, store, lines }
}).pipe(Effect.provide(NodeFileSystem.layer))

/** Splits a record the way an operator's tools would: on TAB, into the time, the events array and the reason. */
const parse = (line: string) => {
  const fields = line.split("\t")
  assert.strictEqual(fields.length, 3)
  const [time, events, reason] = fields as [string, string, string]
  assert.match(time, asctimePattern)
  return { time, events: JSON.parse(events) as unknown, reason: JSON.parse(reason) as unknown }
}

describe("ErrorsFile", () => {
  it.effect("appends asctime, TAB, the event in a JSON array, TAB, the reason, newline", () =>
    Effect.gen(function*() {
      const { store, lines } = yield* setup
      // 21:09:25 UTC is 16:09:25 in New York (EST); day 4 is padded with a space as Python does
      yield* TestClock.setTime(Date.UTC(2025, 2, 4, 21, 9, 25))
      const event = { template_prefix: "zerver/emails/confirm_new_email", to_emails: ["a@example.com"], failed_tries: 3 }
      yield* store.record({ event, reason: rejected })
      const [line] = yield* lines
      assert.strictEqual(
        line,
        "Tue Mar  4 16:09:25 2025\t" +
          "[{\"template_prefix\":\"zerver/emails/confirm_new_email\",\"to_emails\":[\"a@example.com\"],\"failed_tries\":3}]\t" +
          "{\"tag\":\"Rejected\",\"message\":\"550 5.1.1 no such user\",\"attempts\":1,\"smtpCode\":550}"
      )
      const record = parse(line!)
      assert.deepStrictEqual(record.events, [event])
      assert.deepStrictEqual(Object.keys(record.reason as object), ["tag", "message", "attempts", "smtpCode"])
    }))

  it.effect("keeps appending and pads two-digit days without a space", () =>
    Effect.gen(function*() {
      const { store, lines } = yield* setup
      yield* TestClock.setTime(Date.UTC(2025, 10, 23, 5, 4, 3))
      yield* store.record({ event: { n: 1 }, reason: rejected })
      yield* store.record({ event: { n: 2 }, reason: rejected })
      const written = yield* lines
      assert.deepStrictEqual(written.map((line) => parse(line).events), [[{ n: 1 }], [{ n: 2 }]])
      assert.strictEqual(parse(written[0]!).time, "Sun Nov 23 00:04:03 2025")
    }))

  it.effect("records a body that was not a JSON object as its raw text, newlines and tabs escaped", () =>
    Effect.gen(function*() {
      const { store, lines } = yield* setup
      const reason: FailureReason = { tag: "InvalidEvent", message: "not JSON:\n\tline 2", attempts: 0, smtpCode: null }
      yield* store.record({ event: "not json\n\t{", reason })
      const written = yield* lines
      assert.strictEqual(written.length, 1)
      const record = parse(written[0]!)
      assert.deepStrictEqual(record.events, ["not json\n\t{"])
      assert.deepStrictEqual(record.reason, reason)
    }))

  it.effect("creates the directory and the file with mode 0600", () =>
    Effect.gen(function*() {
      const { fs, path, store } = yield* setup
      yield* store.record({ event: {}, reason: rejected })
      const info = yield* fs.stat(path)
      assert.strictEqual(info.mode & 0o777, 0o600)
    }))

  it.effect("concurrent records each land as one whole line", () =>
    Effect.gen(function*() {
      const { store, lines } = yield* setup
      // large events make a torn or interleaved write visible
      const padding = "x".repeat(64 * 1024)
      const ids = Array.from({ length: 40 }, (_, i) => i)
      yield* Effect.forEach(ids, (id) => store.record({ event: { id, padding }, reason: rejected }), {
        concurrency: "unbounded"
      })
      const written = (yield* lines).map((line) => parse(line).events as [{ id: number; padding: string }])
      assert.deepStrictEqual(written.map(([event]) => event.id).sort((a, b) => a - b), ids)
      assert.isTrue(written.every(([event]) => event.padding === padding))
    }))

  it.effect("an event that cannot be serialised is not an outage: the record keeps the body's text, size and SHA-256", () =>
    Effect.gen(function*() {
      const { store, lines } = yield* setup
      let deep: unknown = []
      for (let level = 0; level < 100_000; level++) deep = [deep]
      const body = "[".repeat(100_001) + "]".repeat(100_001)
      yield* store.record({ event: deep, reason: rejected, body })
      yield* store.record({ event: { size: 1n }, reason: rejected })
      const [deepLine, bigIntLine] = (yield* lines).map(parse)
      assert.deepStrictEqual(deepLine!.events, [body])
      const reason = deepLine!.reason as FailureReason
      assert.deepStrictEqual(reason.body, {
        bytes: body.length,
        sha256: createHash("sha256").update(body).digest("hex"),
        keptBytes: body.length
      })
      assert.include(reason.message, "the event cannot be serialised: the record keeps the body's text (200002 bytes")
      assert.deepStrictEqual(bigIntLine!.events, [])
      assert.include((bigIntLine!.reason as FailureReason).message, "cannot be serialised, and there is no body to keep")
    }))

  it.effect("keeps at most MAX_EVENT_BYTES of a body, escapes included, with its full size and SHA-256", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const root = yield* fs.makeTempDirectoryScoped({ prefix: "es-errors-" })
      const store = yield* FailureStore.pipe(
        Effect.provide(ErrorsFile.layer({ directory: root, queueName: "q", maxEventBytes: 1000 }))
      )
      // a control character is six bytes once escaped: the cut counts those, not the body's own bytes
      const body = "\u0001é".repeat(10_000)
      yield* store.record({ event: body, reason: rejected, body })
      const text = yield* fs.readFileString(join(root, "q.errors"))
      const record = parse(text.trimEnd())
      const kept = (record.events as Array<string>)[0]!
      assert.isTrue(body.startsWith(kept))
      assert.isAtMost(Buffer.byteLength(JSON.stringify(kept)), 1000)
      assert.isAbove(kept.length, 100)
      const reason = record.reason as FailureReason
      assert.deepStrictEqual(reason.body, {
        bytes: Buffer.byteLength(body),
        sha256: createHash("sha256").update(body).digest("hex"),
        keptBytes: Buffer.byteLength(kept)
      })
      assert.match(reason.message, /^550 5\.1\.1 no such user; the event is over MAX_EVENT_BYTES \(1000\): the body was cut, the record keeps its first \d+ of 30000 bytes \(sha256 [0-9a-f]{64}\)$/)
      assert.isAtMost(text.length, 1000 + 1024)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("keeps a reason's message to 600 characters, saying how much more there was", () =>
    Effect.gen(function*() {
      const { store, lines } = yield* setup
      const message = `invalid email event: ${"to_emails: Expected string; ".repeat(1_000)}`
      yield* store.record({ event: { a: 1 }, reason: { ...rejected, message } })
      const [line] = (yield* lines).map(parse)
      const kept = (line!.reason as FailureReason).message
      assert.strictEqual(kept, `${message.slice(0, 600)}… (${message.length - 600} more characters)`)
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
