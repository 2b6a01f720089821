/**
 * Python's view of template values, as Jinja2 sees them when it renders Zulip's templates: what a value prints as,
 * whether it is true, how `==`, `+`, `%` and attribute lookups behave. Context values arrive as JSON, so the values
 * met here are `undefined` (Jinja2's `Undefined`), `null` (None), booleans, numbers, strings, arrays (lists), plain
 * objects (dicts) and, from the engine, `SafeString` (Markup), macros and imported template modules.
 *
 * Attribute lookups read a dict's own keys and a short list of Python methods, never JavaScript's prototype chain:
 * context values are data, and a template cannot reach `constructor` or `__proto__` through them.
 */
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

const typeError = (message: string) => new PythonError("TypeError", message)

export const isDict = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

const isText = (value: unknown): value is string | Markup => typeof value === "string" || isMarkup(value)

const isNumeric = (value: unknown): value is number | boolean => typeof value === "number" || typeof value === "boolean"

/** A Python tuple (macro `varargs`, `(a, b)` in a template): a list that prints with parentheses. */
export class PyTuple extends Array<unknown> {
  static override get [Symbol.species]() {
    return Array
  }
}

export const tuple = (items: ReadonlyArray<unknown>): PyTuple => Object.setPrototypeOf([...items], PyTuple.prototype) as PyTuple

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

// ---- printing ---------------------------------------------------------------------------------------------------

/** Python's `repr()` of a float, from JavaScript's shortest round-trip digits. */
const floatRepr = (value: number): string => {
  if (Number.isNaN(value)) return "nan"
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf"
  const [mantissa, exponentText] = value.toExponential().split("e") as [string, string]
  const exponent = Number(exponentText)
  if (exponent < -4 || exponent >= 16) {
    return `${mantissa}e${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`
  }
  const fixed = String(value)
  return fixed.includes(".") ? fixed : `${fixed}.0`
}

/**
 * Python's `str()` of a number. JSON does not say whether `5` was an int or a float; integral values below 10^16 print
 * as ints (what Zulip's producers send), anything else as Python prints a float.
 */
const numberText = (value: number): string =>
  Number.isInteger(value) && Math.abs(value) < 1e16 ? String(value) : floatRepr(value)

/** Python's `repr()` of a string: single quotes unless the text has one and no double quote. */
const stringRepr = (text: string): string => {
  const quote = text.includes("'") && !text.includes("\"") ? "\"" : "'"
  let body = ""
  for (const character of text) {
    const code = character.codePointAt(0)!
    if (character === "\\") body += "\\\\"
    else if (character === quote) body += `\\${quote}`
    else if (character === "\n") body += "\\n"
    else if (character === "\r") body += "\\r"
    else if (character === "\t") body += "\\t"
    else if (code < 0x20 || code === 0x7f) body += `\\x${code.toString(16).padStart(2, "0")}`
    else body += character
  }
  return `${quote}${body}${quote}`
}

/** Python's `repr()`: how a value prints inside a printed list or dict. */
export const pythonRepr = (value: unknown): string => {
  if (isMarkup(value)) return `Markup(${stringRepr(value.toString())})`
  if (typeof value === "string") return stringRepr(value)
  return pythonStr(value)
}

/** Python's `str()`: what `{{ value }}` prints (before escaping). `Undefined` prints as nothing. */
export const pythonStr = (value: unknown): string => {
  switch (typeof value) {
    case "string":
      return value
    case "undefined":
      return ""
    case "boolean":
      return value ? "True" : "False"
    case "number":
      return numberText(value)
  }
  if (value === null) return "None"
  if (isMarkup(value)) return value.toString()
  if (value instanceof PyTuple) return value.length === 1 ? `(${pythonRepr(value[0])},)` : `(${value.map(pythonRepr).join(", ")})`
  if (Array.isArray(value)) return `[${value.map(pythonRepr).join(", ")}]`
  if (isDict(value)) {
    return `{${Object.entries(value).map(([key, item]) => `${stringRepr(key)}: ${pythonRepr(item)}`).join(", ")}}`
  }
  if (value instanceof Namespace) return `<Namespace ${pythonStr(value.attributes)}>`
  return String(value)
}

const htmlEscapes: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&#34;", "'": "&#39;" }

