import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer, Result, Stdio } from "effect"
import { TestConsole } from "effect/testing"
import { join } from "node:path"
import { beforeAll } from "vitest"
import type { JsonObject } from "../src/domain/EmailEvent.ts"
import { QueueError } from "../src/domain/errors.ts"
import {
  describeProgress,
  type ErrorsRecord,
  freshEvent,
  parseAsctime,
  parseErrorsLine,
  progressBar,
  recordSelected,
  type ReplayFilters,
  replayedMarksPath,
  replayFailures,
  type ReplayTarget,
  templateSelected
} from "../src/records/replayFailures.ts"
import { captureLogs } from "./support/logCapture.ts"
import { buildCli, runCli, startCli, waitUntil } from "./support/processes.ts"
import { makeAdmin } from "./support/rabbitmq.ts"
import { smtpServer } from "./support/smtpServer.ts"

const passwordReset = (to: string, extra: JsonObject = {}): JsonObject => ({
  template_prefix: "zerver/emails/password_reset",
  to_emails: [to],
  context: { email: to, reset_url: "https://zulip.example/reset/abc" },
  ...extra
})
const preRendered = (to: string, extra: JsonObject = {}): JsonObject => ({
  subject: "Hello",
  text: "Hi there",
  to_emails: [to],
  ...extra
})

const line = (asctime: string, events: ReadonlyArray<unknown>, tag?: string) =>
  `${asctime}\t${JSON.stringify(events)}${
    tag === undefined ? "" : `\t${JSON.stringify({ tag, message: "m", attempts: 1, smtpCode: null })}`
  }\n`

describe("reading .errors lines", () => {
  it("reads Python's asctime as local time, with the space-padded day", () => {
    const date = parseAsctime("Tue Mar  4 16:09:25 2025")!
    assert.deepStrictEqual(
      [date.getFullYear(), date.getMonth(), date.getDate(), date.getHours(), date.getMinutes(), date.getSeconds()],
      [2025, 2, 4, 16, 9, 25]
    )
    assert.strictEqual(parseAsctime("Wed Dec 24 08:00:00 2025")!.getDate(), 24)
    assert.isNull(parseAsctime("2025-03-04 16:09:25"))
    assert.isNull(parseAsctime("Tue Foo  4 16:09:25 2025"))
  })

  it("reads Zulip's two-column lines and this worker's three-column lines; refuses the rest with the reason", () => {
    const zulip = Result.getOrThrow(parseErrorsLine(line("Tue Mar  4 16:09:25 2025", [{ a: 1 }, { b: 2 }]).trimEnd()))
    assert.strictEqual(zulip.events.length, 2)
    assert.isNull(zulip.reasonTag)
    assert.isNotNull(zulip.time)
    const ours = Result.getOrThrow(parseErrorsLine(line("Tue Mar  4 16:09:25 2025", ["raw"], "InvalidEvent").trimEnd()))
    assert.strictEqual(ours.reasonTag, "InvalidEvent")
    assert.deepStrictEqual(ours.events, ["raw"])
    const failure = (text: string) => Result.getOrThrow(Result.flip(parseErrorsLine(text)))
    assert.match(failure("no tabs here"), /got 1 field/)
    assert.match(failure("Tue Mar  4 16:09:25 2025\t{not json"), /not JSON/)
    assert.match(failure("Tue Mar  4 16:09:25 2025\t{\"a\":1}"), /not a JSON array/)
  })

  it("filters by reason tag, time range and template (full prefix or short name)", () => {
    const record: ErrorsRecord = { time: new Date(2025, 2, 4, 16, 0, 0), events: [], reasonTag: "Rejected", cutBody: null, reason: null }
    const selected = (filters: ReplayFilters) => recordSelected(record, filters)
    assert.isTrue(selected({}))
    assert.isTrue(selected({ tag: "Rejected", since: new Date(2025, 2, 4, 16, 0, 0), until: new Date(2025, 2, 4, 16, 0, 0) }))
    assert.isFalse(selected({ tag: "NotDelivered" }))
    assert.isFalse(selected({ since: new Date(2025, 2, 4, 16, 0, 1) }))
    assert.isFalse(selected({ until: new Date(2025, 2, 4, 15, 59, 59) }))
    assert.isFalse(recordSelected({ ...record, time: null }, { since: new Date(0) }), "an unreadable time never matches a time filter")
    assert.isTrue(templateSelected(passwordReset("a@x"), { template: "zerver/emails/password_reset" }))
    assert.isTrue(templateSelected(passwordReset("a@x"), { template: "password_reset" }))
    assert.isFalse(templateSelected(passwordReset("a@x"), { template: "reset" }))
    assert.isFalse(templateSelected(preRendered("a@x"), { template: "password_reset" }))
    assert.isFalse(templateSelected("a raw-text body", { template: "password_reset" }))
    assert.isTrue(templateSelected("a raw-text body", {}))
  })

  it.effect("a fresh event has no failed_tries and passes the worker's schema; anything else says why, not what", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* freshEvent(passwordReset("a@x", { failed_tries: 4 })), passwordReset("a@x"))
      assert.strictEqual(yield* Effect.flip(freshEvent("secret body text")), "not an event object (a raw-text body)")
      assert.strictEqual(yield* Effect.flip(freshEvent(["secret"])), "not an event object (an array)")
      assert.match(yield* Effect.flip(freshEvent({ to_emails: ["a@x"] })), /^invalid email event: template_prefix/)
    }))

  it("draws progress as a bar for a terminal and as text for a log", () => {
    assert.strictEqual(describeProgress(500_000, 2_000_000, 1234), " 25% (0.5 of 2.0 MB, 1234 lines)")
    assert.strictEqual(progressBar(1_000_000, 2_000_000, 10), `[${"#".repeat(15)}${".".repeat(15)}]  50% (1.0 of 2.0 MB, 10 lines)`)
    assert.strictEqual(progressBar(2_000_000, 2_000_000, 10).slice(0, 32), `[${"#".repeat(30)}]`)
  })
})

