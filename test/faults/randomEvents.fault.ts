/**
 * The "done when" fuzz: random events, nested up to 100,000 levels and up to 20 MB, some valid, some deep,
 * some too big, some cut short. Nothing is lost, nothing wedges, and the errors file grows by at most
 * MAX_EVENT_BYTES plus about 1 KB per recorded event. `FUZZ_EVENTS=<n>` sets the count (default 200; the issue's
 * 10,000 moves some 7 GB through the broker); `FAULTS_SEED=<n>` replays a run.
 */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { statSync } from "node:fs"
import { join } from "node:path"
import { defaultWorkerSettings } from "../../src/config/WorkerSettings.ts"
import type { Published } from "./support/ledger.ts"
import { makeScenario } from "./support/scenario.ts"

const count = Number(process.env["FUZZ_EVENTS"] ?? 200)
const seed = Number(process.env["FAULTS_SEED"] ?? Date.now() % 2 ** 31)
const maxEventBytes = defaultWorkerSettings.maxEventBytes
const maxEventDepth = defaultWorkerSettings.maxEventDepth
/** what a record may add beyond the event it keeps: time, reason, the body's digest */
const recordOverhead = 1024

/** log-uniform from `min` to `max`, so small values are as likely as large ones by order of magnitude */
const logUniform = (min: number, max: number) =>
  fc.double({ min: Math.log(min), max: Math.log(max), noNaN: true }).map((x) => Math.round(Math.exp(x)))

interface Shape {
  readonly kind: "event" | "array" | "object" | "truncated"
  readonly depth: number
  readonly size: number
  /** repeated to `size`: any UTF-16 units, so control characters (6 bytes escaped) and lone surrogates come up */
  readonly chunk: string
  readonly cut: number
}

const shape: fc.Arbitrary<Shape> = fc.record({
  kind: fc.constantFrom("event", "event", "array", "object", "truncated"),
  depth: logUniform(1, 100_000),
  size: fc.oneof({ weight: 8, arbitrary: logUniform(1, 64 * 1024) }, { weight: 2, arbitrary: logUniform(64 * 1024, 20_000_000) }),
  chunk: fc.string({ unit: "binary", minLength: 1, maxLength: 64 }),
  cut: fc.double({ min: 0, max: 1, noNaN: true })
})

const padding = (chunk: string, size: number) => chunk.repeat(Math.ceil(size / chunk.length)).slice(0, size)

const bodyOf = (shape: Shape, n: number): { readonly body: string; readonly deliverable: boolean } => {
  const filler = JSON.stringify(padding(shape.chunk, shape.size))
  const event = (arrays: number) =>
    JSON.stringify({
      subject: `Fuzz ${n}`,
      text: "Random event.",
      to_emails: [`fuzz${n}@faults.example`],
      message_id: `fuzz-${n}-${process.pid}@faults.example`,
      context: { nested: "NESTED", padding: "PADDING" }
    }).replace("\"NESTED\"", "[".repeat(arrays) + "]".repeat(arrays)).replace("\"PADDING\"", () => filler)
  switch (shape.kind) {
    case "event": {
      const body = event(shape.depth)
      // the event and its context are two levels; the arrays add theirs
      return { body, deliverable: shape.depth + 2 <= maxEventDepth && Buffer.byteLength(body) <= maxEventBytes }
    }
    case "array":
      return { body: `${"[".repeat(shape.depth)}${filler},${n}${"]".repeat(shape.depth)}`, deliverable: false }
    case "object":
      return { body: `${"{\"a\":".repeat(shape.depth)}[${filler},${n}]${"}".repeat(shape.depth)}`, deliverable: false }
    case "truncated": {
      const whole = event(Math.min(shape.depth, 10))
      return { body: whole.slice(0, Math.floor(shape.cut * (whole.length - 1))), deliverable: false }
    }
  }
}

it.live(`${count} random events up to 100,000 levels and 20 MB: nothing lost or wedged, the errors file bounded`, ({ task }) =>
  Effect.gen(function*() {
    const scenario = yield* makeScenario("fuzz")
    const bodies = fc.sample(shape, { numRuns: count, seed }).map(bodyOf)
    const published: ReadonlyArray<Published> = bodies.map(({ body }, n) => ({ label: `fuzz#${n}`, body }))
    const deliverable = bodies.filter((body) => body.deliverable).length
    const publishedBytes = published.reduce((sum, item) => sum + Buffer.byteLength(item.body), 0)
    yield* scenario.publish(published)
    // a few deliveries at a time: each may hold 20 MB
    const worker = yield* scenario.startWorker({ PREFETCH: "4", CONCURRENCY: "2" })

    const allSettled = yield* scenario.awaitSettled(published, "600 seconds")
    const exitedMeanwhile = yield* worker.hasExited
    yield* scenario.stopWorker(worker)
    const counts = yield* scenario.account(published)
    const lines = scenario.failures.read()
    const longestLine = Math.max(0, ...lines.map((line) => line.bytes))
    const errorsFileBytes = lines.length === 0 ? 0 : statSync(join(scenario.directory, "errors", `${scenario.queue}.errors`)).size
    scenario.report(
      task,
      "fuzz: deep and big events",
      counts,
      `seed ${seed}; ${(publishedBytes / 1e6).toFixed(0)} MB published; ${lines.length} error lines, ` +
        `${(errorsFileBytes / 1e6).toFixed(1)} MB, longest ${longestLine} bytes`
    )

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.isTrue(allSettled, "not every event settled within 10 minutes: something is wedged")
    assert.isFalse(exitedMeanwhile, "the worker process exited")
    assert.strictEqual(counts.delivered, deliverable, "every deliverable event is delivered")
    assert.strictEqual(counts.duplicates, 0)
    assert.strictEqual(lines.length, count - deliverable, "every other event is recorded once")
    assert.isAtMost(longestLine, maxEventBytes + recordOverhead, "a record is at most MAX_EVENT_BYTES + 1 KB")
    assert.isAtMost(errorsFileBytes, lines.length * (maxEventBytes + recordOverhead))
  }).pipe(Effect.scoped), 900_000)
