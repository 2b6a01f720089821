/**
 * What a compiled template calls while it renders: Jinja2's variable lookups, `self`, imports and macros with
 * Jinja2's calling rules, and the helpers that record a skeleton (for reused CSS inlining) or check a subject.
 */
import nunjucks from "nunjucks"
import { type Frame as FrameType, Frame } from "./nunjucksInternals.ts"
import * as Python from "./python.ts"
import { guarded, SkeletonRecorder } from "./skeleton.ts"

/** A template failed to compile or render: where (template name and line, when known) and why. */
export class JinjaRenderError extends Error {
  /** the template the problem is in, as named under the templates directory */
  readonly template: string
  /** 1-based */
  readonly line: number | null
  /** the Python exception Jinja2 would raise (`UndefinedError`, `TypeError`, `TemplateSyntaxError`, …) */
  readonly pythonType: string

  constructor(message: string, template: string, line: number | null, pythonType: string) {
    super(message)
    this.name = "JinjaRenderError"
    this.template = template
    this.line = line
    this.pythonType = pythonType
  }
}

/** Any error met while rendering, as a `JinjaRenderError` located in the innermost template that reached it. */
export const locate = (error: unknown, lineno: number, _colno: number, template: string): JinjaRenderError => {
  if (error instanceof JinjaRenderError) return error
  if (error instanceof Python.PythonError) return new JinjaRenderError(error.message, template, lineno + 1, error.pythonType)
  const message = error instanceof Error ? error.message : String(error)
  return new JinjaRenderError(message, template, lineno + 1, "TemplateError")
}

export type RenderFunction = (env: unknown, context: RuntimeContext, frame: FrameType, runtime: unknown, cb: (error: unknown, output?: string) => void) => void

export interface RuntimeContext {
  getVariables(): Record<string, unknown>
  getExported(): Record<string, unknown>
  getBlock(name: string): RenderFunction
  readonly blocks: Record<string, unknown>
  readonly env: { readonly globals: Record<string, unknown>; readonly opts: { readonly autoescape: boolean } }
}

export interface LoadedTemplate {
  compile(): void
  readonly blocks: Record<string, unknown>
  readonly env: nunjucks.Environment
  rootRenderFunc(
    env: nunjucks.Environment,
    context: RuntimeContext,
    frame: FrameType,
    runtime: unknown,
    cb: (error: unknown, output?: string) => void
  ): void
}

/** Jinja2's `self`: each block of the template being rendered, callable. */
export const blocksOf = (context: RuntimeContext, frame: FrameType): Record<string, () => unknown> =>
  Object.fromEntries(Object.keys(context.blocks).map((name) => [name, () => {
    let rendered = ""
    context.getBlock(name)(context.env, context, frame, nunjucks.runtime, (error: unknown, output?: string) => {
      if (error) throw error
      rendered = output ?? ""
    })
    return runtimeHelpers.captured(rendered, context.env.opts.autoescape)
  }]))

/** Names a template reaches: the context, then the environment's globals (own properties only), as Jinja2. */
export const lookup = (context: RuntimeContext, frame: FrameType, name: string): unknown => {
  const local = frame.lookup(name)
  if (local !== undefined) return local
  const variables = context.getVariables()
  if (Object.hasOwn(variables, name)) return variables[name]
  const globals = context.env.globals
  if (Object.hasOwn(globals, name)) return globals[name]
  return name === "self" ? blocksOf(context, frame) : undefined
}

/** `{% import %}`: the template rendered on its own (with the importer's variables only `with context`). */
export const importModule = (
  importer: RuntimeContext,
  template: LoadedTemplate,
  variables: Record<string, unknown> | null,
  parentFrame: FrameType | null,
  cb: (error: unknown, module?: Python.TemplateModule) => void
): void => {
  try {
    template.compile()
    const frame = parentFrame === null ? new Frame() : parentFrame.push()
    frame.topLevel = true
    // nunjucks does not export its Context class; the importer's context is one
    const ContextClass = importer.constructor as new(variables: object, blocks: object, env: object) => RuntimeContext
    const context = new ContextClass(variables ?? {}, template.blocks, template.env)
    template.rootRenderFunc(template.env, context, frame, nunjucks.runtime, (error, body) => {
      if (error) cb(error)
      else cb(null, new Python.TemplateModule(body ?? "", context.getExported()))
    })
  } catch (error) {
    cb(error)
  }
}

/** A macro argument the call did not give, until its default replaces it. */
export const missing = Symbol("missing argument")

