/** Log output: one JSON object a line (default) or pretty for a terminal (`LOG_FORMAT=pretty`), at `LOG_LEVEL`. */
import { Config, Effect, Formatter, Layer, Logger, References } from "effect"

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
export const jsonLines: Logger.Logger<unknown, void> = Logger.withConsoleLog(
  Logger.map(Logger.formatStructured, (line) =>
    isPlain(line.message) && hasOnlyPlainValues(line.annotations) && hasOnlyPlainValues(line.spans)
      ? JSON.stringify(line)
      : Formatter.formatJson(line))
)

export const layerConfig = Layer.unwrap(Effect.gen(function*() {
  const format = yield* Config.Literals(["json", "pretty"], "LOG_FORMAT").pipe(Config.withDefault("json" as const))
  const level = yield* Config.LogLevel("LOG_LEVEL").pipe(Config.withDefault("Info" as const))
  return Layer.mergeAll(
    Logger.layer([format === "json" ? jsonLines : Logger.consolePretty()]),
    Layer.succeed(References.MinimumLogLevel, level)
  )
}))