/** A publisher that records what it is given, and fails on the calls numbered in `failOn` (1-based). */
const recordingTarget = (failOn: ReadonlyArray<number> = []) => {
  const published: Array<JsonObject> = []
  let calls = 0
  const target: ReplayTarget = {
    _tag: "Publish",
    publishEmail: (event) =>
      Effect.suspend(() => {
        calls++
        if (failOn.includes(calls)) return Effect.fail(new QueueError({ message: "not confirmed", operation: "publish" }))
        published.push(event)
        return Effect.void
      })
  }
  return { target, published }
}

const withErrorsFile = (text: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped({ prefix: "es-replay-" })
    const file = join(directory, "email_senders.errors")
    yield* fs.writeFileString(file, text)
    const marks = fs.exists(replayedMarksPath(file)).pipe(
      Effect.flatMap((exists) => exists ? fs.readFileString(replayedMarksPath(file)) : Effect.succeed("")),
      Effect.map((content) => content.split("\n").filter((mark) => mark !== ""))
    )
    return { fs, file, marks }
  })

const programLayer = Layer.mergeAll(NodeFileSystem.layer, Stdio.layerTest({}))

describe("replayFailures", () => {
  it.effect("publishes each valid event once without failed_tries, marks it, and a second run publishes nothing", () =>
    Effect.gen(function*() {
      const { file, marks } = yield* withErrorsFile(
        line("Tue Mar  4 16:09:25 2025", [passwordReset("a+550@zulip.example", { failed_tries: 3 })], "Rejected") +
          line("Tue Mar  4 16:10:00 2025", ["a raw-text body that was not JSON"], "InvalidEvent") +
          line("Tue Mar  4 16:11:00 2025", [{ to_emails: ["b@zulip.example"] }], "InvalidEvent") +
          line("Tue Mar  4 16:12:00 2025", [preRendered("c@zulip.example")])
      )
      const first = recordingTarget()
      const summary = yield* replayFailures({ file, filters: {}, target: first.target })
      assert.deepStrictEqual(first.published, [passwordReset("a+550@zulip.example"), preRendered("c@zulip.example")])
      assert.deepStrictEqual(summary, { lines: 4, replayed: 2, alreadyReplayed: 0, filteredOut: 0, invalid: 2 })
      assert.strictEqual((yield* marks).length, 2)

      const second = recordingTarget()
      const again = yield* replayFailures({ file, filters: {}, target: second.target })
      assert.deepStrictEqual(second.published, [])
      assert.deepStrictEqual(again, { lines: 4, replayed: 0, alreadyReplayed: 2, filteredOut: 0, invalid: 2 })
    }).pipe(Effect.provide(programLayer)))

  it.effect("each record on its own: deep, cut and unparsable records are reported and skipped, the next one replayed", () =>
    Effect.gen(function*() {
      const { file } = yield* withErrorsFile(
        deepRecord + cutRecord + unparsableRecord + line("Tue Mar  4 16:12:00 2025", [preRendered("next@zulip.example")]) +
          line("Tue Mar  4 16:13:00 2025", [preRendered("dies@zulip.example"), preRendered("last@zulip.example")])
      )
      const published: Array<JsonObject> = []
      const target: ReplayTarget = {
        _tag: "Publish",
        // a defect while publishing one event (a bug, not the broker) is that event's problem alone
        publishEmail: (event) =>
          (event.to_emails as Array<string>)[0] === "dies@zulip.example"
            ? Effect.die(new RangeError("Maximum call stack size exceeded"))
            : Effect.sync(() => void published.push(event))
      }
      const logs = captureLogs()
      const summary = yield* replayFailures({ file, filters: {}, target }).pipe(Effect.provide(logs.layer))
      const warnings = logs.lines.map((logged) => logged.message)
      assert.deepStrictEqual(published, [preRendered("next@zulip.example"), preRendered("last@zulip.example")])
      assert.deepStrictEqual(summary, { lines: 5, replayed: 2, alreadyReplayed: 0, filteredOut: 0, invalid: 4 })
      assert.match(warnings[0]!, /^line 1: skipped, not a replayable event: invalid email event: the body nests 6002 levels deep, over MAX_EVENT_DEPTH \(64\)$/)
      assert.strictEqual(
        warnings[1],
        "line 2: skipped, the record keeps only the first 20 of the body's 2000000 bytes (cut at MAX_EVENT_BYTES), " +
          `so it cannot be replayed; the whole body has sha256 ${"ab".repeat(32)}`
      )
      assert.match(warnings[2]!, /^line 3: skipped, the events field is not JSON/)
      assert.match(warnings[3]!, /^line 5: skipped, it could not be handled: RangeError: Maximum call stack size exceeded$/)
    }).pipe(Effect.provide(programLayer)))

  it.effect("a publish that fails stops the replay; only confirmed events are marked, so a rerun sends just the rest", () =>
    Effect.gen(function*() {
      // Zulip writes a whole batch on one line: marks are per event, so a crash inside the line re-sends nothing
      const batch = [preRendered("1@zulip.example"), preRendered("2@zulip.example"), preRendered("3@zulip.example")]
      const { file, marks } = yield* withErrorsFile(line("Tue Mar  4 16:09:25 2025", batch))
      const failing = recordingTarget([2])
      const error = yield* Effect.flip(replayFailures({ file, filters: {}, target: failing.target }))
      assert.strictEqual(error._tag, "QueueError")
      assert.deepStrictEqual(failing.published, [batch[0]])
      assert.strictEqual((yield* marks).length, 1)

      const rerun = recordingTarget()
      yield* replayFailures({ file, filters: {}, target: rerun.target })
      assert.deepStrictEqual(rerun.published, [batch[1], batch[2]])
      assert.strictEqual((yield* marks).length, 3)
    }).pipe(Effect.provide(programLayer)))

  it.effect("identical lines are distinct records; a torn last mark (crash mid-append) only re-sends its event", () =>
    Effect.gen(function*() {
      const same = line("Tue Mar  4 16:09:25 2025", [preRendered("same@zulip.example")], "NotDelivered")
      const { file, fs, marks } = yield* withErrorsFile(same + same)
      const first = recordingTarget()
      yield* replayFailures({ file, filters: {}, target: first.target })
      assert.strictEqual(first.published.length, 2)
      const [firstMark, secondMark] = yield* marks
      // keep the first mark whole and tear the second one, as a crash during its write would
      yield* fs.writeFileString(replayedMarksPath(file), `${firstMark}\n${secondMark!.slice(0, 20)}`)
      const rerun = recordingTarget()
      yield* replayFailures({ file, filters: {}, target: rerun.target })
      assert.strictEqual(rerun.published.length, 1)
      const after = yield* marks
      assert.deepStrictEqual(after.map((mark) => mark.split("\t")[0]), [
        firstMark!.split("\t")[0],
        secondMark!.slice(0, 20),
        secondMark!.split("\t")[0]
      ])
    }).pipe(Effect.provide(programLayer)))

  it.effect("a dry run prints what the filters select, publishes and marks nothing", () =>
    Effect.gen(function*() {
      const { file, fs } = yield* withErrorsFile(
        line("Tue Mar  4 16:09:25 2025", [passwordReset("a@zulip.example"), preRendered("b@zulip.example")], "Rejected") +
          line("Wed Mar  5 09:00:00 2025", [passwordReset("c@zulip.example")], "Rejected") +
          line("Wed Mar  5 09:30:00 2025", [passwordReset("d@zulip.example")], "NotDelivered")
      )
      const summary = yield* replayFailures({
        file,
        filters: { tag: "Rejected", template: "password_reset", until: new Date(2025, 2, 5, 0, 0, 0) },
        target: { _tag: "DryRun" }
      })
      assert.deepStrictEqual(summary, { lines: 3, replayed: 1, alreadyReplayed: 0, filteredOut: 3, invalid: 0 })
      const printed = yield* TestConsole.logLines
      assert.strictEqual(printed.length, 1)
      assert.match(String(printed[0]), /^line 1: would replay zerver\/emails\/password_reset \(Rejected, failed /)
      assert.isFalse(yield* fs.exists(replayedMarksPath(file)))
    }).pipe(Effect.provide(programLayer)))
})

/** One errors line with the events field written as is: a value this deep cannot go through JSON.stringify. */
const rawLine = (events: string, reason: object) => `Tue Mar  4 16:09:25 2025\t${events}\t${JSON.stringify(reason)}\n`
const nested = (levels: number) => "[".repeat(levels) + "]".repeat(levels)
/** 6,000 levels in the context: what used to end the replay with RangeError */
const deepRecord = rawLine(
  `[${JSON.stringify(preRendered("deep@zulip.example", { context: { a: "DEEP" } })).replace("\"DEEP\"", nested(6_000))}]`,
  { tag: "InvalidEvent", message: "m", attempts: 0, smtpCode: null }
)
const cutRecord = rawLine(JSON.stringify([JSON.stringify(preRendered("cut@zulip.example")).slice(0, 20)]), {
  tag: "InvalidEvent",
  message: "invalid email event: the body is 2000000 bytes, over MAX_EVENT_BYTES (1000); the body was cut",
  attempts: 0,
  smtpCode: null,
  body: { bytes: 2_000_000, sha256: "ab".repeat(32), keptBytes: 20 }
})
const unparsableRecord = "Tue Mar  4 16:09:25 2025\t[{\"subject\": \t{\"tag\":\"InvalidEvent\"}\n"

describe("replay command", () => {
  beforeAll(buildCli, 120_000)

  it.live("a deep, a cut and an unparsable record are skipped, the valid next one replayed; --dry-run agrees; exit 2", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "es-replay-cli-" })
      const admin = yield* makeAdmin
      const replayQueue = yield* admin.declareQueue()
      const errorsFile = join(directory, "email_senders.errors")
      yield* fs.writeFileString(
        errorsFile,
        deepRecord + cutRecord + unparsableRecord + line("Tue Mar  4 16:12:00 2025", [preRendered("next@zulip.example")])
      )
      const env = { QUEUE_NAME: replayQueue }
      const dryRun = yield* runCli(["replay", errorsFile, "--dry-run"], env)
      assert.strictEqual(dryRun.exitCode, 2, dryRun.output)
      assert.deepStrictEqual(dryRun.stdout.match(/^line \d+: would replay \S+/gm), ["line 4: would replay (pre-rendered)"])
      assert.include(dryRun.stdout, "would replay 1 event(s)")
      assert.include(dryRun.stdout, "invalid, skipped: 3")
      assert.include(dryRun.output, "line 1: skipped, not a replayable event: invalid email event: the body nests 6002 levels deep")
      assert.include(dryRun.output, "line 2: skipped, the record keeps only the first 20 of the body's 2000000 bytes")

      const replay = yield* runCli(["replay", errorsFile], env)
      assert.strictEqual(replay.exitCode, 2, replay.output)
      assert.include(replay.stdout, "replayed 1 event(s)")
      assert.notInclude(replay.output, "RangeError")
      const message = yield* admin.get(replayQueue)
      assert.notStrictEqual(message, false)
      if (message !== false) assert.deepStrictEqual((JSON.parse(message.content.toString("utf8")) as JsonObject).to_emails, ["next@zulip.example"])
      assert.strictEqual(yield* admin.messageCount(replayQueue), 0)

      const again = yield* runCli(["replay", errorsFile], env)
      assert.strictEqual(again.exitCode, 2, again.output)
      assert.include(again.stdout, "replayed 0 event(s)")
    }).pipe(Effect.provide(NodeFileSystem.layer)), 300_000)

  it.live("replays the worker's own 550 failures once with filters; a second replay and a dry run publish nothing", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "es-replay-cli-" })
      const smtp = yield* smtpServer()
      const admin = yield* makeAdmin
      const workerQueue = yield* admin.declareQueue()
      const replayQueue = yield* admin.declareQueue()
      const errorDirectory = join(directory, "queue_error")
      const errorsFile = join(errorDirectory, `${workerQueue}.errors`)

      const worker = yield* startCli(["worker"], {
        QUEUE_NAME: workerQueue,
        EMAIL_HOST: smtp.host,
        EMAIL_PORT: String(smtp.port),
        QUEUE_ERROR_DIR: errorDirectory,
        QUEUE_STATS_DIR: join(directory, "queue_stats"),
        SEND_ATTEMPTS: "1",
        LOG_LEVEL: "Warn"
      })
      const events = [
        passwordReset("first+550@zulip.example", { failed_tries: 2, message_id: "replay-1@test" }),
        passwordReset("second+550@zulip.example", { message_id: "replay-2@test" }),
        preRendered("third+550@zulip.example", { message_id: "replay-3@test" }),
        preRendered("delivered@zulip.example", { message_id: "replay-4@test" })
      ]
      for (const event of events) yield* admin.publish(workerQueue, JSON.stringify(event))
      const recordedLines = fs.readFileString(errorsFile).pipe(
        Effect.map((text) => text.split("\n").filter((record) => record !== "").length),
        Effect.orElseSucceed(() => 0)
      )
      yield* waitUntil(
        () => recordedLines.pipe(Effect.map((count) => count === 3)),
        () => `three failures recorded; worker output:\n${worker.output()}`,
        "90 seconds"
      )
      yield* waitUntil(() => smtp.messages.length === 1, "the deliverable email sent")
      assert.strictEqual(yield* worker.terminate, 0, worker.output())
      // the worker's own records, with the reason column (the permanent 550 is not retried)
      assert.match(yield* fs.readFileString(errorsFile), /\t\{"tag":"Rejected",/)

      const env = { QUEUE_NAME: replayQueue }
      const filtered = [errorsFile, "--tag", "Rejected", "--template", "password_reset"]
      const dryRun = yield* runCli(["replay", ...filtered, "--dry-run"], env)
      assert.strictEqual(dryRun.exitCode, 0, dryRun.output)
      assert.strictEqual(dryRun.stdout.match(/would replay zerver\/emails\/password_reset \(Rejected/g)?.length, 2, dryRun.output)
      assert.strictEqual(yield* admin.messageCount(replayQueue), 0)
      assert.isFalse(yield* fs.exists(replayedMarksPath(errorsFile)))

      const replay = yield* runCli(["replay", ...filtered], env)
      assert.strictEqual(replay.exitCode, 0, replay.output)
      assert.include(replay.stdout, "replayed 2 event(s)")
      assert.strictEqual(yield* admin.messageCount(replayQueue), 2)
      const replayed: Array<JsonObject> = []
      for (let n = 0; n < 2; n++) {
        const message = yield* admin.get(replayQueue)
        assert.notStrictEqual(message, false)
        if (message !== false) replayed.push(JSON.parse(message.content.toString("utf8")) as JsonObject)
      }
      assert.sameMembers(replayed.map((event) => event.message_id), ["replay-1@test", "replay-2@test"])
      assert.isTrue(replayed.every((event) => !("failed_tries" in event)), "replayed events start afresh")

      const again = yield* runCli(["replay", ...filtered], env)
      assert.strictEqual(again.exitCode, 0, again.output)
      assert.include(again.stdout, "replayed 0 event(s)")
      assert.include(again.stdout, "already replayed: 2")
      assert.strictEqual(yield* admin.messageCount(replayQueue), 0)
    }).pipe(Effect.provide(NodeFileSystem.layer)), 300_000)
})
