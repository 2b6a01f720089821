/**
 * Jinja2 as Zulip configures it, on nunjucks: two environments, plaintext (`.txt`, `.subject.txt`: no autoescape,
 * `trim_blocks`, `lstrip_blocks`) and HTML (`.html`: autoescape), both with the i18n extension, Zulip's filters and a
 * `FileSystemLoader` over the templates directory. Like Jinja2's lexer, the loader reads a template with its line
 * breaks as `\n` and without its single trailing newline. Each template file is compiled once per kind and shared
 * by every language's environments; an environment per language (and kind) only holds that language's catalog.
 *
 * Rendering is synchronous, as in Jinja2: everything a template needs is on disk or in memory, and a render holds no
 * state beyond its own call.
 */
import nunjucks from "nunjucks"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import {
  commentExtension,
  compileTemplate,
  type CompiledTemplate,
  ITERATE_FILTER,
  TEMPLATE_FILTER,
  TRUTH_FILTER
} from "./compiler.ts"
import { jinjaFilters, jinjaTests } from "./filters.ts"
import { type Catalog, gettextGlobals, transExtension } from "./i18n.ts"
import { type Node, nodes } from "./nunjucksInternals.ts"
import { parseTemplate } from "./parser.ts"
import { guarded, type Skeleton, SkeletonRecorder, SkeletonUnusable } from "./skeleton.ts"
import { jinjaSource, type WhitespaceOptions } from "./source.ts"
import * as Python from "./python.ts"
import { isKeywordArguments, JinjaRenderError, runtimeHelpers, skeletonHelpers, subjectHelpers } from "./runtime.ts"

export type { Catalog } from "./i18n.ts"
export { JinjaRenderError } from "./runtime.ts"

/** How a template file is compiled: Zulip's HTML engine for `.html`, its plaintext engine for anything else. */
type CompileKind = "text" | "html"

/**
 * The environment a template renders in: the subject is plain text whose values are also checked
 * (`checkSubjectValue`); the skeleton is HTML with its plain values marked (`skeleton.ts`).
 */
export type TemplateKind = CompileKind | "subject" | "skeleton"

export const kindOf = (name: string): TemplateKind =>
  name.endsWith(".html") ? "html" : name.endsWith(".subject.txt") ? "subject" : "text"

const compileKindOf = (kind: TemplateKind): CompileKind => kind === "html" || kind === "skeleton" ? "html" : "text"


export interface JinjaEngineOptions {
  readonly templatesDir: string
  /** read and compile the files again on every render (template development) instead of once */
  readonly reload: boolean
  /** names every template sees, as Zulip's environment globals (`support_email`) */
  readonly globals?: Readonly<Record<string, unknown>>
  /**
   * Checks each value a `.subject.txt` writes (`{{ value }}` or a `{% trans %}` variable): the reason it may not
   * go into a subject, or null. The render then fails with a `JinjaRenderError` of type `ValueRefused`.
   */
  readonly checkSubjectValue?: (text: string) => string | null
}

export interface JinjaEngine {
  /** `name` rendered with the environment its suffix selects, in `catalog`'s language; throws `JinjaRenderError` */
  readonly render: (name: string, catalog: Catalog, context: Readonly<Record<string, unknown>>) => string
  /**
   * Compiles `name` and checks what can be known without rendering: every template it extends, includes or imports
   * by name exists and compiles, and every filter and test it uses exists. Returns the problems found.
   */
  readonly check: (name: string) => ReadonlyArray<JinjaRenderError>
  /**
   * An `.html` template's skeleton (`skeleton.ts`) for the same render, or null when this render cannot have one
   * (it computes with a value, or fails: the real render reports why).
   */
  readonly renderSkeleton: (name: string, catalog: Catalog, context: Readonly<Record<string, unknown>>) => Skeleton | null
}

/** Zulip's plaintext engine has `trim_blocks` and `lstrip_blocks`; its HTML engine has neither. */
const whitespace: Record<CompileKind, WhitespaceOptions> = {
  text: { trimBlocks: true, lstripBlocks: true },
  html: { trimBlocks: false, lstripBlocks: false }
}

/** Jinja2's `split_template_path`: `/`-separated names under the directory; `..` is never found. */
const templateFile = (root: string, name: string): string | null => {
  const segments = name.split("/").filter((segment) => segment !== "" && segment !== ".")
  if (segments.length === 0 || segments.some((segment) => segment === ".." || segment.includes(path.sep))) return null
  return path.join(root, ...segments)
}

/** A template file's text, or null when there is no such file. */
const readTemplate = (file: string): string | null => {
  try {
    return readFileSync(file, "utf8")
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return null
    throw error
  }
}

