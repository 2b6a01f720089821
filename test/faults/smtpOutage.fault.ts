/** Scenario 3: the SMTP server goes away for 20 seconds in the middle of a run, then comes back. */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { scenarioWithGoodEvents, seconds } from "./support/scenario.ts"

const events = 1_000
const outageMillis = 20_000
const resumeBoundMillis = 5_000

it.live("SMTP server down for 20 s: none lost, none failed, delivery resumes within 5 s of its return", ({ task }) =>
  Effect.gen(function*() {
    const { published, scenario } = yield* scenarioWithGoodEvents("smtpdown", events)
    // OUTAGE_MAX_DELAY is 2 s (see the scenario settings), well under the 5 s bound
    const worker = yield* scenario.startWorker()

    yield* scenario.awaitSettledCount(published, events / 4, "120 seconds")
    yield* scenario.sink.stop
    const sentBeforeOutage = scenario.sink.acceptedAt.length
    yield* Effect.sleep(outageMillis)
    const sentDuringOutage = scenario.sink.acceptedAt.length - sentBeforeOutage
    yield* scenario.sink.start
    const backAt = Date.now()
    const allSettled = yield* scenario.awaitSettled(published, "120 seconds")
    const firstAfter = scenario.sink.acceptedAt.find((at) => at >= backAt)
    const resumeMillis = firstAfter === undefined ? Number.POSITIVE_INFINITY : firstAfter - backAt
    const exitedMeanwhile = yield* worker.hasExited
    yield* scenario.stopWorker(worker)
    const counts = yield* scenario.account(published)
    scenario.report(task, "3 SMTP down 20 s", counts, `delivery resumed ${seconds(resumeMillis)} after the sink returned (bound ${seconds(resumeBoundMillis)})`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.strictEqual(counts.failed, 0, `recorded as failed: ${JSON.stringify(scenario.failures.read().slice(0, 3))}`)
    assert.strictEqual(sentDuringOutage, 0)
    assert.isFalse(exitedMeanwhile)
    assert.isTrue(allSettled, "delivery did not finish after the sink returned")
    assert.strictEqual(counts.delivered, events)
    assert.isAtMost(resumeMillis, resumeBoundMillis)
  }).pipe(Effect.scoped))
