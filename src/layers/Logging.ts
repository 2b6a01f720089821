/** Log output: one JSON object a line (default) or pretty for a terminal (`LOG_FORMAT=pretty`), at `LOG_LEVEL`. */
import { Config, Effect, Layer, Logger, References } from "effect"

export const layerConfig = Layer.unwrap(Effect.gen(function*() {
  const format = yield* Config.Literals(["json", "pretty"], "LOG_FORMAT").pipe(Config.withDefault("json" as const))
  const level = yield* Config.LogLevel("LOG_LEVEL").pipe(Config.withDefault("Info" as const))
  return Layer.mergeAll(
    Logger.layer([format === "json" ? Logger.consoleJson : Logger.consolePretty()]),
    Layer.succeed(References.MinimumLogLevel, level)
  )
}))