/** A parse error from nunjucks' parser (its `lineno` is already 1-based), named after its template. */
const syntaxError = (error: unknown, name: string): JinjaRenderError => {
  const located = error as { readonly message: string; readonly lineno?: number }
  const message = located.message.replace(/^\(.*?\)(?: \[Line \d+, Column \d+\])?\n\s*/, "")
  return new JinjaRenderError(message, name, located.lineno ?? null, "TemplateSyntaxError")
}


/** The error nunjucks hands back from a render (it wraps the one `locate` made). */
const unwrap = (error: unknown, template: string): JinjaRenderError => {
  const cause = (error as { readonly cause?: unknown }).cause
  if (cause instanceof JinjaRenderError) return cause
  if (error instanceof JinjaRenderError) return error
  const message = error instanceof Error ? error.message : String(error)
  return new JinjaRenderError(message.replace(/^\(.*?\)\n\s*/, ""), template, null, "TemplateError")
}

const i18nExtensionName = "JinjaI18n"

/** `check` compiles without rendering, so its environments never look anything up. */
const checkingCatalog: Catalog = {
  gettext: (message) => message,
  ngettext: (singular) => singular,
  pgettext: (_context, message) => message,
  npgettext: (_context, singular) => singular
}

/** The tags the compiler knows beyond nunjucks' own. */
const extensions: ReadonlyArray<object> = [transExtension, commentExtension]

/** Jinja2's globals nunjucks lacks or spells differently. */
const jinjaGlobals = {
  True: true,
  False: false,
  None: null,
  namespace: (...args: ReadonlyArray<unknown>) => {
    const last = args.at(-1)
    const { __keywords: _, ...attributes } = isKeywordArguments(last) ? last : {}
    return new Python.Namespace({ ...(Python.isDict(args[0]) ? args[0] : {}), ...attributes })
  }
}

