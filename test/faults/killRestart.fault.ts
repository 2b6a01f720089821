/** Scenario 1: `kill -9` of the worker in the middle of 5,000 events, then a restart. */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { scenarioWithGoodEvents } from "./support/scenario.ts"

const events = 5_000
const prefetch = 100

it.live("kill -9 in the middle of 5,000 events, then a restart: none lost, duplicates at most PREFETCH", ({ task }) =>
  Effect.gen(function*() {
    const { published, scenario } = yield* scenarioWithGoodEvents("kill9", events)

    const settings = { PREFETCH: String(prefetch), SMTP_CONNECTIONS: "8" }
    const first = yield* scenario.startWorker(settings)
    yield* scenario.awaitSettledCount(published, events * 0.3, "120 seconds")
    yield* first.signal("SIGKILL")
    const killed = yield* first.exit
    const settledAtKill = scenario.settled(published)

    const second = yield* scenario.startWorker(settings)
    const allSettled = yield* scenario.awaitSettled(published, "180 seconds")
    yield* scenario.stopWorker(second)
    const counts = yield* scenario.account(published)
    scenario.report(task, "1 kill -9 + restart", counts, `killed after ${settledAtKill} sent; ${counts.duplicates} duplicates (bound: PREFETCH ${prefetch})`)

    assert.strictEqual(killed.signal, "SIGKILL")
    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.isTrue(allSettled, "not every event was delivered after the restart")
    assert.strictEqual(counts.delivered, events)
    assert.strictEqual(counts.failed, 0)
    assert.isAtMost(counts.duplicates, prefetch)
  }).pipe(Effect.scoped))
