import { Effect, Layer, Logger } from "effect"

export interface CapturedLog {
  readonly level: string
  readonly message: string
}

/** Replaces the loggers with one that keeps every line, so a test can assert on what was logged. */
export const captureLogs = () => {
  const lines: Array<CapturedLog> = []
  const logger = Logger.make(({ logLevel, message }) => {
    lines.push({ level: logLevel, message: (Array.isArray(message) ? message : [message]).map(String).join(" ") })
  })
  return { lines, layer: Logger.layer([logger]) as Layer.Layer<never> }
}

export const withCapturedLogs = <A, E, R>(f: (lines: ReadonlyArray<CapturedLog>) => Effect.Effect<A, E, R>) => {
  const { lines, layer } = captureLogs()
  return f(lines).pipe(Effect.provide(layer))
}
