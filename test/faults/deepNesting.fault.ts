/**
 * Deeply nested bodies among good events, with CONCURRENCY=2: 10 events whose context nests arrays 5,000 levels
 * deep (10 KB) and 10 top-level arrays 100,000 levels deep (200 KB). Each used to wedge a delivery slot for good (the
 * Message-ID hash and the failure record overflowed the stack, and the record was retried forever), so two of them
 * stopped all delivery. Now each is refused right after parsing (MAX_EVENT_DEPTH) and recorded, and every good event
 * is delivered.
 */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { failureIdentity, identitiesOfBody, type Published } from "./support/ledger.ts"
import { goodEvent, makeScenario } from "./support/scenario.ts"

const goodCount = 100
const nested = (levels: number) => "[".repeat(levels) + "]".repeat(levels)

const deepContext = (n: number): Published => ({
  label: `deep-context#${n}`,
  body: JSON.stringify({
    subject: `Deep ${n}`,
    text: "This event must not be sent.",
    to_emails: [`deep${n}@faults.example`],
    message_id: `deep-${n}-${process.pid}@faults.example`,
    context: { nested: "NESTED" }
  }).replace("\"NESTED\"", nested(5_000))
})

/** Each one its own: a top-level array with a different number at its bottom, so the ledger can tell them apart. */
const deepArray = (n: number): Published => ({
  label: `deep-array#${n}`,
  body: `${"[".repeat(100_000)}${n}${"]".repeat(100_000)}`
})

it.live("bodies nested 5,000 and 100,000 levels deep among good events, CONCURRENCY=2: all good delivered, the deep recorded", ({ task }) =>
  Effect.gen(function*() {
    const scenario = yield* makeScenario("deep")
    const deep = [...Array.from({ length: 10 }, (_, n) => deepContext(n)), ...Array.from({ length: 10 }, (_, n) => deepArray(n))]
    const good = Array.from({ length: goodCount }, (_, n) => goodEvent("deep-good", n))
    // the deep ones first, two by two between good ones: with two slots, two wedged slots stop everything
    const published = good.flatMap((event, n) => n % 5 === 0 && deep[n / 5] !== undefined ? [deep[n / 5]!, event] : [event])
    yield* scenario.publish(published)
    const worker = yield* scenario.startWorker({ CONCURRENCY: "2" })

    const allSettled = yield* scenario.awaitSettled(published, "120 seconds")
    const exitedMeanwhile = yield* worker.hasExited
    yield* scenario.stopWorker(worker)
    const counts = yield* scenario.account(published)
    const failures = scenario.failures.read()
    const recordedTimes = deep.map((event) => {
      const identities = identitiesOfBody(event.body)
      return failures.filter((line) => identities.includes(failureIdentity(line))).length
    })
    const goodDelivered = good.filter((event) => scenario.sink.deliveries.get(JSON.parse(event.body).message_id) === 1).length
    const longestLine = Math.max(0, ...failures.map((line) => line.bytes))
    scenario.report(task, "deep nesting", counts, `${deep.length} deep bodies, CONCURRENCY=2; longest errors line ${longestLine} bytes`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.isTrue(allSettled, "not every event settled: a delivery slot is wedged")
    assert.isFalse(exitedMeanwhile, "the worker process exited")
    assert.strictEqual(goodDelivered, goodCount, "every good event is delivered exactly once")
    assert.deepStrictEqual(recordedTimes, deep.map(() => 1), "each deep body is recorded once")
    assert.strictEqual(failures.length, deep.length, "only the deep bodies are recorded")
    for (const line of failures) {
      assert.strictEqual(line.reason.tag, "InvalidEvent")
      assert.match(line.reason.message, /^invalid email event: the body nests (5002|100000) levels deep, over MAX_EVENT_DEPTH \(64\)$/)
    }
  }).pipe(Effect.scoped))