export const makeJinjaEngine = (options: JinjaEngineOptions): JinjaEngine => {
  const root = path.resolve(options.templatesDir)
  // compiled once per file and kind, shared by every language; a compile cache, filled within synchronous calls
  const compiled = new Map<string, CompiledTemplate>()

  const compiledFile = (file: string, name: string, kind: CompileKind): CompiledTemplate | null => {
    const key = `${kind}\0${file}`
    const known = options.reload ? undefined : compiled.get(key)
    if (known !== undefined) return known
    const text = readTemplate(file)
    if (text === null) return null
    let template: CompiledTemplate
    try {
      template = compileTemplate(jinjaSource(text, whitespace[kind]), name, extensions)
    } catch (error) {
      throw syntaxError(error, name)
    }
    if (!options.reload) compiled.set(key, template)
    return template
  }

  class TemplatesLoader extends nunjucks.Loader {
    readonly kind: CompileKind

    constructor(kind: CompileKind) {
      super()
      this.kind = kind
    }

    getSource(name: string) {
      const file = templateFile(root, name)
      const template = file === null ? null : compiledFile(file, name, this.kind)
      // nunjucks takes compiled template functions as `{ type: "code" }` sources
      return template === null ? null : { src: { type: "code", obj: template }, path: name, noCache: options.reload }
    }

    // Jinja2 has no relative template names
    override isRelative(): boolean {
      return false
    }
  }

  const makeEnvironment = (kind: TemplateKind, catalog: Catalog): nunjucks.Environment => {
    const compileKind = compileKindOf(kind)
    const environment = new nunjucks.Environment(new TemplatesLoader(compileKind) as unknown as nunjucks.ILoader, {
      autoescape: compileKind === "html",
      // keeps the error `locate` made as the `cause` of the one nunjucks throws
      dev: true
    })
    environment.addExtension(i18nExtensionName, transExtension)
    // Jinja2's filters and tests only: nunjucks' own (`nl2br`, `dump`, `truthy`…) would render where Jinja2 refuses
    Object.assign(environment, { filters: {}, tests: {} })
    for (const [name, filter] of Object.entries(jinjaFilters)) environment.addFilter(name, filter)
    environment.addFilter(TRUTH_FILTER, Python.truthy)
    environment.addFilter(ITERATE_FILTER, Python.iterate)
    environment.addFilter(TEMPLATE_FILTER, (names: unknown) => {
      if (!Array.isArray(names)) return names
      const found = names.find((name) => {
        const file = templateFile(root, Python.pythonStr(name))
        return file !== null && readTemplate(file) !== null
      })
      return found ?? names.at(-1)
    })
    const tests = environment as unknown as { addTest(name: string, test: (...args: ReadonlyArray<unknown>) => boolean): void }
    for (const [name, test] of Object.entries(jinjaTests)) tests.addTest(name, test)
    for (const [name, value] of Object.entries({ ...jinjaGlobals, ...gettextGlobals, ...options.globals })) {
      environment.addGlobal(name, value)
    }
    const subject = kind === "subject" && options.checkSubjectValue !== undefined ? subjectHelpers(options.checkSubjectValue) : {}
    const skeleton = kind === "skeleton" ? skeletonHelpers(currentRecorder) : {}
    Object.assign(environment, { jinja: { ...runtimeHelpers, ...subject, ...skeleton, catalog } })
    if (kind === "skeleton") {
      const guardedEnvironment = environment as unknown as Record<"filters" | "tests", Record<string, (...args: Array<unknown>) => unknown>>
      for (const table of ["filters", "tests"] as const) {
        for (const [name, f] of Object.entries(guardedEnvironment[table])) {
          if (name !== TRUTH_FILTER) guardedEnvironment[table][name] = guarded(f)
        }
      }
    }
    return environment
  }

  // one pair of environments per catalog; catalogs are loaded once per language, so these are too
  const environments = new WeakMap<Catalog, Record<TemplateKind, nunjucks.Environment>>()
  const environmentFor = (kind: TemplateKind, catalog: Catalog): nunjucks.Environment => {
    let pair = environments.get(catalog)
    if (pair === undefined) {
      pair = {
        text: makeEnvironment("text", catalog),
        subject: makeEnvironment("subject", catalog),
        html: makeEnvironment("html", catalog),
        skeleton: makeEnvironment("skeleton", catalog)
      }
      environments.set(catalog, pair)
    }
    return pair[kind]
  }

  const render = (name: string, catalog: Catalog, context: Readonly<Record<string, unknown>>): string => {
    const environment = environmentFor(kindOf(name), catalog)
    try {
      return environment.getTemplate(name).render(context)
    } catch (error) {
      throw unwrap(error, name)
    }
  }

  // the skeleton render under way: renders are synchronous, so there is at most one, and it ends in `renderSkeleton`
  let recorder: SkeletonRecorder | null = null
  const currentRecorder = (): SkeletonRecorder => {
    if (recorder === null) throw new SkeletonUnusable("no skeleton render is under way")
    return recorder
  }

  const renderSkeleton = (name: string, catalog: Catalog, context: Readonly<Record<string, unknown>>): Skeleton | null => {
    const environment = environmentFor("skeleton", catalog)
    const recording = new SkeletonRecorder()
    recorder = recording
    try {
      return { html: environment.getTemplate(name).render(context), values: recording.values }
    } catch {
      return null
    } finally {
      recorder = null
    }
  }

  const check = (name: string): ReadonlyArray<JinjaRenderError> => {
    const kind = compileKindOf(kindOf(name))
    const environment = environmentFor(kind, checkingCatalog) as unknown as {
      readonly filters: Record<string, unknown>
      readonly tests: Record<string, unknown>
    }
    const problems: Array<JinjaRenderError> = []
    const seen = new Set<string>()
    const visit = (template: string): void => {
      if (seen.has(template)) return
      seen.add(template)
      const file = templateFile(root, template)
      const text = file === null ? null : readTemplate(file)
      if (text === null) return
      let ast: Node & { findAll(type: unknown): ReadonlyArray<Node> }
      try {
        const source = jinjaSource(text, whitespace[kind])
        compileTemplate(source, template, extensions)
        ast = parseTemplate(source, extensions, {}) as typeof ast
      } catch (error) {
        problems.push(syntaxError(error, template))
        return
      }
      for (const node of [...ast.findAll(nodes.Filter)]) {
        const filter = (node["name"] as Node)["value"] as string
        if (!Object.hasOwn(environment.filters, filter)) {
          problems.push(new JinjaRenderError(`no filter named '${filter}'`, template, node.lineno + 1, "TemplateAssertionError"))
        }
      }
      for (const node of ast.findAll(nodes.Is)) {
        const right = node["right"] as Node
        const test = ((right["name"] as Node | undefined)?.["value"] ?? right["value"]) as string
        if (!Object.hasOwn(environment.tests, test)) {
          problems.push(new JinjaRenderError(`no test named '${test}'`, template, node.lineno + 1, "TemplateAssertionError"))
        }
      }
      for (const node of [...ast.findAll(nodes.Extends), ...ast.findAll(nodes.Include), ...ast.findAll(nodes.Import), ...ast.findAll(nodes.FromImport)]) {
        const target = node["template"] as Node
        if (target.typename !== "Literal") continue
        const referenced = String(target["value"])
        const referencedFile = templateFile(root, referenced)
        if (referencedFile === null || readTemplate(referencedFile) === null) {
          if (node["ignoreMissing"] === true) continue
          problems.push(new JinjaRenderError(`template not found: ${referenced}`, template, node.lineno + 1, "TemplateNotFound"))
        } else {
          visit(referenced)
        }
      }
    }
    const file = templateFile(root, name)
    if (file === null || readTemplate(file) === null) {
      return [new JinjaRenderError(`template not found: ${name}`, name, null, "TemplateNotFound")]
    }
    visit(name)
    return problems
  }

  return { render, check, renderSkeleton }
}
