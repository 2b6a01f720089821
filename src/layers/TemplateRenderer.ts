/**
 * Zulip's template triplets, rendered with LiquidJS: `<prefix>.subject.txt`, `<prefix>.txt` and `<prefix>.html`
 * under `TEMPLATES_DIR`, with an optional `<lang>/` directory holding translated triplets.
 *
 * LiquidJS has the Jinja-style syntax Zulip's templates use (`{{ x }}`, `{% if %}`, `{% for %}`, layouts and
 * includes) and is built for untrusted templates: a template can only read the data it is given (own properties
 * only), never run code, and never reach a file outside the template directories. `.html` output is HTML-escaped;
 * the subject and `.txt` are not (they are not HTML), but a value written into the subject must not carry a control
 * character: the subject is a header, and removing the template's own line breaks (as Zulip does) must not turn an
 * injected CR/LF into accepted text. Parsed templates are cached by the engine; with `reload` the files are read
 * again on every render so an edited template is picked up at once.
 */
import { Config, Effect, Option, Result } from "effect"
import { LiquidError, Liquid } from "liquidjs"
import { existsSync } from "node:fs"
import { readdir, stat } from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { controlCharacterIn } from "../domain/addresses.ts"
import type { JsonObject } from "../domain/EmailEvent.ts"
import { InvalidEvent, TemplateError } from "../domain/errors.ts"

export interface TemplateRendererOptions {
  /** `TEMPLATES_DIR` */
  readonly templatesDir: string
  /** `TEMPLATES_RELOAD`: re-read templates on every render (development) instead of compiling them once */
  readonly reload: boolean
}

/** One rendered triplet, before the builder's finishing (subject clean-up, CSS inlining, text from HTML). */
export interface RenderedTemplate {
  readonly subject: string
  readonly text: string | null
  readonly html: string | null
  /** where the HTML came from, for errors raised while finishing it */
  readonly htmlFile: string | null
  /** the language directory used, or null for the default templates */
  readonly language: string | null
}

export interface TemplateRenderer {
  readonly render: (
    templatePrefix: string,
    language: string | null,
    context: JsonObject
  ) => Effect.Effect<RenderedTemplate, TemplateError | InvalidEvent>
  /** Parses `file` (absolute, under the templates directory) and renders it with an empty context. */
  readonly compile: (file: string) => Effect.Effect<void, TemplateError>
}

/** The nearest directory at or above `directory` with a `package.json`: this package's own. */
const packageDirectoryOf = (directory: string): string => {
  if (existsSync(path.join(directory, "package.json"))) return directory
  const parent = path.dirname(directory)
  return parent === directory ? directory : packageDirectoryOf(parent)
}

/**
 * The templates shipped with this package, found from the module's own place, so it works from `src/`, `dist/`,
 * the bundled `dist/main.js` and `node_modules`.
 */
export const defaultTemplatesDir: string = path.join(
  packageDirectoryOf(path.dirname(fileURLToPath(import.meta.url))),
  "templates"
)

const SUBJECT_SUFFIX = ".subject.txt"
const TEXT_SUFFIX = ".txt"
const HTML_SUFFIX = ".html"

/** `de`, `pt-br`, `zh_Hant`: what a language (and so a language directory name) may look like. */
const LANGUAGE_TAG = /^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$/
const isLanguageTag = (value: string): boolean => LANGUAGE_TAG.test(value)

/** Relative path segments only: no `..`, no hidden files, no absolute paths. */
const PREFIX_SEGMENT = /^[\w-][\w.-]*$/
const isSafePrefix = (prefix: string): boolean => prefix.split("/").every((segment) => PREFIX_SEGMENT.test(segment))

type TemplateKind = "subject" | "text" | "html"

const kindOf = (file: string): TemplateKind =>
  file.endsWith(SUBJECT_SUFFIX) ? "subject" : file.endsWith(HTML_SUFFIX) ? "html" : "text"

/** Raised from inside the subject engine when a value written into the subject holds a control character. */
class ControlCharacterInSubject extends Error {}

/** The subject engine's output filter: values pass through unchanged unless they would break the header. */
const refuseControlCharacters = (value: unknown): string => {
  const control = controlCharacterIn(String(value ?? ""))
  if (control !== null) throw new ControlCharacterInSubject(control)
  return value as string
}

interface ResolvedTriplet {
  readonly roots: ReadonlyArray<string>
  readonly language: string | null
  readonly subjectFile: string
  readonly textFile: string | null
  readonly htmlFile: string | null
}

const fileExists = (file: string): Effect.Effect<boolean> =>
  Effect.promise(() => stat(file).then((found) => found.isFile(), () => false))

