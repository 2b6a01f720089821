/**
 * The `templates check` program: compiles every template under `TEMPLATES_DIR` (each `.html` and `.txt`, layouts
 * and language directories included) and renders it once with an empty context, so a syntax error, an unknown
 * filter or a missing layout/include is found before an email needs it. A `.subject.txt` with neither body is
 * reported too. Each problem is logged with its file and line and returned.
 */
import { Config, Effect, Option, Result } from "effect"
import { readdir } from "node:fs/promises"
import * as path from "node:path"
import { TemplateError } from "../domain/errors.ts"
import {
  defaultTemplatesDir,
  HTML_SUFFIX,
  makeTemplateRenderer,
  SUBJECT_SUFFIX,
  TEXT_SUFFIX
} from "../layers/TemplateRenderer.ts"

const listFiles = (templatesDir: string): Effect.Effect<ReadonlyArray<string>, TemplateError> =>
  Effect.tryPromise({
    try: () => readdir(templatesDir, { recursive: true, withFileTypes: true }),
    catch: (error) =>
      new TemplateError({
        message: `TEMPLATES_DIR ${templatesDir} cannot be read: ${(error as Error).message}`,
        template: "",
        file: templatesDir,
        line: null
      })
  }).pipe(
    Effect.map((entries) =>
      entries
        .filter((entry) => entry.isFile() && (entry.name.endsWith(HTML_SUFFIX) || entry.name.endsWith(TEXT_SUFFIX)))
        .map((entry) => path.join(entry.parentPath, entry.name))
        .sort()
    )
  )

/** A subject template whose triplet has no body at all. */
const missingBody = (file: string, files: ReadonlySet<string>): TemplateError | null => {
  const base = file.slice(0, -SUBJECT_SUFFIX.length)
  return files.has(base + HTML_SUFFIX) || files.has(base + TEXT_SUFFIX) ? null : new TemplateError({
    message: `template ${path.basename(base)}: ${file} has neither ${base + HTML_SUFFIX} nor ${base + TEXT_SUFFIX}`,
    template: path.basename(base),
    file: base + HTML_SUFFIX,
    line: null
  })
}

export const checkTemplates = Effect.fn("checkTemplates")(function*(templatesDir: string) {
  const root = path.resolve(templatesDir)
  const listed = yield* Effect.result(listFiles(root))
  if (Result.isFailure(listed)) {
    yield* Effect.logError(listed.failure.message)
    return [listed.failure]
  }
  const files = listed.success
  const renderer = makeTemplateRenderer({ templatesDir: root, reload: true })
  const compiled = yield* Effect.forEach(files, (file) => Effect.result(renderer.compile(file)))
  const known = new Set(files)
  const problems: ReadonlyArray<TemplateError> = [
    ...compiled.flatMap((result) => Option.toArray(Result.getFailure(result))),
    ...files.filter((file) => file.endsWith(SUBJECT_SUFFIX)).flatMap((file) => missingBody(file, known) ?? [])
  ]
  for (const problem of problems) {
    yield* Effect.logError(problem.message).pipe(Effect.annotateLogs({ file: problem.file, line: problem.line }))
  }
  yield* Effect.logInfo(`checked ${files.length} template files in ${root}: ${problems.length} problem(s)`)
  return problems
})

/** `checkTemplates` on `TEMPLATES_DIR` (default: the templates shipped with this package). */
export const checkTemplatesConfig = Effect.gen(function*() {
  const templatesDir = yield* Config.String("TEMPLATES_DIR").pipe(Config.withDefault(defaultTemplatesDir))
  return yield* checkTemplates(templatesDir)
})
