/** Scenario 7: SIGTERM in the middle of a run, then a restart. */
import { assert, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { scenarioWithGoodEvents, seconds } from "./support/scenario.ts"
import { exitWithin } from "./support/worker.ts"

const events = 400
const shutdownTimeoutSeconds = 10

it.live("SIGTERM in the middle of a run: exit 0 within SHUTDOWN_TIMEOUT, none lost after a restart", ({ task }) =>
  Effect.gen(function*() {
    // each message takes 25 ms to be answered, so emails are in flight when the signal arrives
    const { published, scenario } = yield* scenarioWithGoodEvents("sigterm", events, { delayMillis: 25 })
    const settings = { SHUTDOWN_TIMEOUT: String(shutdownTimeoutSeconds) }
    const first = yield* scenario.startWorker(settings)

    yield* scenario.awaitSettledCount(published, events / 4, "120 seconds")
    const signalledAt = Date.now()
    yield* first.signal("SIGTERM")
    const exit = yield* exitWithin(first, `${shutdownTimeoutSeconds + 30} seconds`)
    const exitMillis = Date.now() - signalledAt
    const settledAtExit = scenario.settled(published)

    const second = yield* scenario.startWorker(settings)
    const allSettled = yield* scenario.awaitSettled(published, "120 seconds")
    yield* scenario.stopWorker(second)
    const counts = yield* scenario.account(published)
    const exitCode = Option.match(exit, { onNone: () => "still running", onSome: ({ code, signal }) => String(code ?? signal) })
    scenario.report(task, "7 SIGTERM + restart", counts, `exit ${exitCode} ${seconds(exitMillis)} after SIGTERM (SHUTDOWN_TIMEOUT ${shutdownTimeoutSeconds} s); ${settledAtExit} sent before the exit`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.strictEqual(exitCode, "0")
    assert.isAtMost(exitMillis, shutdownTimeoutSeconds * 1000)
    assert.isTrue(allSettled, "not every event was delivered after the restart")
    assert.strictEqual(counts.delivered, events)
    // in-flight emails finished and were acknowledged before the exit, so the restart sent none of them again
    assert.strictEqual(counts.duplicates, 0)
  }).pipe(Effect.scoped))