/** markupsafe's `escape()` on text: `& < > " '`. */
export const escapeText = (text: string): string => text.replace(/[&<>"']/g, (character) => htmlEscapes[character]!)

/** markupsafe's `escape()`: Markup stays as it is, anything else is printed and escaped. */
export const escapeHtml = (value: unknown): Markup => isMarkup(value) ? value : markup(escapeText(pythonStr(value)))

/** What `{{ value }}` writes: escaped when the environment autoescapes, unless it is Markup. */
export const output = (value: unknown, autoescape: boolean): string => {
  if (typeof value === "string") return autoescape ? escapeText(value) : value
  if (isMarkup(value)) return value.toString()
  const text = pythonStr(value)
  return autoescape ? escapeText(text) : text
}

// ---- truth and comparison -----------------------------------------------------------------------------------------

/** Python's `bool()`: empty strings, lists and dicts, zero, None and Undefined are false. */
export const truthy = (value: unknown): boolean => {
  switch (typeof value) {
    case "boolean":
      return value
    case "string":
      return value.length > 0
    case "number":
      return value !== 0
    case "undefined":
      return false
  }
  if (value === null) return false
  if (Array.isArray(value)) return value.length > 0
  if (isMarkup(value)) return value.length > 0
  if (isDict(value)) return Object.keys(value).length > 0
  return true
}

/** Python's `==`: by value for lists and dicts, `1 == 1.0 == True`, and Undefined equal only to Undefined. */
export const equals = (left: unknown, right: unknown): boolean => {
  if (left === right) return true
  if (isNumeric(left) && isNumeric(right)) return Number(left) === Number(right)
  if (isText(left) && isText(right)) return left.toString() === right.toString()
  if (Array.isArray(left) && Array.isArray(right)) {
    return (left instanceof PyTuple) === (right instanceof PyTuple) && left.length === right.length &&
      left.every((item, index) => equals(item, right[index]))
  }
  if (isDict(left) && isDict(right)) {
    const keys = Object.keys(left)
    return keys.length === Object.keys(right).length &&
      keys.every((key) => Object.hasOwn(right, key) && equals(left[key], right[key]))
  }
  return false
}

const undefinedError = (what: string) => new PythonError("UndefinedError", `'${what}' is undefined`)

const requireDefined = (value: unknown, what: string): void => {
  if (value === undefined) throw undefinedError(what)
}

/** Python's ordering (`<`, `<=`, `>`, `>=`): numbers with numbers, strings with strings, lists item by item. */
const order = (left: unknown, right: unknown, operator: string): number => {
  if (isNumeric(left) && isNumeric(right)) return Number(left) - Number(right)
  if (isText(left) && isText(right)) {
    const [a, b] = [left.toString(), right.toString()]
    return a < b ? -1 : a > b ? 1 : 0
  }
  if (Array.isArray(left) && Array.isArray(right)) {
    for (let index = 0; index < Math.min(left.length, right.length); index++) {
      if (!equals(left[index], right[index])) return order(left[index], right[index], operator)
    }
    return left.length - right.length
  }
  if (left === undefined || right === undefined) throw new PythonError("UndefinedError", "an undefined value cannot be compared")
  throw typeError(`'${operator}' not supported between instances of '${pythonTypeName(left)}' and '${pythonTypeName(right)}'`)
}

/** One comparison of a (possibly chained) `a < b <= c`. */
export const compare = (left: unknown, operator: string, right: unknown): boolean => {
  switch (operator) {
    case "==":
    case "===":
      return equals(left, right)
    case "!=":
    case "!==":
      return !equals(left, right)
    case "<":
      return order(left, right, operator) < 0
    case "<=":
      return order(left, right, operator) <= 0
    case ">":
      return order(left, right, operator) > 0
    case ">=":
      return order(left, right, operator) >= 0
  }
  throw typeError(`unknown comparison ${operator}`)
}

/** Python's `in`: a substring, a list item (by `==`) or a dict key; nothing is in Undefined. */
export const contains = (container: unknown, item: unknown): boolean => {
  if (container === undefined) return false
  if (isText(container)) {
    if (!isText(item)) throw typeError(`'in <string>' requires string as left operand, not ${pythonTypeName(item)}`)
    return container.toString().includes(item.toString())
  }
  if (Array.isArray(container)) return container.some((element) => equals(element, item))
  if (isDict(container)) return typeof item === "string" && Object.hasOwn(container, item)
  throw typeError(`argument of type '${pythonTypeName(container)}' is not iterable`)
}

// ---- arithmetic -----------------------------------------------------------------------------------------------------

const unsupported = (operator: string, left: unknown, right: unknown) =>
  typeError(`unsupported operand type(s) for ${operator}: '${pythonTypeName(left)}' and '${pythonTypeName(right)}'`)

const numberOperands = (operator: string, left: unknown, right: unknown): readonly [number, number] => {
  requireDefined(left, "left operand")
  requireDefined(right, "right operand")
  if (!isNumeric(left) || !isNumeric(right)) throw unsupported(operator, left, right)
  return [Number(left), Number(right)]
}

const zeroDivision = (divisor: number, message: string) => {
  if (divisor === 0) throw new PythonError("ZeroDivisionError", message)
}

/** Python's `+`. Markup joined with text escapes the text (markupsafe's `__add__` and `__radd__`). */
export const add = (left: unknown, right: unknown): unknown => {
  requireDefined(left, "left operand")
  requireDefined(right, "right operand")
  if (isText(left) && isText(right)) {
    if (isMarkup(left) || isMarkup(right)) return markup(escapeHtml(left).toString() + escapeHtml(right).toString())
    return left.toString() + right.toString()
  }
  if (Array.isArray(left) && Array.isArray(right)) return [...left, ...right]
  const [a, b] = numberOperands("+", left, right)
  return a + b
}

/** Jinja2's `~`: both sides as text (Undefined as nothing); Markup on either side keeps the result safe. */
export const concat = (left: unknown, right: unknown, autoescape: boolean): unknown =>
  autoescape && (isMarkup(left) || isMarkup(right))
    ? markup(escapeHtml(left ?? "").toString() + escapeHtml(right ?? "").toString())
    : pythonStr(left) + pythonStr(right)

const repeat = (sequence: unknown, times: number): unknown => {
  if (!Number.isInteger(times)) throw typeError(`can't multiply sequence by non-int of type 'float'`)
  if (isMarkup(sequence)) return markup(sequence.toString().repeat(Math.max(0, times)))
  if (isText(sequence)) return sequence.toString().repeat(Math.max(0, times))
  return Array.from({ length: Math.max(0, times) }, () => sequence as ReadonlyArray<unknown>).flat()
}

/** Python's binary operators other than `+`, including `str * int` and `str % values`. */
export const arithmetic = (operator: string, left: unknown, right: unknown): unknown => {
  if (operator === "*") {
    if ((isText(left) || Array.isArray(left)) && typeof right === "number") return repeat(left, right)
    if ((isText(right) || Array.isArray(right)) && typeof left === "number") return repeat(right, left)
  }
  if (operator === "%" && isText(left)) {
    requireDefined(right, "right operand")
    // Markup's `%` escapes the values it formats
    return isMarkup(left) ? markup(percentFormat(left.toString(), right, true)) : percentFormat(left.toString(), right, false)
  }
  const [a, b] = numberOperands(operator, left, right)
  switch (operator) {
    case "-":
      return a - b
    case "*":
      return a * b
    case "/":
      zeroDivision(b, "division by zero")
      return a / b
    case "//":
      zeroDivision(b, "integer division or modulo by zero")
      return Math.floor(a / b)
    case "%":
      zeroDivision(b, "integer modulo by zero")
      return a - b * Math.floor(a / b)
    case "**":
      return a ** b
  }
  throw typeError(`unknown operator ${operator}`)
}

/** Unary `-` and `+`. */
export const unary = (operator: "-" | "+", value: unknown): number => {
  requireDefined(value, "operand")
  if (!isNumeric(value)) throw typeError(`bad operand type for unary ${operator}: '${pythonTypeName(value)}'`)
  return operator === "-" ? -Number(value) : Number(value)
}

// ---- printf-style formatting ----------------------------------------------------------------------------------------

const CONVERSION = /%(?:\(([^)]*)\))?([#0\- +]*)(\*|\d+)?(?:\.(\*|\d*))?[hlL]?([diouxXeEfFgGcrsa%])?/g

const integerOf = (value: unknown, conversion: string): number => {
  if (isNumeric(value)) return Math.trunc(Number(value))
  throw typeError(`%${conversion} format: a real number is required, not ${pythonTypeName(value)}`)
}

const floatOf = (value: unknown, conversion: string): number => {
  if (isNumeric(value)) return Number(value)
  throw typeError(`must be real number, not ${pythonTypeName(value)}`.replace("must", `%${conversion} format: must`))
}

/** Python's `%e`: at least two exponent digits. */
const exponential = (value: number, precision: number): string => {
  const [mantissa, exponent] = value.toExponential(precision).split("e") as [string, string]
  const magnitude = exponent.replace(/^[+-]/, "")
  return `${mantissa}e${exponent.startsWith("-") ? "-" : "+"}${magnitude.padStart(2, "0")}`
}

/** Python's `%g`: the shorter of `%e` and `%f` at `precision` significant digits, trailing zeros dropped. */
const general = (value: number, precision: number, alternate: boolean): string => {
  const digits = precision === 0 ? 1 : precision
  if (value === 0) return alternate ? (0).toFixed(digits - 1) : "0"
  const exponent = Math.floor(Math.log10(Math.abs(Number(value.toPrecision(digits)))))
  const text = exponent < -4 || exponent >= digits
    ? exponential(value, digits - 1)
    : value.toFixed(Math.max(0, digits - 1 - exponent))
  if (alternate) return text
  return text.includes("e")
    ? text.replace(/\.?0+e/, "e")
    : text.includes(".") ? text.replace(/\.?0+$/, "") : text
}

const convert = (value: unknown, conversion: string, flags: string, precision: number | null): string => {
  switch (conversion) {
    case "s":
      return precision === null ? pythonStr(value) : pythonStr(value).slice(0, precision)
    case "r":
    case "a":
      return precision === null ? pythonRepr(value) : pythonRepr(value).slice(0, precision)
    case "d":
    case "i":
    case "u":
      return String(integerOf(value, conversion))
    case "o":
      return (flags.includes("#") ? "0o" : "") + integerOf(value, conversion).toString(8)
    case "x":
      return (flags.includes("#") ? "0x" : "") + integerOf(value, conversion).toString(16)
    case "X":
      return (flags.includes("#") ? "0X" : "") + integerOf(value, conversion).toString(16).toUpperCase()
    case "f":
    case "F":
      return floatOf(value, conversion).toFixed(precision ?? 6)
    case "e":
      return exponential(floatOf(value, conversion), precision ?? 6)
    case "E":
      return exponential(floatOf(value, conversion), precision ?? 6).toUpperCase()
    case "g":
      return general(floatOf(value, conversion), precision ?? 6, flags.includes("#"))
    case "G":
      return general(floatOf(value, conversion), precision ?? 6, flags.includes("#")).toUpperCase()
    case "c":
      return typeof value === "number" ? String.fromCodePoint(value) : pythonStr(value)
  }
  throw new PythonError("ValueError", `unsupported format character '${conversion}'`)
}

const pad = (text: string, flags: string, width: number, numeric: boolean): string => {
  const signed = numeric && (flags.includes("+") || flags.includes(" ")) && !text.startsWith("-")
    ? (flags.includes("+") ? "+" : " ") + text
    : text
  if (signed.length >= width) return signed
  if (flags.includes("-")) return signed.padEnd(width)
  if (flags.includes("0") && numeric) {
    const sign = /^[+\- ]/.test(signed) ? signed[0]! : ""
    return sign + signed.slice(sign.length).padStart(width - sign.length, "0")
  }
  return signed.padStart(width)
}

/**
 * Python's `format % values` where `values` is a dict (or a single value), as gettext's newstyle `rv % variables`
 * and Jinja2's `%` operator do. With `escape`, the format is Markup and each value is escaped as markupsafe does.
 */
export const percentFormat = (format: string, values: unknown, escape: boolean): string => {
  let positional = 0
  const text = format.replace(CONVERSION, (whole, key: string | undefined, flags: string, width: string | undefined, precision: string | undefined, conversion: string | undefined) => {
    if (conversion === undefined) throw new PythonError("ValueError", "incomplete format")
    if (conversion === "%") return "%"
    let value: unknown
    if (key !== undefined) {
      if (!isDict(values)) throw typeError("format requires a mapping")
      if (!Object.hasOwn(values, key)) throw new PythonError("KeyError", stringRepr(key))
      value = values[key]
    } else {
      const all = Array.isArray(values) ? values : [values]
      if (positional >= all.length) throw typeError("not enough arguments for format string")
      value = all[positional++]
    }
    if (width === "*" || precision === "*") throw typeError(`* wants int in ${whole}`)
    const numeric = "diouxXeEfFgG".includes(conversion)
    let converted = convert(value, conversion, flags, precision === undefined ? null : Number(precision || 0))
    if (escape && !numeric) converted = isMarkup(value) && conversion === "s" ? converted : escapeText(converted)
    return pad(converted, flags, Number(width ?? 0), numeric)
  })
  return text
}

// ---- attribute lookup -----------------------------------------------------------------------------------------------

const bound = <A extends ReadonlyArray<unknown>>(method: (...args: A) => unknown) => method

const withoutKeywords = (args: ReadonlyArray<unknown>): ReadonlyArray<unknown> => {
  const last = args.at(-1)
  return isDict(last) && Object.hasOwn(last, "__keywords") ? args.slice(0, -1) : args
}

/** Python's `str.strip(characters)` (whitespace without `characters`), at the start and/or the end. */
export const stripCharacters = (text: string, characters: unknown, start: boolean, end: boolean): string => {
  if (characters === undefined || characters === null) {
    return start && end ? text.trim() : start ? text.trimStart() : text.trimEnd()
  }
  const set = new Set(pythonStr(characters))
  let [from, to] = [0, text.length]
  while (start && from < to && set.has(text[from]!)) from++
  while (end && to > from && set.has(text[to - 1]!)) to--
  return text.slice(from, to)
}

/** Python's `str.title()`: the first letter of each run of letters upper-cased, the rest lower-cased. */
export const titleCase = (text: string): string =>
  text.replace(/\p{L}+/gu, (word) => word[0]!.toUpperCase() + word.slice(1).toLowerCase())

/** `str.split()`: on runs of whitespace without a separator, else on the separator. */
const split = (text: string, separator: unknown, limit: unknown): ReadonlyArray<string> => {
  const max = typeof limit === "number" && limit >= 0 ? limit : Infinity
  if (separator === undefined || separator === null) {
    const parts: Array<string> = []
    let rest = text.trimStart()
    while (rest.length > 0 && parts.length < max) {
      const match = /\s+/.exec(rest)
      if (match === null) break
      parts.push(rest.slice(0, match.index))
      rest = rest.slice(match.index + match[0].length)
    }
    if (rest.length > 0) parts.push(parts.length < max ? rest : rest.trimEnd())
    return parts
  }
  const parts = pythonStr(separator) === "" ? null : text.split(pythonStr(separator))
  if (parts === null) throw new PythonError("ValueError", "empty separator")
  return max === Infinity || parts.length <= max + 1 ? parts : [...parts.slice(0, max), parts.slice(max).join(pythonStr(separator))]
}

const stringMethods: Record<string, (text: string) => (...args: ReadonlyArray<unknown>) => unknown> = {
  upper: (text) => bound(() => text.toUpperCase()),
  lower: (text) => bound(() => text.toLowerCase()),
  title: (text) => bound(() => titleCase(text)),
  capitalize: (text) => bound(() => text.charAt(0).toUpperCase() + text.slice(1).toLowerCase()),
  strip: (text) => bound((characters?: unknown) => stripCharacters(text, characters, true, true)),
  lstrip: (text) => bound((characters?: unknown) => stripCharacters(text, characters, true, false)),
  rstrip: (text) => bound((characters?: unknown) => stripCharacters(text, characters, false, true)),
  startswith: (text) => bound((prefix: unknown) => text.startsWith(pythonStr(prefix))),
  endswith: (text) => bound((suffix: unknown) => text.endsWith(pythonStr(suffix))),
  replace: (text) => bound((old: unknown, replacement: unknown) => text.replaceAll(pythonStr(old), pythonStr(replacement))),
  split: (text) => bound((separator?: unknown, limit?: unknown) => split(text, separator, limit)),
  join: (text) => bound((items: unknown) => iterate(items).map(pythonStr).join(text)),
  find: (text) => bound((needle: unknown) => text.indexOf(pythonStr(needle))),
  count: (text) => bound((needle: unknown) => text.split(pythonStr(needle)).length - 1),
  isdigit: (text) => bound(() => /^\d+$/.test(text)),
  format: (text) => (...args) => formatMethod(text, withoutKeywords(args), args.at(-1))
}

/** `str.format()` with positional `{}`/`{0}` and named `{name}` fields (no format specs beyond plain text). */
const formatMethod = (text: string, args: ReadonlyArray<unknown>, last: unknown): string => {
  const named = isDict(last) && Object.hasOwn(last, "__keywords") ? last : {}
  let next = 0
  return text.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (whole, field: string | undefined) => {
    if (whole === "{{") return "{"
    if (whole === "}}") return "}"
    const name = field ?? ""
    if (name === "") return pythonStr(args[next++])
    if (/^\d+$/.test(name)) return pythonStr(args[Number(name)])
    if (!Object.hasOwn(named, name)) throw new PythonError("KeyError", stringRepr(name))
    return pythonStr(named[name])
  })
}

const dictMethods: Record<string, (dict: Record<string, unknown>) => (...args: ReadonlyArray<unknown>) => unknown> = {
  items: (dict) => bound(() => Object.entries(dict)),
  keys: (dict) => bound(() => Object.keys(dict)),
  values: (dict) => bound(() => Object.values(dict)),
  get: (dict) => bound((key: unknown, fallback: unknown = null) =>
    typeof key === "string" && Object.hasOwn(dict, key) ? dict[key] : fallback)
}

const listMethods: Record<string, (list: ReadonlyArray<unknown>) => (...args: ReadonlyArray<unknown>) => unknown> = {
  index: (list) => bound((item: unknown) => {
    const index = list.findIndex((element) => equals(element, item))
    if (index < 0) throw new PythonError("ValueError", `${pythonRepr(item)} is not in list`)
    return index
  }),
  count: (list) => bound((item: unknown) => list.filter((element) => equals(element, item)).length)
}

/** Python's indexing: negative indexes count from the end; out of range is Undefined (Jinja2's getitem). */
const at = <A>(sequence: ArrayLike<A>, index: number): A | undefined => {
  if (!Number.isInteger(index)) return undefined
  const position = index < 0 ? sequence.length + index : index
  return position >= 0 && position < sequence.length ? sequence[position] : undefined
}

/**
 * Jinja2's `obj.name` and `obj[key]` on context values: a dict's own key, then a dict method; a list or string
 * item by (negative) index; a string method; an imported template's macros. Anything else is Undefined, and an
 * attribute of Undefined is an error, as in Jinja2.
 */
export const getAttribute = (target: unknown, key: unknown, what: string): unknown => {
  if (target === undefined) throw undefinedError(what)
  if (target === null) return undefined
  if (typeof key === "number") {
    if (Array.isArray(target) || isText(target)) return at(Array.isArray(target) ? target : target.toString(), key)
    if (isDict(target)) return Object.hasOwn(target, String(key)) ? target[String(key)] : undefined
    return undefined
  }
  const name = pythonStr(key)
  if (target instanceof TemplateModule) return Object.hasOwn(target.exports, name) ? target.exports[name] : undefined
  if (target instanceof Namespace) return Object.hasOwn(target.attributes, name) ? target.attributes[name] : undefined
  if (isMarkup(target)) return Object.hasOwn(stringMethods, name) ? markupMethod(stringMethods[name]!(target.toString())) : undefined
  if (typeof target === "string") return Object.hasOwn(stringMethods, name) ? stringMethods[name]!(target) : undefined
  if (typeof target === "number") return name === "real" ? target : name === "imag" ? 0 : undefined
  if (Array.isArray(target)) {
    if (/^-?\d+$/.test(name)) return at(target, Number(name))
    return Object.hasOwn(listMethods, name) ? listMethods[name]!(target) : undefined
  }
  if (isDict(target)) {
    if (Object.hasOwn(target, name)) return target[name]
    return Object.hasOwn(dictMethods, name) ? dictMethods[name]!(target) : undefined
  }
  // the engine's own objects (loop, cycler, joiner, caller): their own members only
  if (typeof target === "object" && Object.hasOwn(target, name)) {
    const member = (target as Record<string, unknown>)[name]
    return typeof member === "function" ? member.bind(target) : member
  }
  return undefined
}

/** A string method called on Markup: its text arguments escaped, a text result Markup again (markupsafe). */
const markupMethod = (method: (...args: ReadonlyArray<unknown>) => unknown) => (...args: ReadonlyArray<unknown>) => {
  const result = method(...args.map((arg) => typeof arg === "string" ? escapeText(arg) : arg))
  return typeof result === "string" ? markup(result) : result
}

/** `{% set ns.attr = value %}`: only a namespace can be changed this way. */
export const setAttribute = (target: unknown, key: unknown, value: unknown): void => {
  if (!(target instanceof Namespace)) {
    throw new PythonError("TemplateRuntimeError", "cannot assign attribute on non-namespace object")
  }
  target.attributes[pythonStr(key)] = value
}

/** Python's `seq[start:stop:step]` on a list or string. */
export const slice = (target: unknown, start: unknown, stop: unknown, step: unknown): unknown => {
  requireDefined(target, "sliced value")
  const by = step === null || step === undefined ? 1 : Number(step)
  if (by === 0) throw new PythonError("ValueError", "slice step cannot be zero")
  const items = isText(target) ? Array.from(target.toString()) : Array.isArray(target) ? target : null
  if (items === null) throw typeError(`'${pythonTypeName(target)}' object is not subscriptable`)
  const length = items.length
  const bound = (value: unknown, fallback: number, low: number, high: number): number => {
    if (value === null || value === undefined) return fallback
    const index = Number(value)
    return index < 0 ? Math.max(index + length, low) : Math.min(index, high)
  }
  const [from, to] = by > 0
    ? [bound(start, 0, 0, length), bound(stop, length, 0, length)]
    : [bound(start, length - 1, -1, length - 1), bound(stop, -1, -1, length - 1)]
  const picked: Array<unknown> = []
  for (let index = from; by > 0 ? index < to : index > to; index += by) picked.push(items[index])
  if (isMarkup(target)) return markup(picked.join(""))
  if (typeof target === "string") return picked.join("")
  return target instanceof PyTuple ? tuple(picked) : picked
}

/** `a, b = value`: exactly `count` items. */
export const unpack = (value: unknown, count: number): ReadonlyArray<unknown> => {
  const items = iterate(value)
  if (items.length > count) throw new PythonError("ValueError", `too many values to unpack (expected ${count})`)
  if (items.length < count) throw new PythonError("ValueError", `not enough values to unpack (expected ${count}, got ${items.length})`)
  return items
}

/** What a `for` loop walks: a list, a string's characters, a dict's keys; nothing for Undefined. */
export const iterate = (value: unknown): Array<unknown> => {
  if (value === undefined) return []
  if (Array.isArray(value)) return value
  if (isText(value)) return Array.from(value.toString())
  if (isDict(value)) return Object.keys(value)
  if (value !== null && typeof value === "object" && Symbol.iterator in value) return Array.from(value as Iterable<unknown>)
  throw typeError(`'${pythonTypeName(value)}' object is not iterable`)
}

/**
 * An imported template (`{% import 'x' as y %}`), as Jinja2's `TemplateModule`: its macros are attributes, and it
 * prints as the template's own output, unescaped (Zulip imports `email.css` this way to print it in `<style>`).
 */
export class TemplateModule extends SafeString {
  readonly exports: Record<string, unknown>

  constructor(body: string, exports: Record<string, unknown>) {
    super(body)
    this.exports = exports
  }
}

// ---- decimal rounding -----------------------------------------------------------------------------------------------

/** A finite double's exact value as `mantissa * 2 ** exponent`. */
const binaryParts = (value: number): readonly [bigint, number] => {
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat64(0, Math.abs(value))
  const bits = view.getBigUint64(0)
  const biased = Number(bits >> 52n)
  const fraction = bits & ((1n << 52n) - 1n)
  return biased === 0 ? [fraction, -1074] : [fraction | (1n << 52n), biased - 1075]
}

/**
 * A finite `value` rounded to `digits` decimal places (to tens, hundreds… when negative), as Python's `round(x, n)`
 * and `'%.nf'` do: from the double's exact binary value, an exact tie going to the even digit (2.675 is really
 * 2.67499…, so "2.67"; 0.125 is exact, so "0.12"). Returns the decimal text, with the sign of a negative `value`.
 */
export const roundDecimal = (value: number, digits: number): string => {
  const [mantissa, exponent] = binaryParts(value)
  let numerator = exponent >= 0 ? mantissa << BigInt(exponent) : mantissa
  let denominator = exponent >= 0 ? 1n : 1n << BigInt(-exponent)
  if (digits >= 0) numerator *= 10n ** BigInt(digits)
  else denominator *= 10n ** BigInt(-digits)
  let quotient = numerator / denominator
  const twiceRemainder = (numerator % denominator) * 2n
  if (twiceRemainder > denominator || (twiceRemainder === denominator && quotient % 2n === 1n)) quotient += 1n
  const sign = value < 0 || Object.is(value, -0) ? "-" : ""
  if (digits <= 0) return sign + (quotient * 10n ** BigInt(-digits)).toString()
  const text = quotient.toString().padStart(digits + 1, "0")
  return `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}`
}
