import { Console, Effect, Logger, Schema } from "effect"
import { Command } from "effect/cli"
import type { TemplateError } from "../domain/errors.ts"
import { checkTemplatesConfig } from "../email/TemplateRenderer.ts"
import { withEnvironment } from "./environmentHelp.ts"

/** Ends `templates check` with a non-zero exit code. */
export class TemplatesInvalid extends Schema.TaggedError<TemplatesInvalid>()("TemplatesInvalid", {
  message: Schema.String,
  problems: Schema.Int
}) {}

/** A compiler's `file:line: message`, so editors and CI logs can jump to it. */
export const problemLine = (problem: TemplateError): string =>
  `${problem.file ?? problem.template}${problem.line === null ? "" : `:${problem.line}`}: ${problem.message}`

/** `checkTemplates` on `TEMPLATES_DIR`: print each problem, and fail when there is any. */
export const checkTemplatesAndReport = Effect.gen(function*() {
  // the check also logs each problem; here each is printed once, in the compiler's format
  const problems = yield* checkTemplatesConfig.pipe(Effect.provide(Logger.layer([])))
  for (const problem of problems) yield* Console.log(problemLine(problem))
  if (problems.length > 0) {
    return yield* new TemplatesInvalid({ message: `${problems.length} template problem(s)`, problems: problems.length })
  }
  yield* Console.log("templates: no problem found")
})

const check = Command.make("check", {}, () => checkTemplatesAndReport).pipe(
  withEnvironment(
    "Compile and render every template under TEMPLATES_DIR; print each problem with its file and line, exit 1 if any",
    "templates check"
  )
)

export const templatesCommand = Command.make("templates").pipe(
  Command.withDescription("Template commands"),
  Command.withSubcommands([check])
)
