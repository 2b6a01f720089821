/**
 * Scenarios 11–17: sending limits shared by every worker, throttling replies, the duplicate ledger across a
 * `kill -9`, Redis going away mid-run, and Redis coming up after the workers. Real worker processes, the machine's RabbitMQ, the machine's Redis under a
 * key prefix of each scenario's (or a Redis server of the scenario's own, which it stops), and the loopback sink.
 */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { freePort, machineRedisPrefix, ownRedis, ownRedisNotStarted, redisKeys } from "./support/redisServer.ts"
import { type Scenario, scenarioWithGoodEvents } from "./support/scenario.ts"
import type { WorkerProcess } from "./support/worker.ts"

/** Start `count` workers with `settings` (each its own operations port), and wait until all consume. */
const startWorkers = (scenario: Scenario, count: number, settings: Record<string, string>) =>
  Effect.gen(function*() {
    const workers: Array<{ readonly process: WorkerProcess; readonly httpPort: number }> = []
    for (let i = 0; i < count; i++) {
      const httpPort = yield* freePort
      workers.push({ process: yield* scenario.startWorker({ ...settings, HTTP_PORT: String(httpPort) }), httpPort })
    }
    for (let tries = 0; (yield* scenario.broker.consumerCount(scenario.queue)) < count; tries++) {
      if (tries > 300) return yield* Effect.die(new Error(`fewer than ${count} workers consume ${scenario.queue}`))
      yield* Effect.sleep("100 millis")
    }
    return workers
  })

const stopAll = (scenario: Scenario, workers: ReadonlyArray<{ readonly process: WorkerProcess }>) =>
  Effect.forEach(workers, (worker) => scenario.stopWorker(worker.process), { concurrency: "unbounded", discard: true })

const httpText = (port: number, path: string): Effect.Effect<string> =>
  Effect.promise(() => fetch(`http://127.0.0.1:${port}${path}`).then((response) => response.text()))

