/** Scenario 2: the broker force-closes the worker's connections twice during a run. */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { scenarioWithGoodEvents } from "./support/scenario.ts"

const events = 2_000
const prefetch = 100

it.live("broker connections force-closed twice: the worker reconnects by itself, none lost", ({ task }) =>
  Effect.gen(function*() {
    const { published, scenario } = yield* scenarioWithGoodEvents("connclose", events)
    const worker = yield* scenario.startWorker({ PREFETCH: String(prefetch) })

    const closedConnections: Array<number> = []
    for (const share of [1 / 3, 2 / 3]) {
      // progress since the previous close proves the worker reconnected and consumes again
      yield* scenario.awaitSettledCount(published, Math.round(events * share), "120 seconds")
      closedConnections.push(yield* scenario.broker.closeConnectionsOf(worker.pid))
    }
    const allSettled = yield* scenario.awaitSettled(published, "120 seconds")
    const exitedMeanwhile = yield* worker.hasExited
    yield* scenario.stopWorker(worker)
    const counts = yield* scenario.account(published)
    scenario.report(task, "2 broker connections closed ×2", counts, `closed ${closedConnections.join(" + ")} connection(s); same PID throughout: ${!exitedMeanwhile}; bound: ${2 * prefetch} duplicates`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    // each close found a connection of this worker: the second one had been reopened after the first close
    assert.isTrue(closedConnections.every((count) => count >= 1), `connections closed: ${closedConnections.join(", ")}`)
    assert.isFalse(exitedMeanwhile, "the worker process exited instead of reconnecting")
    assert.isTrue(allSettled, "delivery did not finish after the reconnects")
    assert.strictEqual(counts.delivered, events)
    assert.strictEqual(counts.failed, 0)
    assert.isAtMost(counts.duplicates, 2 * prefetch)
  }).pipe(Effect.scoped))
