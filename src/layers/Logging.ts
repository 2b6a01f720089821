/** Log output: one JSON object a line (default) or pretty for a terminal (`LOG_FORMAT=pretty`), at `LOG_LEVEL`. */
import { Config, Console, Duration, Effect, Formatter, Layer, Logger, References, type Scope } from "effect"

const isPlain = (value: unknown): boolean =>
  value === undefined || value === null || typeof value === "string" || typeof value === "number" ||
  typeof value === "boolean"

const hasOnlyPlainValues = (record: Readonly<Record<string, unknown>>): boolean => {
  for (const key in record) {
    if (!isPlain(record[key])) return false
  }
  return true
}

/**
 * Effect's JSON line (`Logger.consoleJson`: message, level, timestamp, cause, annotations, spans, fiberId), written
 * with plain `JSON.stringify` when every value is a plain string, number or boolean, which gives the same text.
 * Effect's own serialiser (redacting secrets, breaking cycles, writing bigints) visits every key of every line, a
 * visible cost with a line per email; a line holding anything else still goes through it.
 */
export const jsonLine: Logger.Logger<unknown, string> = Logger.map(Logger.formatStructured, (line) =>
  isPlain(line.message) && hasOnlyPlainValues(line.annotations) && hasOnlyPlainValues(line.spans)
    ? JSON.stringify(line)
    : Formatter.formatJson(line))

/** `jsonLine` written with one `console.log` a line. */
export const jsonLines: Logger.Logger<unknown, void> = Logger.withConsoleLog(jsonLine)

/** How long the worker gathers log lines before writing them. */
export const logWriteWindow = Duration.millis(20)

/**
 * Where log lines go: standard output for the worker, whose output is its log, and standard error for every
 * command whose standard output is its result (`render`, `stats`, `replay`, ...), so that the result can be piped.
 */
export type LogStream = "stdout" | "stderr"

/**
 * `jsonLine` gathered over `logWriteWindow` and written with one `console.log` (or `console.error`): a line per
 * email written on its own cost a `write(2)` each, ~5 % of the worker's CPU at full speed (bench/FINDINGS.md).
 * What is buffered is written when the logger's scope closes (a stop or a failure exit), and lost only if the
 * process is killed outright (SIGKILL, out of memory): at most `logWriteWindow` of lines.
 */
export const batchedJsonLines = (stream: LogStream): Effect.Effect<Logger.Logger<unknown, void>, never, Scope.Scope> =>
  Logger.batched(jsonLine, {
    window: logWriteWindow,
    flush: (lines) => (stream === "stdout" ? Console.log : Console.error)(lines.join("\n"))
  })

/** `LOG_FORMAT` and `LOG_LEVEL`, written to `stream`. */
export const layerConfig = (stream: LogStream) =>
  Layer.unwrap(Effect.gen(function*() {
    const format = yield* Config.Literals(["json", "pretty"], "LOG_FORMAT").pipe(Config.withDefault("json" as const))
    const level = yield* Config.LogLevel("LOG_LEVEL").pipe(Config.withDefault("Info" as const))
    return Layer.mergeAll(
      Logger.layer([format === "json" ? batchedJsonLines(stream) : Logger.consolePretty()]),
      // where the pretty logger writes
      Layer.succeed(Logger.LogToStderr, stream === "stderr"),
      Layer.succeed(References.MinimumLogLevel, level)
    )
  }))
