import { Cause, Console, Effect, SchemaIssue } from "effect"
import { problemsOf, problemsText } from "../domain/schemaIssues.ts"

const hasIssue = (value: unknown): value is { readonly issue: SchemaIssue.Issue } =>
  typeof value === "object" && value !== null && "issue" in value && SchemaIssue.isIssue(value.issue)

/**
 * A failure as one line: its tag and message, a setting's name first (`ConfigError: SMTP_CONNECTIONS: Expected a
 * positive integer`), taken from the structured issue when there is one.
 */
export const describeFailure = (error: unknown): string => {
  if (typeof error !== "object" || error === null || !("message" in error)) return String(error)
  const { _tag, name, message, cause } = error as { _tag?: string; name?: string; message: string; cause?: unknown }
  const issueHolder = hasIssue(cause) ? cause : hasIssue(error) ? error : null
  const detail = issueHolder !== null
    ? problemsText(problemsOf(issueHolder.issue))
    : (typeof cause === "object" && cause !== null && "message" in cause ? String(cause.message) : message)
      .split("\n").map((line) => line.trim()).filter((line) => line !== "").join("; ")
  return `${_tag ?? name ?? "Error"}: ${detail}`
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
