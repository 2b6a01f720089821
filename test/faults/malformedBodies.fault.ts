/**
 * Scenario 8: 10,000 random malformed bodies (fast-check) pushed straight into the queue with amqplib. The worker
 * stays up and records each one: the errors file gets one line per body, as an invalid event.
 */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { countBy, identityOf, recordedValue } from "./support/ledger.ts"
import { makeScenario } from "./support/scenario.ts"

const bodies = 10_000
/** `FAULTS_SEED=<n>` replays a run; the seed is in the summary table */
const seed = Number(process.env["FAULTS_SEED"] ?? Date.now() % 2 ** 31)

const recipientKeys = new Set(["to_emails", "to_user_ids", "to_email", "to_user_id"])
const eventKeys = new Set([
  ...recipientKeys, "template_prefix", "from_name", "from_address", "reply_to_email", "language", "date", "context",
  "realm_id", "failed_tries", "message_id", "subject", "text", "html"
])
const isNonNegativeInteger = (value: unknown) => Number.isInteger(value) && (value as number) >= 0

const parses = (text: string) => {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

/** A valid pre-rendered event, the starting point of the mutations. */
const validEvent = fc.record({
  subject: fc.string(),
  text: fc.string(),
  to_emails: fc.array(fc.emailAddress(), { minLength: 1, maxLength: 3 })
})

/** Values each field's schema refuses (a valid field value is never generated). */
const wrongValues: ReadonlyArray<readonly [field: string, values: fc.Arbitrary<unknown>]> = [
  ["subject", fc.jsonValue().filter((value) => typeof value !== "string")],
  ["to_emails", fc.jsonValue().filter((value) => value !== null && !(Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === "string")))],
  ["realm_id", fc.jsonValue().filter((value) => value !== null && !Number.isInteger(value))],
  ["failed_tries", fc.jsonValue().filter((value) => !isNonNegativeInteger(value))],
  ["message_id", fc.jsonValue().filter((value) => value !== null && !(typeof value === "string" && value !== ""))],
  ["from_name", fc.jsonValue().filter((value) => value !== null && typeof value !== "string")],
  ["context", fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.array(fc.jsonValue(), { minLength: 1 }))]
]

const malformedBody: fc.Arbitrary<string> = fc.oneof(
  // not JSON at all, in any bytes
  fc.string({ unit: "binary" }).filter((text) => !parses(text)),
  // JSON, but not an object
  fc.jsonValue().filter((value) => typeof value !== "object" || value === null || Array.isArray(value)).map((value) => JSON.stringify(value)),
  // an object without any recipient key
  fc.dictionary(fc.string().filter((key) => !recipientKeys.has(key)), fc.jsonValue()).map((value) => JSON.stringify(value)),
  // a valid event cut short
  fc.tuple(validEvent, fc.nat()).map(([event, cut]) => {
    const text = JSON.stringify(event)
    return text.slice(0, cut % text.length)
  }),
  // a valid event with a key the schema does not know
  fc.tuple(validEvent, fc.string().filter((key) => !eventKeys.has(key) && key !== "__proto__"), fc.jsonValue()).map(([event, key, value]) =>
    JSON.stringify({ ...event, [key]: value })
  ),
  // a valid event with one field of a wrong type
  fc.tuple(validEvent, fc.constantFrom(...wrongValues).chain(([field, values]) => values.map((value) => [field, value] as const))).map(
    ([event, [field, value]]) => JSON.stringify({ ...event, [field]: value })
  )
)

it.live("10,000 random malformed bodies: the worker stays up and records each one", ({ task }) =>
  Effect.gen(function*() {
    const scenario = yield* makeScenario("malformed")
    const published = fc.sample(malformedBody, { numRuns: bodies, seed }).map((body, n) => ({ label: `malformed#${n}`, body }))
    yield* scenario.publish(published)
    const worker = yield* scenario.startWorker()

    const failures = scenario.failures
    const deadline = Date.now() + 180_000
    // settled: recorded, or (wrongly) accepted by the sink
    while (failures.read().length + scenario.sink.acceptedAt.length < bodies && Date.now() < deadline && !(yield* worker.hasExited)) {
      yield* Effect.sleep("250 millis")
    }
    const exitedMeanwhile = yield* worker.hasExited
    yield* scenario.stopWorker(worker)
    const counts = yield* scenario.account(published)
    const lines = failures.read()
    const expected = countBy(published.map((event) => identityOf(recordedValue(event.body))))
    const recorded = countBy(lines.map((line) => identityOf(line.event)))
    const unmatched = [...expected].filter(([identity, count]) => recorded.get(identity) !== count).map(([identity]) => identity)
    const tags = countBy(lines.map((line) => line.reason.tag))
    scenario.report(task, "8 random malformed bodies", counts, `seed ${seed}; ${lines.length} error lines (${[...tags].map(([tag, n]) => `${tag} ${n}`).join(", ")})`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.isFalse(exitedMeanwhile, "the worker process exited")
    assert.strictEqual(lines.length, bodies, "one errors-file line per body")
    assert.deepStrictEqual(unmatched.slice(0, 5), [], "each body is recorded exactly as often as it was published")
    assert.deepStrictEqual([...tags.keys()], ["InvalidEvent"])
    assert.strictEqual(counts.delivered, 0)
  }).pipe(Effect.scoped))
