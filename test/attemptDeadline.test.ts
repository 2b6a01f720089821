import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber } from "effect"
import { vi } from "vitest"
import { TimeoutError } from "../src/domain/errors.ts"
import { withAttemptDeadline } from "../src/pipeline/attemptDeadline.ts"

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
