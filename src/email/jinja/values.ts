/** Python's value types as templates meet them: Markup, tuples, namespaces, errors, and type names. */
import nunjucks from "nunjucks"

const { SafeString } = nunjucks.runtime

/** Markup: text already safe for HTML (nunjucks' `SafeString`). */
export type Markup = InstanceType<typeof SafeString>

export const isMarkup = (value: unknown): value is Markup => value instanceof SafeString

export const markup = (text: string): Markup => new SafeString(text)

/** An error Jinja2 would raise while rendering, named by its Python class (`UndefinedError`, `TypeError`, …). */
export class PythonError extends Error {
  readonly pythonType: string

  constructor(pythonType: string, message: string) {
    super(message)
    this.name = pythonType
    this.pythonType = pythonType
  }
}

export const typeError = (message: string) => new PythonError("TypeError", message)

export const isDict = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

export const isText = (value: unknown): value is string | Markup => typeof value === "string" || isMarkup(value)

export const isNumeric = (value: unknown): value is number | boolean => typeof value === "number" || typeof value === "boolean"

/** A Python tuple (macro `varargs`, `(a, b)` in a template): a list that prints with parentheses. */
export class PyTuple extends Array<unknown> {
  static override get [Symbol.species]() {
    return Array
  }
}

export const tuple = (items: ReadonlyArray<unknown>): PyTuple => Object.setPrototypeOf([...items], PyTuple.prototype) as PyTuple

export const fieldNames = new WeakMap<PyTuple, ReadonlyArray<string>>()

/** A named tuple (`groupby`'s `(grouper, list)`): its items also read by name. */
export const namedTuple = (names: ReadonlyArray<string>, items: ReadonlyArray<unknown>): PyTuple => {
  const named = tuple(items)
  fieldNames.set(named, names)
  return named
}

/** Jinja2's `namespace(...)`: the one object `{% set ns.attr = value %}` may change, from any scope. */
export class Namespace {
  readonly attributes: Record<string, unknown>

  constructor(attributes: Record<string, unknown>) {
    this.attributes = attributes
  }
}

/** Python's name of a value's type, for error messages. */
export const pythonTypeName = (value: unknown): string => {
  if (value === undefined) return "Undefined"
  if (value === null) return "NoneType"
  if (typeof value === "boolean") return "bool"
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float"
  if (isMarkup(value)) return "Markup"
  if (typeof value === "string") return "str"
  if (value instanceof PyTuple) return "tuple"
  if (Array.isArray(value)) return "list"
  if (isDict(value)) return "dict"
  if (typeof value === "function") return "function"
  return "object"
}

/** Python's indexing: negative indexes count from the end; out of range is Undefined (Jinja2's getitem). */
export const at = <A>(sequence: ArrayLike<A>, index: number): A | undefined => {
  if (!Number.isInteger(index)) return undefined
  const position = index < 0 ? sequence.length + index : index
  return position >= 0 && position < sequence.length ? sequence[position] : undefined
}