export const makeTemplateRenderer = (options: TemplateRendererOptions): TemplateRenderer => {
  const templatesDir = path.resolve(options.templatesDir)
  const engines = new Map<string, Liquid>()
  const resolved = new Map<string, ResolvedTriplet>()

  /** One engine per language and kind of template: the roots decide where layouts and includes are looked up. */
  const engineFor = (roots: ReadonlyArray<string>, kind: TemplateKind): Liquid => {
    const key = `${kind}\0${roots.join("\0")}`
    let engine = engines.get(key)
    if (engine === undefined) {
      engine = new Liquid({
        root: [...roots],
        extname: "",
        cache: !options.reload,
        strictFilters: true,
        ownPropertyOnly: true,
        // Jinja truthiness: "" and 0 are false, as Zulip's templates expect
        jsTruthy: true,
        ...(kind === "html" ? { outputEscape: "escape" as const } : {}),
        ...(kind === "subject" ? { outputEscape: refuseControlCharacters } : {})
      })
      engines.set(key, engine)
    }
    return engine
  }

  /** A language directory's templates also find their layouts and includes in the default directory. */
  const rootsFor = (language: string | null): ReadonlyArray<string> =>
    language === null ? [templatesDir] : [path.join(templatesDir, language), templatesDir]

  const toTemplateError = (template: string, file: string) => (error: unknown): TemplateError | InvalidEvent => {
    if (LiquidError.is(error) && error.originalError instanceof ControlCharacterInSubject) {
      return new InvalidEvent({
        message: `invalid email event: a value written into the subject of template ${template} contains the ` +
          `control character ${error.originalError.message}; header values must be a single line`,
        field: "subject"
      })
    }
    if (LiquidError.is(error)) {
      return new TemplateError({
        message: `template ${template}: ${error.message}`,
        template,
        file: error.token.file ?? file,
        line: error.token.getPosition()[0] ?? null
      })
    }
    const reason = error instanceof Error ? error.message : String(error)
    return new TemplateError({ message: `template ${template}: ${reason} (${file})`, template, file, line: null })
  }

  const renderFile = (template: string, roots: ReadonlyArray<string>, file: string, context: JsonObject) =>
    Effect.tryPromise({
      try: () => engineFor(roots, kindOf(file)).renderFile(file, context) as Promise<unknown>,
      catch: toTemplateError(template, file)
    }).pipe(Effect.map(String))

  /** The first of `language` and its primary subtag whose directory has the subject, else the default templates. */
  const resolveTriplet = Effect.fnUntraced(function*(prefix: string, language: string | null) {
    const candidates = language === null ? [] : [...new Set([language, language.split(/[-_]/)[0]!])]
    let chosen: string | null = null
    for (const candidate of candidates) {
      if (yield* fileExists(path.join(templatesDir, candidate, prefix + SUBJECT_SUFFIX))) {
        chosen = candidate
        break
      }
    }
    const base = path.join(chosen === null ? templatesDir : path.join(templatesDir, chosen), prefix)
    const subjectFile = base + SUBJECT_SUFFIX
    if (!(yield* fileExists(subjectFile))) {
      return yield* new TemplateError({
        message: `template ${prefix}: the subject template ${subjectFile} does not exist`,
        template: prefix,
        file: subjectFile,
        line: null
      })
    }
    const textFile = (yield* fileExists(base + TEXT_SUFFIX)) ? base + TEXT_SUFFIX : null
    const htmlFile = (yield* fileExists(base + HTML_SUFFIX)) ? base + HTML_SUFFIX : null
    if (textFile === null && htmlFile === null) {
      return yield* new TemplateError({
        message: `template ${prefix}: neither ${base + HTML_SUFFIX} nor ${base + TEXT_SUFFIX} exists`,
        template: prefix,
        file: base + HTML_SUFFIX,
        line: null
      })
    }
    return { roots: rootsFor(chosen), language: chosen, subjectFile, textFile, htmlFile } satisfies ResolvedTriplet
  })

  const cachedTriplet = (prefix: string, language: string | null): Effect.Effect<ResolvedTriplet, TemplateError> => {
    if (options.reload) return resolveTriplet(prefix, language)
    const key = `${language ?? ""}\0${prefix}`
    const known = resolved.get(key)
    return known !== undefined
      ? Effect.succeed(known)
      : Effect.tap(resolveTriplet(prefix, language), (triplet) => Effect.sync(() => resolved.set(key, triplet)))
  }

  const render = Effect.fnUntraced(function*(templatePrefix: string, language: string | null, context: JsonObject) {
    if (!isSafePrefix(templatePrefix)) {
      return yield* new InvalidEvent({
        message: `invalid email event: template_prefix ${JSON.stringify(templatePrefix)} must be a relative path of plain names`,
        field: "template_prefix"
      })
    }
    if (language !== null && !isLanguageTag(language)) {
      return yield* new InvalidEvent({
        message: `invalid email event: language ${JSON.stringify(language)} is not a language code`,
        field: "language"
      })
    }
    const triplet = yield* cachedTriplet(templatePrefix, language)
    const subject = yield* renderFile(templatePrefix, triplet.roots, triplet.subjectFile, context)
    const text = triplet.textFile === null
      ? null
      : yield* renderFile(templatePrefix, triplet.roots, triplet.textFile, context)
    const html = triplet.htmlFile === null
      ? null
      : yield* renderFile(templatePrefix, triplet.roots, triplet.htmlFile, context)
    return { subject, text, html, htmlFile: triplet.htmlFile, language: triplet.language } satisfies RenderedTemplate
  })

  const compile = (file: string): Effect.Effect<void, TemplateError> => {
    const relative = path.relative(templatesDir, file)
    const top = relative.split(path.sep)[0]!
    const language = relative.includes(path.sep) && isLanguageTag(top) ? top : null
    const template = (language === null ? relative : relative.slice(top.length + 1)).split(path.sep).join("/")
    return renderFile(template, rootsFor(language), file, {}).pipe(
      Effect.asVoid,
      // with an empty context only the template's own text can put a control character into a subject
      Effect.mapError((error) =>
        error._tag === "TemplateError" ? error : new TemplateError({ message: error.message, template, file, line: null })
      )
    )
  }

  return { render, compile }
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
 * `templates check`: compiles every template under `TEMPLATES_DIR` (each `.html` and `.txt`, layouts
 * and language directories included) and renders it once with an empty context, so a syntax error, an unknown
 * filter or a missing layout/include is found before an email needs it. A `.subject.txt` with neither body is
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
