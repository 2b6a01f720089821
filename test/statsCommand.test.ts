import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Result } from "effect"
import { join } from "node:path"
import { beforeAll } from "vitest"
import {
  exitCodeOf,
  parseQueueStats,
  queueHealth,
  renderHealth,
  thresholdsFor,
  unknownHealth
} from "../src/records/queueHealth.ts"
import { buildCli, runCli } from "./support/processes.ts"
import { makeAdmin } from "./support/rabbitmq.ts"

const now = 1_700_000_000

/** A stats file as Zulip's worker (and `StatsFile`) writes it: orjson, 2-space indent, trailing newline. */
const statsFile = (fields: { updatedAgo: number; average: number | null }) =>
  JSON.stringify({
    update_time: now - fields.updatedAgo + 0.123,
    recent_average_consume_time: fields.average,
    queue_last_emptied_timestamp: now - 3600,
    consumed_since_last_emptied: 250
  }, null, 2) + "\n"

const verdict = (file: string, messageCount: number, queueName = "email_senders") => {
  return queueHealth({
    queueName,
    stats: Result.getOrThrow(parseQueueStats(file)),
    messageCount,
    nowSeconds: now,
    thresholds: thresholdsFor(queueName)
  })
}

describe("check_rabbitmq_queue verdict", () => {
  it("CRITICAL 'queue appears to be stuck' when the stats are older than 180 s while more than 10 messages wait", () => {
    const health = verdict(statsFile({ updatedAgo: 181, average: 0.01 }), 11)
    assert.strictEqual(health.status, "CRITICAL")
    assert.include(health.summary, "queue appears to be stuck")
    assert.include(health.summary, "queue size 11")
    assert.strictEqual(exitCodeOf(health.status), 2)
  })

  it("old stats are not 'stuck' with 10 messages or fewer, nor at exactly 180 s", () => {
    assert.strictEqual(verdict(statsFile({ updatedAgo: 600, average: 0.01 }), 10).status, "OK")
    assert.strictEqual(verdict(statsFile({ updatedAgo: 179.9, average: 0.01 }), 5000).status, "OK")
  })

  it("OK while no average is known yet, whatever the backlog (the stuck rule catches a worker that never starts)", () => {
    const health = verdict(statsFile({ updatedAgo: 5, average: null }), 100_000)
    assert.strictEqual(health.status, "OK")
    assert.include(health.summary, "no recent consume time yet")
  })

  it("WARNING when messages × average is above 90 s, CRITICAL above 300 s (email_senders)", () => {
    const warning = verdict(statsFile({ updatedAgo: 1, average: 0.5 }), 181)
    assert.strictEqual(warning.status, "WARNING")
    assert.include(warning.summary, "clearing the backlog will take too long: 90.5 s, size: 181")
    assert.strictEqual(exitCodeOf(warning.status), 1)
    const critical = verdict(statsFile({ updatedAgo: 1, average: 0.5 }), 601)
    assert.strictEqual(critical.status, "CRITICAL")
    assert.include(critical.summary, "300.5 s")
  })

  it("OK up to and including the warning threshold, with the time to clear and performance data", () => {
    const health = verdict(statsFile({ updatedAgo: 1, average: 0.5 }), 180)
    assert.strictEqual(health.status, "OK")
    assert.strictEqual(
      renderHealth(health),
      "OK: email_senders: 180 waiting, about 90 s to clear | messages=180;;;0 clear_time=90s;90;300;0"
    )
    assert.strictEqual(exitCodeOf(health.status), 0)
  })

  it("deferred_email_senders has Zulip's longer thresholds (3600 s / 4500 s)", () => {
    assert.strictEqual(verdict(statsFile({ updatedAgo: 1, average: 1 }), 3600, "deferred_email_senders").status, "OK")
    assert.strictEqual(verdict(statsFile({ updatedAgo: 1, average: 1 }), 3601, "deferred_email_senders").status, "WARNING")
    assert.strictEqual(verdict(statsFile({ updatedAgo: 1, average: 1 }), 4501, "deferred_email_senders").status, "CRITICAL")
  })

  it("a stats file that is not Zulip's (not JSON, a key missing, a wrong type) is refused with the reason", () => {
    for (const text of ["", "{not json", JSON.stringify({ update_time: now }), statsFile({ updatedAgo: 1, average: 1 }).replace("250", "\"many\"")]) {
      const failure = Result.getOrThrow(Result.flip(parseQueueStats(text)))
      assert.match(failure, /^invalid stats file: /, text)
    }
    const unknown = unknownHealth("email_senders", "no stats file")
    assert.strictEqual(renderHealth(unknown), "UNKNOWN: email_senders: no stats file")
    assert.strictEqual(exitCodeOf(unknown.status), 3)
  })
})

describe("stats command", () => {
  beforeAll(buildCli, 120_000)

  it.live("prints one Nagios line and exits 2 / 0 / 3 from the stats file and the broker's queue depth", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const statsDirectory = yield* fs.makeTempDirectoryScoped({ prefix: "es-stats-" })
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      for (let n = 0; n < 11; n++) yield* admin.publish(queue, JSON.stringify({ n }))
      const env = { QUEUE_NAME: queue, QUEUE_STATS_DIR: statsDirectory }
      const nowSeconds = Date.now() / 1000

      const writeStats = (updatedAgo: number, average: number | null) =>
        fs.writeFileString(join(statsDirectory, `${queue}.stats`), JSON.stringify({
          update_time: nowSeconds - updatedAgo,
          recent_average_consume_time: average,
          queue_last_emptied_timestamp: nowSeconds - 3600,
          consumed_since_last_emptied: 0
        }, null, 2) + "\n")

      yield* writeStats(600, 0.01)
      const stuck = yield* runCli(["stats"], env)
      assert.strictEqual(stuck.exitCode, 2, stuck.output)
      assert.match(stuck.stdout, new RegExp(`^CRITICAL: ${queue}: queue appears to be stuck, .* queue size 11 \\|`))
      assert.strictEqual(stuck.stdout.trim().split("\n").length, 1, "exactly one line")

      yield* writeStats(1, 0.5)
      const ok = yield* runCli(["stats"], env)
      assert.strictEqual(ok.exitCode, 0, ok.output)
      assert.strictEqual(ok.stdout, `OK: ${queue}: 11 waiting, about 5.5 s to clear | messages=11;;;0 clear_time=5.5s;90;300;0\n`)

      yield* fs.remove(join(statsDirectory, `${queue}.stats`))
      const missing = yield* runCli(["stats"], env)
      assert.strictEqual(missing.exitCode, 3, missing.output)
      assert.match(missing.stdout, new RegExp(`^UNKNOWN: ${queue}: cannot read .*${queue}\\.stats`))
    }).pipe(Effect.provide(NodeFileSystem.layer)), 240_000)
})
