import { assert, describe, it } from "@effect/vitest"
import { Cause, Console, Effect, Logger, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { batchedJsonLines, jsonLines, logWriteWindow } from "../src/operations/Logging.ts"

/** A console whose `log` calls are pushed onto `writes`. */
const recordingConsole = (writes: Array<string>): Console.Console =>
  ({ ...globalThis.console, log: (text: string) => void writes.push(text) })

/** What `logger` writes for `program`, with the clock's timestamp and the fiber id made comparable. */
const written = (logger: Logger.Logger<unknown, void>, program: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    yield* program.pipe(Effect.provide(Logger.layer([logger])), Effect.provideService(Console.Console, recordingConsole(lines)))
    return lines.map((line) => line.replace(/"timestamp":"[^"]+"/, "\"timestamp\":\"T\"").replace(/"fiberId":"#\d+"/, "\"fiberId\":\"#F\""))
  })

describe("jsonLines", () => {
  it.effect("writes exactly what Effect's JSON logger writes, plain values or not", () =>
    Effect.gen(function*() {
      const lines = Effect.gen(function*() {
        yield* Effect.logInfo("Sent password_reset email to 1 recipient(s) in zulip").pipe(
          Effect.annotateLogs({ template: "password_reset", realm_id: 2, failed_tries: 0, redelivered: true })
        )
        yield* Effect.logWarning("100% of \"quoted\" and \\ escaped \n text").pipe(Effect.withLogSpan("send"))
        // not plain: a secret, a nested object, several message parts, a cause
        yield* Effect.logError("with a secret").pipe(Effect.annotateLogs({ password: Redacted.make("hunter2") }))
        yield* Effect.logInfo("nested").pipe(Effect.annotateLogs({ smtp: { host: "mail", port: 25 } }))
        yield* Effect.logInfo("two", "parts")
        yield* Effect.logError("failed", Cause.fail(new Error("boom")))
        // values plain JSON cannot write: it throws on these two and writes an Error as {}
        const cyclic: Record<string, unknown> = { name: "loop" }
        cyclic["self"] = cyclic
        yield* Effect.logInfo("odd values").pipe(Effect.annotateLogs({ size: 12n, cyclic, error: new Error("inner") }))
      })
      const ours = yield* written(jsonLines, lines)
      assert.deepStrictEqual(ours, yield* written(Logger.consoleJson, lines))
      assert.strictEqual(ours.length, 7)
      assert.include(ours[6], "inner")
      assert.notInclude(ours.join("\n"), "hunter2")
    }))

  it.effect("gathers a window's lines into one write, and writes what is still buffered when its scope closes", () =>
    Effect.gen(function*() {
      const writes: Array<string> = []
      const messagesOf = (text: string | undefined) =>
        (text ?? "").split("\n").map((line) => (JSON.parse(line) as { message: string }).message)
      yield* Effect.scoped(Effect.gen(function*() {
        const logged = Effect.provide(Logger.layer([yield* batchedJsonLines("stdout")]))
        yield* logged(Effect.logInfo("one"))
        yield* logged(Effect.logWarning("two"))
        assert.deepStrictEqual(writes, [])
        yield* TestClock.adjust(logWriteWindow)
        assert.deepStrictEqual(writes.map(messagesOf), [["one", "two"]])
        yield* logged(Effect.logError("three"))
        assert.strictEqual(writes.length, 1)
      })).pipe(Effect.provideService(Console.Console, recordingConsole(writes)))
      assert.deepStrictEqual(writes.map(messagesOf), [["one", "two"], ["three"]])
    }))
})