/** The value of a series of the Prometheus text, 0 when it is not there. */
const series = (metrics: string, name: string, labels = ""): number => {
  const line = metrics.split("\n").find((l) => l.startsWith(name) && !l.startsWith("#") && l.includes(labels) && /[\s{]/.test(l[name.length] ?? ""))
  return line === undefined ? 0 : Number(line.trim().split(/\s+/).at(-1))
}

/** Accepted per second over every `windowMillis` window (stepping 250 ms) from `from` to the last acceptance. */
const windowRates = (times: ReadonlyArray<number>, from: number, windowMillis: number): ReadonlyArray<number> => {
  const rates: Array<number> = []
  const last = times.at(-1) ?? from
  for (let start = from; start + windowMillis <= last; start += 250) {
    const count = times.filter((t) => t >= start && t < start + windowMillis).length
    rates.push(count / (windowMillis / 1000))
  }
  return rates
}

const logLines = (scenario: Scenario, text: string): number =>
  readFileSync(scenario.logPath, "utf8").split("\n").filter((line) => line.includes(text)).length

it.live("11 three workers with EMAIL_RATE_LIMIT=50/s share the limit: every 5 s window after the first within ±10 %", ({ task }) =>
  Effect.gen(function*() {
    const events = 2_000
    const { published, scenario } = yield* scenarioWithGoodEvents("rate50", events)
    const redis = yield* machineRedisPrefix("rate50")
    const workers = yield* startWorkers(scenario, 3, { EMAIL_RATE_LIMIT: "50/s", REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix })
    const allSettled = yield* scenario.awaitSettled(published, "120 seconds")
    yield* stopAll(scenario, workers)
    const counts = yield* scenario.account(published)
    const times = [...scenario.sink.acceptedAt].sort((a, b) => a - b)
    // the first second holds the full bucket's burst of 50
    const rates = windowRates(times, times[0]! + 1_000, 5_000)
    const low = Math.min(...rates)
    const high = Math.max(...rates)
    const overall = (times.length - 50) / ((times.at(-1)! - times[0]!) / 1000)
    scenario.report(task, "11 3 workers, 50/s shared", counts, `5 s windows: ${low.toFixed(1)}–${high.toFixed(1)}/s over ${rates.length} windows; ${overall.toFixed(1)}/s after the burst`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.isTrue(allSettled)
    assert.strictEqual(counts.delivered, events)
    assert.isAbove(rates.length, 20)
    assert.isAtLeast(low, 45, `slowest 5 s window ${low}/s`)
    assert.isAtMost(high, 55, `fastest 5 s window ${high}/s`)
  }).pipe(Effect.scoped))

it.live("12 a sink answering 454 above 40/s, limit 100/s: the workers converge below 40/s, none failed, all delivered", ({ task }) =>
  Effect.gen(function*() {
    const events = 1_500
    const { published, scenario } = yield* scenarioWithGoodEvents("throttle", events, { throttleAbovePerSecond: 40 })
    const redis = yield* machineRedisPrefix("throttle")
    const workers = yield* startWorkers(scenario, 3, { EMAIL_RATE_LIMIT: "100/s", REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix })
    const allSettled = yield* scenario.awaitSettled(published, "180 seconds")
    const metrics = yield* Effect.forEach(workers, (worker) => httpText(worker.httpPort, "/metrics"))
    yield* stopAll(scenario, workers)
    const counts = yield* scenario.account(published)
    const { acceptedAt, throttledAt } = scenario.sink
    const start = Math.min(acceptedAt[0]!, throttledAt[0] ?? Number.POSITIVE_INFINITY)
    const end = acceptedAt.at(-1)!
    // the last half of the run: sends the server saw (accepted or throttled) per second
    const half = start + (end - start) / 2
    const sendsLate = [...acceptedAt, ...throttledAt].filter((t) => t >= half).length
    const attemptsLate = sendsLate / ((end - half) / 1000)
    const throttledLate = throttledAt.filter((t) => t >= half).length
    const throttledReplies = metrics.reduce((sum, text) => sum + series(text, "email_senders_throttled_replies_total"), 0)
    scenario.report(task, "12 454 above 40/s, limit 100/s", counts, `${throttledAt.length} answered 454 (${throttledLate} in the second half); second half: ${attemptsLate.toFixed(1)} sends/s, ${(100 * throttledLate / sendsLate).toFixed(1)} % throttled; whole run ${(acceptedAt.length / ((end - start) / 1000)).toFixed(1)}/s accepted`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.strictEqual(counts.failed, 0, `recorded as failed: ${JSON.stringify(scenario.failures.read().slice(0, 3))}`)
    assert.isTrue(allSettled)
    assert.strictEqual(counts.delivered, events)
    assert.isAbove(throttledAt.length, 0, "the sink throttled")
    assert.strictEqual(throttledReplies, throttledAt.length, "every 454 was fed back")
    assert.isBelow(attemptsLate, 40, "converged below the server's 40/s")
    // converged: once paced, a throttling reply is only the limiter probing upwards (additive increase), which it
    // does all along, so what is bounded is their share of the sends, not how they split between the halves
    assert.isAtMost(throttledLate, sendsLate * 0.05, "at most 5 % of the sends throttled once converged")
  }).pipe(Effect.scoped))

/** `kill -9` of one worker of two at ~600 settled, then a restart; the counts, and what the killed one measured. */
const killMidRun = (name: string, events: number, settings: Record<string, string>) =>
  Effect.gen(function*() {
    const { published, scenario } = yield* scenarioWithGoodEvents(name, events)
    const all = { PREFETCH: "100", SMTP_CONNECTIONS: "8", ...settings }
    const [victim, other] = yield* startWorkers(scenario, 2, all)
    yield* scenario.awaitSettledCount(published, 600, "120 seconds")
    const beforeKill = yield* httpText(victim!.httpPort, "/metrics")
    // not right after the scrape, which held the victim's event loop for a moment
    yield* Effect.sleep("150 millis")
    const killedAt = Date.now()
    // the two workers' sends per second just before the kill, of which the victim had about half
    const victimRate = scenario.sink.acceptedAt.filter((at) => at >= killedAt - 1_000).length / 2
    yield* victim!.process.signal("SIGKILL")
    yield* victim!.process.exit
    const [restarted] = yield* startWorkers(scenario, 1, all)
    const allSettled = yield* scenario.awaitSettled(published, "180 seconds")
    const after = yield* Effect.forEach([other!, restarted!], (worker) => httpText(worker.httpPort, "/metrics"))
    yield* stopAll(scenario, [other!, restarted!])
    const counts = yield* scenario.account(published)
    const suppressed = after.reduce((sum, text) => sum + series(text, "email_senders_duplicates_suppressed_total"), 0)
    const windows = series(beforeKill, "email_senders_ledger_window_seconds_count")
    const windowMean = windows === 0 ? 0 : series(beforeKill, "email_senders_ledger_window_seconds_sum") / windows
    // how long before the kill each duplicated email was first accepted: in flight then, or long settled?
    const duplicateAges = [...scenario.sink.deliveries].filter(([, n]) => n > 1).map(([id]) => killedAt - scenario.sink.firstAcceptedAt.get(id)!)
    const oldestDuplicate = Math.max(0, ...duplicateAges)
    return { scenario, counts, allSettled, suppressed, windowMean, windows, victimRate, oldestDuplicate }
  })

const killEvents = 3_000

it.live("13 kill -9 mid-run without the ledger, 3,000 events: lost 0 (duplicates reported)", ({ task }) =>
  Effect.gen(function*() {
    const { allSettled, counts, oldestDuplicate, scenario } = yield* killMidRun("kill9noledger", killEvents, {})
    scenario.report(task, "13 kill -9, no ledger", counts, `${counts.duplicates} duplicates delivered, first accepted at most ${oldestDuplicate} ms before the kill`)
    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.isTrue(allSettled)
    assert.strictEqual(counts.delivered, killEvents)
  }).pipe(Effect.scoped))

it.live("14 kill -9 mid-run with the ledger, 3,000 events: lost 0, duplicates reported with the measured window", ({ task }) =>
  Effect.gen(function*() {
    const redis = yield* machineRedisPrefix("kill9ledger")
    const { allSettled, counts, oldestDuplicate, scenario, suppressed, victimRate, windowMean, windows } = yield* killMidRun("kill9ledger", killEvents, {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: redis.prefix
    })
    // emails of the killed worker between a 250 and its ledger write at any moment: those a kill can duplicate
    const inWindow = victimRate * windowMean
    scenario.report(task, "14 kill -9, ledger", counts, `${counts.duplicates} duplicates delivered, first accepted at most ${oldestDuplicate} ms before the kill; ${suppressed} redelivered events suppressed by the ledger; 250-to-ledger-write ${(windowMean * 1e3).toFixed(2)} ms mean over ${windows} sends at ${victimRate.toFixed(0)}/s: ${inWindow.toFixed(1)} emails in that window at a time, plus up to 8 (SMTP_CONNECTIONS) whose 250 had not reached the worker`)
    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.isTrue(allSettled)
    assert.strictEqual(counts.delivered, killEvents)
    assert.isAbove(windows, 0)
    // what the broker redelivers is at most the killed worker's unacknowledged deliveries
    assert.isAtMost(counts.duplicates, 100)
    // and what got through was in flight at the kill: first accepted within the last second before it, never an
    // email settled earlier (those the ledger knows)
    assert.isAtMost(oldestDuplicate, 1_000)
  }).pipe(Effect.scoped))

/**
 * Redis going away mid-run, killed or hung (stopped, its connections left open): delivery goes on with per-process
 * limits and without the ledger, with a warning per worker and use and the metrics, and picks Redis up once it is back
 * (after a hang too: the connection that timed out is made again).
 */
/** Whether every worker's `/readyz` shows Redis as ok within 30 s. */
const redisReadyAgain = (httpPorts: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    for (let tries = 0; tries < 150; tries++) {
      const checks = yield* Effect.forEach(httpPorts, (port) =>
        Effect.map(httpText(port, "/readyz"), (body) => (JSON.parse(body) as { checks: Record<string, string> }).checks["redis"]))
      if (checks.every((check) => check === "ok")) return true
      yield* Effect.sleep("200 millis")
    }
    return false
  })

const redisOutageMidRun = (task: Parameters<Scenario["report"]>[0], outage: "killed" | "hung") =>
  Effect.gen(function*() {
    const events = 3_000
    const { published, scenario } = yield* scenarioWithGoodEvents(`redis${outage}`, events)
    const redis = yield* ownRedis
    const workers = yield* startWorkers(scenario, 2, { EMAIL_RATE_LIMIT: "200/s", REDIS_URL: redis.url })
    yield* scenario.awaitSettledCount(published, 400, "60 seconds")
    yield* (outage === "killed" ? redis.stop : redis.hang)
    const atStop = scenario.sink.acceptedAt.length
    yield* scenario.awaitSettledCount(published, Math.min(events, atStop + 800), "60 seconds")
    const sentWithoutRedis = scenario.sink.acceptedAt.length - atStop
    const metrics = yield* httpText(workers[0]!.httpPort, "/metrics")
    const readiness = JSON.parse(yield* httpText(workers[0]!.httpPort, "/readyz")) as { status: string; checks: Record<string, string> }
    yield* (outage === "killed" ? redis.start : redis.resume)
    // connected again: each worker's /readyz says so (its "Redis is back" line waits for an email that uses Redis)
    const back = yield* redisReadyAgain(workers.map((worker) => worker.httpPort))
    const allSettled = yield* scenario.awaitSettled(published, "120 seconds")
    yield* stopAll(scenario, workers)
    const counts = yield* scenario.account(published)
    const warnings = logLines(scenario, "Redis cannot be reached")
    scenario.report(task, `${outage === "killed" ? 15 : 16} Redis ${outage} mid-run`, counts, `${sentWithoutRedis} sent without Redis; ${warnings} warnings; fallbacks rate_limit ${series(metrics, "email_senders_redis_fallbacks_total", "rate_limit")}, ledger ${series(metrics, "email_senders_redis_fallbacks_total", "ledger")}; /readyz ${readiness.status}, redis "${readiness.checks["redis"]}"; back: ${back}`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.strictEqual(counts.failed, 0)
    assert.isTrue(allSettled)
    assert.strictEqual(counts.delivered, events)
    assert.isAtLeast(sentWithoutRedis, 800)
    // one per worker and use (the limits, the ledger), not one per email
    assert.isAtLeast(warnings, 2)
    assert.isAtMost(warnings, 4)
    assert.isAbove(series(metrics, "email_senders_redis_fallbacks_total", "rate_limit"), 0)
    assert.isAbove(series(metrics, "email_senders_redis_fallbacks_total", "ledger"), 0)
    assert.strictEqual(series(metrics, "email_senders_redis_connected"), 0)
    assert.strictEqual(readiness.status, "ready")
    assert.match(readiness.checks["redis"] ?? "", /^degraded: /)
    assert.isTrue(back, "the workers use Redis again once it is back")
  }).pipe(Effect.scoped)

it.live("15 Redis killed mid-run: delivery continues on per-process limits without the ledger, with warnings and metrics; none lost", ({ task }) =>
  redisOutageMidRun(task, "killed"))

it.live("16 Redis hung mid-run (SIGSTOP): its connections time out, delivery continues as in 15; none lost", ({ task }) =>
  redisOutageMidRun(task, "hung"))

it.live("17 workers started while their Redis is down, Redis started 5 s later: they connect to it, then share the limit and keep the ledger in it; none lost", ({ task }) =>
  Effect.gen(function*() {
    const events = 2_500
    const { published, scenario } = yield* scenarioWithGoodEvents("redislate", events)
    const redis = yield* ownRedisNotStarted
    const workers = yield* startWorkers(scenario, 2, { EMAIL_RATE_LIMIT: "100/s", REDIS_URL: redis.url })
    yield* Effect.sleep("5 seconds")
    yield* redis.start
    const back = yield* redisReadyAgain(workers.map((worker) => worker.httpPort))
    const backAt = Date.now()
    const sentBefore = scenario.sink.acceptedAt.length
    const rateBefore = sentBefore / ((backAt - Math.min(...scenario.sink.acceptedAt)) / 1000)
    // the limit's keys live about as long as its window: looked for while the workers send
    yield* Effect.sleep("1 second")
    const rateKeys = (yield* redisKeys(redis.port, "email-senders:rate*")).length
    const allSettled = yield* scenario.awaitSettled(published, "120 seconds")
    const metrics = yield* httpText(workers[0]!.httpPort, "/metrics")
    yield* stopAll(scenario, workers)
    const counts = yield* scenario.account(published)
    const times = [...scenario.sink.acceptedAt].sort((a, b) => a - b)
    // once both workers are on Redis: 100/s between them (per process it would be 200/s); the first 2 s hold the
    // burst of the new shared bucket
    const sharedFrom = backAt + 2_000
    const sentShared = times.filter((t) => t >= sharedFrom).length
    const sharedRate = sentShared / ((times.at(-1)! - sharedFrom) / 1000)
    const sentAfter = times.filter((t) => t >= backAt).length
    // the ledger's store escapes the ":" of REDIS_KEY_PREFIX (email-senders:)
    const ledgerKeys = (yield* redisKeys(redis.port, "email-senders*sent*")).length
    const connectedLines = logLines(scenario, "can be reached now")
    scenario.report(task, "17 Redis started 5 s after the workers", counts, `back: ${back}; ${sentBefore} sent before at ${rateBefore.toFixed(1)}/s (limits per process), ${sentAfter} after; ${sharedRate.toFixed(1)}/s shared (from 2 s after); ${ledgerKeys} ledger entries, ${rateKeys} limit keys in Redis 1 s after; ${connectedLines} "can be reached now" lines, ${logLines(scenario, "Redis is back")} "Redis is back"`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.strictEqual(counts.failed, 0)
    assert.isTrue(allSettled)
    assert.strictEqual(counts.delivered, events)
    assert.isTrue(back, "the workers connect to the Redis started after them")
    assert.strictEqual(connectedLines, 2, "one line per worker")
    assert.strictEqual(series(metrics, "email_senders_redis_connected"), 1)
    assert.isAbove(sentShared, 500, "enough sent after Redis came up to measure the shared limit")
    assert.isAtMost(sharedRate, 115, "the limit is shared: 100/s between the two workers")
    assert.isAbove(rateKeys, 0)
    // every email accepted after both connected was recorded in the ledger in Redis
    assert.isAtLeast(ledgerKeys, sentAfter)
  }).pipe(Effect.scoped))
