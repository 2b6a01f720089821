import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { vi } from "vitest"
import { TimeoutError } from "../src/domain/errors.ts"
import { retryAfterFailure, withAttemptDeadline } from "../src/programs/retryPolicy.ts"

/** An effect that fails `failures` times, then succeeds, recording the clock time of every try. */
const flaky = (failures: number) => {
  const times: Array<number> = []
  const effect = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    times.push(now)
    return times.length <= failures ? Effect.fail(`failure ${times.length}`) : Effect.succeed(times.length)
  })
  return { effect, times }
}

const backoff = () => Schedule.exponential("1 second").pipe(Schedule.upTo({ times: 3 }))

describe("retryAfterFailure", () => {
  it.effect("tries at exactly the times Effect.retry does, and gives up after the same number of tries", () =>
    Effect.gen(function*() {
      for (const failures of [0, 1, 3, 10]) {
        const viaRetry = flaky(failures)
        const viaLazy = flaky(failures)
        const retried = yield* Effect.forkChild(Effect.exit(Effect.retry(viaRetry.effect, backoff())))
        const lazy = yield* Effect.forkChild(Effect.exit(viaLazy.effect.pipe(retryAfterFailure(backoff))))
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(yield* Fiber.join(lazy), yield* Fiber.join(retried), `${failures} failures`)
        assert.deepStrictEqual(viaLazy.times, viaRetry.times, `${failures} failures`)
      }
    }))

  it.effect("sets no schedule up when the first try succeeds, and passes on an error the schedule refuses", () =>
    Effect.gen(function*() {
      let policies = 0
      const policy = () => {
        policies++
        return Schedule.recurs(2).pipe(Schedule.while(({ input }: { readonly input: string }) => input !== "final"))
      }
      assert.strictEqual(yield* Effect.succeed(1).pipe(retryAfterFailure(policy)), 1)
      assert.strictEqual(policies, 0)
      const exit = yield* Effect.exit(Effect.fail("final").pipe(retryAfterFailure(policy)))
      assert.deepStrictEqual(exit, Exit.fail("final"))
      assert.strictEqual(policies, 1)
    }))

  it.effect("runs afterRetrying when the retrying ends, even interrupted, and never when the first try succeeds", () =>
    Effect.gen(function*() {
      let ends = 0
      const afterRetrying = Effect.sync(() => void ends++)
      yield* Effect.succeed(1).pipe(retryAfterFailure(backoff, afterRetrying))
      assert.strictEqual(ends, 0)
      yield* flaky(2).effect.pipe(retryAfterFailure(backoff, afterRetrying), Effect.forkChild, Effect.tap(() => TestClock.adjust("1 minute")), Effect.flatMap(Fiber.join))
      assert.strictEqual(ends, 1)
      const waiting = yield* Effect.forkChild(flaky(10).effect.pipe(retryAfterFailure(backoff, afterRetrying)))
      yield* TestClock.adjust("500 millis")
      yield* Fiber.interrupt(waiting)
      assert.strictEqual(ends, 2, "interrupted while waiting for the next try")
    }))
})

describe("withAttemptDeadline on the real clock", () => {
  it.live("an attempt past its deadline is interrupted and fails with our TimeoutError", () =>
    Effect.gen(function*() {
      let interrupted = false
      const stuck = Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => void (interrupted = true))))
      const error = yield* Effect.flip(stuck.pipe(withAttemptDeadline(Duration.millis(50))))
      assert.instanceOf(error, TimeoutError)
      assert.strictEqual(error.stage, "attempt")
      assert.strictEqual(error.timeoutMillis, 50)
      assert.isTrue(interrupted, "the stuck attempt does not go on in the background")
    }))

  it.live("an attempt within its deadline gives its own result or error, and leaves no timer armed", () =>
    Effect.gen(function*() {
      // the deadline timers, told apart from the runtime's own by their 30 s delay
      const armed = new Set<unknown>()
      const setTimer = vi.spyOn(globalThis, "setTimeout")
      const clearTimer = vi.spyOn(globalThis, "clearTimeout")
      yield* Effect.addFinalizer(() => Effect.sync(() => vi.restoreAllMocks()))
      const deadline = withAttemptDeadline(Duration.seconds(30))
      assert.strictEqual(yield* Effect.succeed(7).pipe(Effect.delay("10 millis"), deadline), 7)
      assert.deepStrictEqual(yield* Effect.exit(Effect.fail("refused").pipe(deadline)), Exit.fail("refused"))
      setTimer.mock.calls.forEach(([, delay], n) => {
        if (delay === 30_000) armed.add(setTimer.mock.results[n]!.value)
      })
      assert.strictEqual(armed.size, 2, "one timer per attempt")
      for (const [timer] of clearTimer.mock.calls) armed.delete(timer)
      assert.strictEqual(armed.size, 0, "every deadline timer was cleared")
    }).pipe(Effect.scoped))

  it.live("interrupting the caller interrupts the attempt", () =>
    Effect.gen(function*() {
      let interrupted = false
      const attempt = Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => void (interrupted = true))))
      const caller = yield* Effect.forkChild(attempt.pipe(withAttemptDeadline(Duration.seconds(30))))
      yield* Effect.sleep("10 millis")
      yield* Fiber.interrupt(caller)
      assert.isTrue(interrupted)
    }))
})
