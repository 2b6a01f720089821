import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Ref, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { retryOnFailure } from "../src/pipeline/retryPolicy.ts"

/** Runs `self` failing its first `failures` runs; gives the exit, the runs' attempt numbers and when each ran (ms after the start). */
const runWith = (
  retry: (self: Effect.Effect<number, string>) => Effect.Effect<number, string>,
  failures: number
) =>
  Effect.gen(function*() {
    const start = yield* Effect.clockWith((clock) => Effect.succeed(clock.currentTimeMillisUnsafe()))
    const runs = yield* Ref.make<ReadonlyArray<{ readonly attempt: number; readonly at: number }>>([])
    const self = Effect.gen(function*() {
      const { attempt } = yield* Schedule.CurrentMetadata
      const at = yield* Effect.clockWith((clock) => Effect.succeed(clock.currentTimeMillisUnsafe() - start))
      const count = (yield* Ref.updateAndGet(runs, (all) => [...all, { attempt, at }])).length
      return count <= failures ? yield* Effect.fail(`failure ${count}`) : count
    })
    const fiber = yield* Effect.forkChild(Effect.exit(retry(self)))
    yield* TestClock.adjust(Duration.minutes(10))
    return { exit: yield* Fiber.join(fiber), runs: yield* Ref.get(runs) }
  })

const schedule = Schedule.exponential("100 millis").pipe(
  Schedule.upTo({ times: 3 }),
  Schedule.setInputType<string>(),
  Schedule.while(({ input }) => input !== "failure 3")
)

describe("retryOnFailure", () => {
  it.effect("a first success runs once", () =>
    Effect.gen(function*() {
      const { exit, runs } = yield* runWith(retryOnFailure(schedule), 0)
      assert.deepStrictEqual(exit, Exit.succeed(1))
      assert.deepStrictEqual(runs, [{ attempt: 0, at: 0 }])
    }))

  for (const failures of [1, 2, 3, 5]) {
    it.effect(`with ${failures} failure(s): the same runs, numbers, delays and outcome as Effect.retry`, () =>
      Effect.gen(function*() {
        const expected = yield* runWith((self) => Effect.retry(self, schedule), failures)
        const actual = yield* runWith(retryOnFailure(schedule), failures)
        assert.deepStrictEqual(actual.exit, expected.exit)
        assert.deepStrictEqual(actual.runs, expected.runs)
      }))
  }

  it.effect("each retry runs `retried`, numbered by the schedule", () =>
    Effect.gen(function*() {
      const numbers = yield* Ref.make<ReadonlyArray<number>>([])
      const run = (number: number) =>
        Effect.andThen(Ref.update(numbers, (all) => [...all, number]), number < 3 ? Effect.fail("again") : Effect.succeed(number))
      const retried = Effect.flatMap(Schedule.CurrentMetadata, ({ attempt }) => run(attempt + 1))
      const fiber = yield* Effect.forkChild(run(1).pipe(retryOnFailure(Schedule.spaced("1 second"), retried)))
      yield* TestClock.adjust(Duration.seconds(5))
      assert.strictEqual(yield* Fiber.join(fiber), 3)
      assert.deepStrictEqual(yield* Ref.get(numbers), [1, 2, 3])
    }))
})
