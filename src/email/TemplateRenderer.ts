/**
 * Zulip's template triplets under `TEMPLATES_DIR`: `<prefix>.subject.txt`, `<prefix>.txt` and `<prefix>.html`,
 * rendered the way Zulip renders them (Jinja2's semantics on nunjucks, `jinja/environment.ts`) in the language of
 * the catalog given. Templates come from the operator and are trusted; context values are data: they are never
 * compiled as template code, `.html` output escapes them, and a value written into the subject must not carry a
 * control character (the subject is a header, and removing the template's own line breaks, as Zulip does, must not
 * turn an injected CR/LF into accepted text). Templates are compiled once; with `reload` the files are read again on
 * every render so an edited template is picked up at once.
 */
import { Config, Effect, Result } from "effect"
import { readdir, stat } from "node:fs/promises"
import * as path from "node:path"
import { controlCharacterIn } from "../domain/addresses.ts"
import type { JsonObject } from "../domain/EmailEvent.ts"
import { InvalidEvent, TemplateError } from "../domain/errors.ts"
import { packageDirectory } from "../packageInfo.ts"
import { type Catalog, JinjaRenderError, makeJinjaEngine } from "./jinja/environment.ts"
import type { Skeleton } from "./jinja/skeleton.ts"

export interface TemplateRendererOptions {
  /** `TEMPLATES_DIR` */
  readonly templatesDir: string
  /** `TEMPLATES_RELOAD`: re-read templates on every render (development) instead of compiling them once */
  readonly reload: boolean
  /** the environment's globals, as Zulip's (`support_email`) */
  readonly globals?: Readonly<Record<string, unknown>>
}

/** One rendered triplet, before the builder's finishing (subject clean-up, CSS inlining, text from HTML). */
export interface RenderedTemplate {
  readonly subject: string
  readonly text: string | null
  readonly html: string | null
  /** where the HTML came from, for errors raised while finishing it */
  readonly htmlFile: string | null
  /** the HTML's skeleton, for CSS inlining (`styleInliner.ts`), when the render has one */
  readonly htmlSkeleton: Skeleton | null
}

export interface TemplateRenderer {
  readonly render: (
    templatePrefix: string,
    catalog: Catalog,
    context: JsonObject
  ) => Effect.Effect<RenderedTemplate, TemplateError | InvalidEvent>
}

/** The templates shipped with this package. */
export const defaultTemplatesDir: string = path.join(packageDirectory, "templates")

const SUBJECT_SUFFIX = ".subject.txt"
const TEXT_SUFFIX = ".txt"
const HTML_SUFFIX = ".html"

/** Relative path segments only: no `..`, no hidden files, no absolute paths. */
const PREFIX_SEGMENT = /^[\w-][\w.-]*$/
const isSafePrefix = (prefix: string): boolean => prefix.split("/").every((segment) => PREFIX_SEGMENT.test(segment))

interface ResolvedTriplet {
  readonly subject: string
  readonly text: string | null
  readonly html: string | null
}

const fileExists = (file: string): Effect.Effect<boolean> =>
  Effect.promise(() => stat(file).then((found) => found.isFile(), () => false))

const controlCharacterProblem = (text: string): string | null => {
  const control = controlCharacterIn(text)
  return control === null ? null : `contains the control character ${control}`
}

