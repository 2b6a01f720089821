import { Layer } from "effect"
import { Command } from "effect/cli"
import * as Logging from "../operations/Logging.ts"
import * as Tracing from "../operations/Tracing.ts"

/**
 * What every command runs with: its log (`LOG_FORMAT`, `--log-level` or `LOG_LEVEL`) on `stream`, and span export
 * when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Provided inside each command's handler, where `--log-level` is known,
 * and where `stats` can answer an invalid one as Nagios expects.
 */
export const commandServices = (stream: Logging.LogStream) =>
  Tracing.layerConfig.pipe(Layer.provideMerge(Logging.layerConfig(stream)))

/** Every command but the worker logs to stderr, its stdout being its output. */
export const withCommandServices = <const Name extends string, Input, ContextInput, E, R>(
  command: Command.Command<Name, Input, ContextInput, E, R>
) => command.pipe(Command.provide(commandServices("stderr")))