export const isKeywordArguments = (value: unknown): value is Record<string, unknown> =>
  Python.isDict(value) && Object.hasOwn(value, "__keywords")

/** A macro called as Jinja2 calls one (see `_compileMacro` in `compiler.ts`). */
export const makeMacro = (
  name: string,
  names: ReadonlyArray<string>,
  firstDefault: number,
  catchVarargs: boolean,
  catchKwargs: boolean,
  body: (...values: ReadonlyArray<unknown>) => unknown
) =>
  function(this: unknown, ...call: ReadonlyArray<unknown>): unknown {
    const last = call.at(-1)
    const positional = isKeywordArguments(last) ? call.slice(0, -1) : call
    const { __keywords: _, caller, ...keywords } = isKeywordArguments(last) ? last : {}
    if (positional.length > names.length && !catchVarargs) {
      throw new Python.PythonError("TypeError", `macro '${name}' takes not more than ${names.length} argument(s)`)
    }
    const values = names.map((argument, index) => {
      if (index < positional.length) {
        if (Object.hasOwn(keywords, argument)) {
          throw new Python.PythonError("TypeError", `macro '${name}' got multiple values for argument '${argument}'`)
        }
        return positional[index]
      }
      if (Object.hasOwn(keywords, argument)) {
        const value = keywords[argument]
        delete keywords[argument]
        return value
      }
      return index >= firstDefault ? missing : undefined
    })
    const extra = Object.keys(keywords)
    if (extra.length > 0 && !catchKwargs) {
      throw new Python.PythonError("TypeError", `macro '${name}' takes no keyword argument '${extra[0]}'`)
    }
    return body.call(this, ...values, Python.tuple(positional.slice(names.length)), keywords, caller)
  }

/** `loop.changed(value)`: true on the first call and whenever the value differs from the previous call's. */
export const changeTracker = () => {
  let previous: ReadonlyArray<unknown> | typeof missing = missing
  return (...values: ReadonlyArray<unknown>): boolean => {
    const changed = previous === missing || !Python.equals(previous, values)
    previous = values
    return changed
  }
}

/** What the compiled templates call through `env.jinja` (see `compiler.ts`). */
export const runtimeHelpers = {
  lookup,
  getAttribute: Python.getAttribute,
  output: Python.output,
  truthy: Python.truthy,
  compare: Python.compare,
  contains: Python.contains,
  add: Python.add,
  concat: Python.concat,
  arithmetic: Python.arithmetic,
  unary: Python.unary,
  cycle: (index: number) => (...values: ReadonlyArray<unknown>) => values[index % values.length],
  changeTracker,
  makeMacro,
  missing,
  tuple: Python.tuple,
  iterate: Python.iterate,
  slice: Python.slice,
  unpack: Python.unpack,
  setAttribute: Python.setAttribute,
  captured: (text: string, autoescape: boolean) => autoescape ? Python.markup(text) : text,
  /** a `{% filter %}` block's result: written as it is */
  written: Python.pythonStr,
  importModule,
  locate,
  /** called on every value written into the output (see `checkSubjectValue`) */
  checkValue: (_value: unknown): void => undefined,
  /** a translation's variables, as its message formats them (the skeleton environment marks them) */
  formatValues: (_message: string, variables: Record<string, unknown>): Record<string, unknown> => variables
}

/**
 * The skeleton environment's helpers: plain values written as markers into the recorder `current()` gives, and
 * everything that would compute with marked text refusing to (`SkeletonUnusable`).
 */
export const skeletonHelpers = (current: () => SkeletonRecorder): Partial<typeof runtimeHelpers> => ({
  output: (value, autoescape) => current().output(value, autoescape),
  formatValues: (message, variables) => current().formatValues(message, variables),
  getAttribute: guarded(Python.getAttribute),
  compare: guarded(Python.compare),
  contains: guarded(Python.contains),
  arithmetic: guarded(Python.arithmetic),
  unary: guarded(Python.unary),
  iterate: guarded(Python.iterate),
  slice: guarded(Python.slice),
  unpack: guarded(Python.unpack),
  changeTracker: () => guarded(changeTracker())
})

/** The subject environment's helpers: every value written is checked before it is. */
export const subjectHelpers = (check: (text: string) => string | null): Partial<typeof runtimeHelpers> => {
  const checkValue = (value: unknown): void => {
    const problem = check(Python.pythonStr(value))
    if (problem !== null) throw new Python.PythonError("ValueRefused", problem)
  }
  return {
    checkValue,
    output: (value, autoescape) => {
      checkValue(value)
      return Python.output(value, autoescape)
    }
  }
}
