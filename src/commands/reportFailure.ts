import { Cause, Console, Effect } from "effect"

/** `Expected a positive integer\n  at ["SMTP_CONNECTIONS"]` → `SMTP_CONNECTIONS: Expected a positive integer`. */
const oneLine = (message: string): string => {
  const lines = message.split("\n").map((line) => line.trim()).filter((line) => line !== "")
  const setting = lines.map((line) => /^at \["([^"]+)"\]/.exec(line)?.[1]).find((name) => name !== undefined)
  const problem = lines.filter((line) => !line.startsWith("at ")).join("; ")
  return setting === undefined ? problem : `${setting}: ${problem.replace(/^(SchemaError|SourceError)\(?/, "")}`
}

/** `Tag: message` in one line, the setting first for a configuration error. */
export const describeFailure = (error: unknown): string => {
  if (error instanceof Error || (typeof error === "object" && error !== null && "message" in error)) {
    const { _tag, name, message, cause } = error as { _tag?: string; name?: string; message: string; cause?: unknown }
    const detail = typeof cause === "object" && cause !== null && "message" in cause ? String(cause.message) : message
    return `${_tag ?? name ?? "Error"}: ${oneLine(detail)}`
  }
  return String(error)
}

/**
 * A command that cannot start (a missing or invalid setting, an unreadable realms file) fails with one clear line
 * on stderr naming the problem, instead of a stack trace; the exit code stays non-zero.
 */
export const reportFailure = <A, E, R>(program: Effect.Effect<A, E, R>) =>
  program.pipe(
    Effect.tapCause((cause) =>
      Cause.hasInterruptsOnly(cause) ? Effect.void : Console.error(`email-senders: ${describeFailure(Cause.squash(cause))}`)
    )
  )