export const makeTemplateRenderer = (options: TemplateRendererOptions): TemplateRenderer => {
  const templatesDir = path.resolve(options.templatesDir)
  const engine = makeJinjaEngine({
    templatesDir,
    reload: options.reload,
    checkSubjectValue: controlCharacterProblem,
    ...(options.globals === undefined ? {} : { globals: options.globals })
  })
  const resolved = new Map<string, ResolvedTriplet>()

  const toTemplateError = (template: string) => (error: unknown): TemplateError | InvalidEvent => {
    if (error instanceof JinjaRenderError) {
      if (error.pythonType === "ValueRefused") {
        return new InvalidEvent({
          message: `invalid email event: a value written into the subject of template ${template} ${error.message}; ` +
            "header values must be a single line",
          field: "subject"
        })
      }
      return new TemplateError({
        message: `template ${template}: ${error.pythonType}: ${error.message}`,
        template,
        file: path.join(templatesDir, error.template),
        line: error.line
      })
    }
    const reason = error instanceof Error ? error.message : String(error)
    return new TemplateError({ message: `template ${template}: ${reason}`, template, file: null, line: null })
  }

  /** The triplet's files rendered, one after the other (a render is synchronous: nothing else runs meanwhile). */
  const renderTriplet = (prefix: string, triplet: ResolvedTriplet, catalog: Catalog, context: JsonObject) =>
    Effect.try({
      try: (): RenderedTemplate => ({
        subject: engine.render(triplet.subject, catalog, context),
        text: triplet.text === null ? null : engine.render(triplet.text, catalog, context),
        html: triplet.html === null ? null : engine.render(triplet.html, catalog, context),
        htmlFile: triplet.html === null ? null : path.join(templatesDir, triplet.html),
        htmlSkeleton: triplet.html === null ? null : engine.renderSkeleton(triplet.html, catalog, context)
      }),
      catch: toTemplateError(prefix)
    })

  const resolveTriplet = Effect.fnUntraced(function*(prefix: string) {
    const file = (suffix: string) => path.join(templatesDir, prefix + suffix)
    if (!(yield* fileExists(file(SUBJECT_SUFFIX)))) {
      return yield* new TemplateError({
        message: `template ${prefix}: the subject template ${file(SUBJECT_SUFFIX)} does not exist`,
        template: prefix,
        file: file(SUBJECT_SUFFIX),
        line: null
      })
    }
    const text = (yield* fileExists(file(TEXT_SUFFIX))) ? prefix + TEXT_SUFFIX : null
    const html = (yield* fileExists(file(HTML_SUFFIX))) ? prefix + HTML_SUFFIX : null
    if (text === null && html === null) {
      return yield* new TemplateError({
        message: `template ${prefix}: neither ${file(HTML_SUFFIX)} nor ${file(TEXT_SUFFIX)} exists`,
        template: prefix,
        file: file(HTML_SUFFIX),
        line: null
      })
    }
    return { subject: prefix + SUBJECT_SUFFIX, text, html } satisfies ResolvedTriplet
  })

  const cachedTriplet = (prefix: string): Effect.Effect<ResolvedTriplet, TemplateError> => {
    if (options.reload) return resolveTriplet(prefix)
    const known = resolved.get(prefix)
    return known !== undefined
      ? Effect.succeed(known)
      : Effect.tap(resolveTriplet(prefix), (triplet) => Effect.sync(() => resolved.set(prefix, triplet)))
  }

  const render = (templatePrefix: string, catalog: Catalog, context: JsonObject) => {
    if (!isSafePrefix(templatePrefix)) {
      return Effect.fail(
        new InvalidEvent({
          message: `invalid email event: template_prefix ${JSON.stringify(templatePrefix)} must be a relative path of plain names`,
          field: "template_prefix"
        })
      )
    }
    return Effect.flatMap(cachedTriplet(templatePrefix), (triplet) => renderTriplet(templatePrefix, triplet, catalog, context))
  }

  return { render }
}

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

/**
 * `templates check`: compiles every template under `TEMPLATES_DIR` (each `.html` and `.txt`, in the environment its
 * suffix selects) and checks what can be known before an email needs it: every template it extends, includes or
 * imports exists and compiles, and every filter and test it uses exists. A `.subject.txt` with neither body is
 * reported too. Each problem is logged with its file and line and returned.
 */
export const checkTemplates = Effect.fn("checkTemplates")(function*(templatesDir: string) {
  const root = path.resolve(templatesDir)
  const listed = yield* Effect.result(listFiles(root))
  if (Result.isFailure(listed)) {
    yield* Effect.logError(listed.failure.message)
    return [listed.failure]
  }
  const files = listed.success
  const engine = makeJinjaEngine({ templatesDir: root, reload: true })
  const known = new Set(files)
  const problems: ReadonlyArray<TemplateError> = [
    ...files.flatMap((file) => {
      const name = path.relative(root, file).split(path.sep).join("/")
      return engine.check(name).map((problem) =>
        new TemplateError({
          message: `template ${problem.template}: ${problem.pythonType}: ${problem.message}`,
          template: problem.template,
          file: path.join(root, problem.template),
          line: problem.line
        })
      )
    }),
    ...files.filter((file) => file.endsWith(SUBJECT_SUFFIX)).flatMap((file) => missingBody(file, known) ?? [])
  ]
  const unique = [...new Map(problems.map((problem) => [`${problem.file}:${problem.line}:${problem.message}`, problem])).values()]
  for (const problem of unique) {
    yield* Effect.logError(problem.message).pipe(Effect.annotateLogs({ file: problem.file, line: problem.line }))
  }
  yield* Effect.logInfo(`checked ${files.length} template files in ${root}: ${unique.length} problem(s)`)
  return unique
})

/** `checkTemplates` on `TEMPLATES_DIR` (default: the templates shipped with this package). */
export const checkTemplatesConfig = Effect.gen(function*() {
  const templatesDir = yield* Config.String("TEMPLATES_DIR").pipe(Config.withDefault(defaultTemplatesDir))
  return yield* checkTemplates(templatesDir)
})
