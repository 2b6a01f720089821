/** Log output: one JSON object a line (default) or pretty for a terminal (`LOG_FORMAT=pretty`), at `LOG_LEVEL`. */
import {
  Config,
  Console,
  Duration,
  Effect,
  Formatter,
  Layer,
  Logger,
  type LogLevel,
  Option,
  References,
  Schema,
  type Scope
} from "effect"
import { CliConfig, Flag, GlobalFlag } from "effect/cli"

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

/**
 * The level names taken, in any case: Effect's (`Warn`, `Fatal`, ...) and Python's, which operators coming from
 * Zulip write (`WARNING`, `CRITICAL`).
 */
const levelsByName: ReadonlyMap<string, LogLevel.LogLevel> = new Map([
  ["all", "All"],
  ["trace", "Trace"],
  ["debug", "Debug"],
  ["info", "Info"],
  ["warn", "Warn"],
  ["warning", "Warn"],
  ["error", "Error"],
  ["fatal", "Fatal"],
  ["critical", "Fatal"],
  ["none", "None"]
])

/** The accepted level names, for messages and help. */
export const logLevelNames: ReadonlyArray<string> = [...levelsByName.keys()]

/** The level a `LOG_LEVEL` or `--log-level` value names, in any case; undefined for an unknown name. */
export const parseLogLevel = (name: string): LogLevel.LogLevel | undefined => levelsByName.get(name.trim().toLowerCase())

const levelChoices = `${logLevelNames.join(", ")} (any case)`

/** `LOG_LEVEL` (default `Info`). */
export const LogLevelSetting: Config.Config<LogLevel.LogLevel> = Config.schema(
  Schema.String.check(
    Schema.makeFilter((name: string) => parseLogLevel(name) === undefined ? `expected one of ${levelChoices}` : undefined)
  ),
  "LOG_LEVEL"
).pipe(Config.map((name) => parseLogLevel(name) ?? "Info"), Config.withDefault("Info" as const))

/**
 * `--log-level`, taking the same names as `LOG_LEVEL` and overriding it. It replaces the CLI's built-in flag of
 * that name (`cliConfig`), which takes only lower-case names.
 */
export const LogLevelFlag = GlobalFlag.Setting("log-level")({
  flag: Flag.String("log-level").pipe(
    Flag.filterMap((name) => Option.fromUndefinedOr(parseLogLevel(name)), () => `one of ${levelChoices}`),
    Flag.optional,
    Flag.withMetavar("<level>"),
    Flag.withDescription(`The minimum log level, overriding LOG_LEVEL: ${levelChoices}`)
  )
})

/** The CLI's built-in global flags, with `LogLevelFlag` in place of its own `--log-level`. */
export const cliConfig = CliConfig.layer({
  builtIns: [GlobalFlag.Help, GlobalFlag.Version, GlobalFlag.Wizard, GlobalFlag.Completions, LogLevelFlag]
})

/** `LOG_FORMAT`, and `--log-level` or else `LOG_LEVEL`, written to `stream`. */
export const layerConfig = (stream: LogStream) =>
  Layer.unwrap(Effect.gen(function*() {
    const format = yield* Config.Literals(["json", "pretty"], "LOG_FORMAT").pipe(Config.withDefault("json" as const))
    const fromFlag = Option.flatten(yield* Effect.serviceOption(LogLevelFlag))
    const level = Option.isSome(fromFlag) ? fromFlag.value : yield* LogLevelSetting
    return Layer.mergeAll(
      Logger.layer([format === "json" ? batchedJsonLines(stream) : Logger.consolePretty()]),
      // where the pretty logger writes
      Layer.succeed(Logger.LogToStderr, stream === "stderr"),
      Layer.succeed(References.MinimumLogLevel, level)
    )
  }))
