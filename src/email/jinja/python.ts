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

const fieldNames = new WeakMap<PyTuple, ReadonlyArray<string>>()

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
 * Python's `str()` of a number. JavaScript has one number type, so an integral value prints as an int (what Zulip's
 * producers send: JSON's `1.0`, a Python float, prints as `1` here) and anything else as Python prints a float.
 */
const numberText = (value: number): string =>
  Number.isInteger(value) && Math.abs(value) < 1e21 ? BigInt(value).toString() : floatRepr(value)

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

/** Python's `format(value, ".Nf")`: exact ties to even (`roundDecimal`), and `nan`/`inf` as Python writes them. */
export const fixed = (value: number, precision: number): string =>
  Number.isNaN(value) ? "nan" : Number.isFinite(value) ? roundDecimal(value, precision) : value > 0 ? "inf" : "-inf"

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
      return fixed(floatOf(value, conversion), precision ?? 6)
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
export const percentFormat = (format: string, values: unknown, escape: boolean): string =>
  isDict(values) ? namedFormat(format, values, escape) ?? fullFormat(format, values, escape) : fullFormat(format, values, escape)

/**
 * The common case of `percentFormat`, what `{% trans %}` blocks make: only `%(name)s` and `%%` with a dict, read in
 * one pass; null when the format has anything else (the full reader handles it).
 */
const namedFormat = (format: string, values: Record<string, unknown>, escape: boolean): string | null => {
  let text = ""
  let from = 0
  for (let at = format.indexOf("%"); at >= 0; at = format.indexOf("%", from)) {
    text += format.slice(from, at)
    if (format[at + 1] === "%") {
      text += "%"
      from = at + 2
      continue
    }
    const close = format[at + 1] === "(" ? format.indexOf(")", at + 2) : -1
    if (close < 0 || format[close + 1] !== "s") return null
    const key = format.slice(at + 2, close)
    if (!Object.hasOwn(values, key)) return null
    const value = values[key]
    text += escape && !isMarkup(value) ? escapeText(pythonStr(value)) : pythonStr(value)
    from = close + 2
  }
  return text + format.slice(from)
}

const fullFormat = (format: string, values: unknown, escape: boolean): string => {
  let positional = 0
  let named = false
  const text = format.replace(CONVERSION, (whole, key: string | undefined, flags: string, width: string | undefined, precision: string | undefined, conversion: string | undefined) => {
    if (conversion === undefined) throw new PythonError("ValueError", "incomplete format")
    if (conversion === "%") return "%"
    let value: unknown
    if (key !== undefined) {
      named = true
      if (!isDict(values)) throw typeError("format requires a mapping")
      if (!Object.hasOwn(values, key)) throw new PythonError("KeyError", stringRepr(key))
      value = values[key]
    } else {
      // only a tuple holds several values; a list is one value, as in Python
      const all = values instanceof PyTuple ? values : [values]
      if (positional >= all.length) throw typeError("not enough arguments for format string")
      value = all[positional++]
    }
    if (width === "*" || precision === "*") throw typeError(`* wants int in ${whole}`)
    const numeric = "diouxXeEfFgG".includes(conversion)
    let converted = convert(value, conversion, flags, precision === undefined ? null : Number(precision || 0))
    if (escape && !numeric) converted = isMarkup(value) && conversion === "s" ? converted : escapeText(converted)
    return pad(converted, flags, Number(width ?? 0), numeric)
  })
  // Python refuses values left over, unless they came as a mapping (or the format only uses names)
  const given = values instanceof PyTuple ? values.length : isDict(values) ? 0 : 1
  if (!named && positional < given) throw typeError("not all arguments converted during string formatting")
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

/** `str.replace(old, new[, count])` */
const replaceText = (text: string, old: string, replacement: string, count: unknown): string => {
  const limit = typeof count === "number" && count >= 0 ? count : Infinity
  if (old === "") {
    const characters = Array.from(text)
    const slots = Math.min(limit, characters.length + 1)
    return characters.map((character, index) => (index < slots ? replacement : "") + character).join("") +
      (slots > characters.length ? replacement : "")
  }
  const parts = text.split(old)
  return parts.length - 1 <= limit ? parts.join(replacement) : parts.slice(0, limit + 1).join(replacement) + old + parts.slice(limit + 1).join(old)
}

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
  replace: (text) => bound((old: unknown, replacement: unknown, count?: unknown) => replaceText(text, pythonStr(old), pythonStr(replacement), count)),
  split: (text) => bound((separator?: unknown, limit?: unknown) => split(text, separator, limit)),
  join: (text) => bound((items: unknown) => iterate(items).map(pythonStr).join(text)),
  find: (text) => bound((needle: unknown) => text.indexOf(pythonStr(needle))),
  count: (text) => bound((needle: unknown) => text.split(pythonStr(needle)).length - 1),
  rfind: (text) => bound((needle: unknown) => text.lastIndexOf(pythonStr(needle))),
  index: (text) => bound((needle: unknown) => {
    const found = text.indexOf(pythonStr(needle))
    if (found < 0) throw new PythonError("ValueError", "substring not found")
    return found
  }),
  center: (text) => bound((width: unknown, fill: unknown = " ") => {
    const padding = Math.max(0, Number(width) - text.length)
    // Python puts the odd space on the right when the padding is odd and the text length even, else on the left
    const left = Math.floor(padding / 2) + (padding % 2 & Number(width) % 2)
    return pythonStr(fill).repeat(left) + text + pythonStr(fill).repeat(padding - left)
  }),
  ljust: (text) => bound((width: unknown, fill: unknown = " ") => text.padEnd(Number(width), pythonStr(fill))),
  rjust: (text) => bound((width: unknown, fill: unknown = " ") => text.padStart(Number(width), pythonStr(fill))),
  zfill: (text) => bound((width: unknown) => {
    const sign = /^[+-]/.test(text) ? text[0]! : ""
    return sign + text.slice(sign.length).padStart(Number(width) - sign.length, "0")
  }),
  swapcase: (text) => bound(() => Array.from(text, (c) => c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()).join("")),
  casefold: (text) => bound(() => text.toLowerCase()),
  splitlines: (text) => bound(() => text.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/).filter((line, index, lines) => index < lines.length - 1 || line !== "")),
  partition: (text) => bound((separator: unknown) => {
    const at = text.indexOf(pythonStr(separator))
    return at < 0 ? tuple([text, "", ""]) : tuple([text.slice(0, at), pythonStr(separator), text.slice(at + pythonStr(separator).length)])
  }),
  isdigit: (text) => bound(() => /^\p{Nd}+$/u.test(text)),
  isalpha: (text) => bound(() => /^\p{L}+$/u.test(text)),
  isalnum: (text) => bound(() => /^[\p{L}\p{N}]+$/u.test(text)),
  isspace: (text) => bound(() => /^\s+$/.test(text)),
  islower: (text) => bound(() => /\p{Ll}/u.test(text) && text === text.toLowerCase()),
  isupper: (text) => bound(() => /\p{Lu}/u.test(text) && text === text.toUpperCase()),
  format: (text) => (...args) => formatMethod(text, withoutKeywords(args), args.at(-1))
}

const FORMAT_SPEC = /^(?:(.)?([<>=^]))?([-+ ])?(#)?(0)?(\d+)?([,_])?(?:\.(\d+))?([bcdeEfFgGnosxX%])?$/

/** Python's format-spec mini-language (`{:>5}`, `{:.2f}`, `{:,}`, …) for one value. */
export const formatSpec = (value: unknown, spec: string): string => {
  if (spec === "") return pythonStr(value)
  const parts = FORMAT_SPEC.exec(spec)
  if (parts === null) throw new PythonError("ValueError", `Invalid format specifier '${spec}'`)
  const [, fill = " ", align, sign = "-", alternate, zero, width, grouping, precision, type] = parts
  const numeric = typeof value === "number" || typeof value === "boolean"
  let text: string
  if (numeric && type !== "s") {
    const number = Number(value)
    const digits = precision === undefined ? null : Number(precision)
    const body = (() => {
      switch (type) {
        case undefined:
          return digits === null ? pythonStr(Math.abs(number)) : general(Math.abs(number), digits, false)
        case "d":
        case "n":
          return String(Math.abs(Math.trunc(number)))
        case "f":
        case "F":
          return fixed(Math.abs(number), digits ?? 6)
        case "e":
        case "E": {
          const formatted = exponential(Math.abs(number), digits ?? 6)
          return type === "E" ? formatted.toUpperCase() : formatted
        }
        case "g":
        case "G": {
          const formatted = general(Math.abs(number), digits ?? 6, alternate !== undefined)
          return type === "G" ? formatted.toUpperCase() : formatted
        }
        case "%":
          return `${fixed(Math.abs(number) * 100, digits ?? 6)}%`
        case "x":
        case "X": {
          const formatted = (alternate ? "0x" : "") + Math.abs(Math.trunc(number)).toString(16)
          return type === "X" ? formatted.toUpperCase() : formatted
        }
        case "o":
          return (alternate ? "0o" : "") + Math.abs(Math.trunc(number)).toString(8)
        case "b":
          return (alternate ? "0b" : "") + Math.abs(Math.trunc(number)).toString(2)
        case "c":
          return String.fromCodePoint(number)
      }
      throw new PythonError("ValueError", `Unknown format code '${type}' for a number`)
    })()
    const grouped = grouping === undefined ? body : body.replace(/^\d+/, (whole) => whole.replace(/\B(?=(\d{3})+$)/g, grouping))
    const signText = number < 0 || Object.is(number, -0) ? "-" : sign === "+" ? "+" : sign === " " ? " " : ""
    text = signText + grouped
    if (zero !== undefined && align === undefined && width !== undefined && text.length < Number(width)) {
      return signText + grouped.padStart(Number(width) - signText.length, "0")
    }
  } else {
    if (type !== undefined && type !== "s") {
      throw new PythonError("ValueError", `Unknown format code '${type}' for object of type '${pythonTypeName(value)}'`)
    }
    text = pythonStr(value)
    if (precision !== undefined) text = text.slice(0, Number(precision))
  }
  const size = Number(width ?? 0)
  if (text.length >= size) return text
  const padding = size - text.length
  switch (align ?? (numeric ? ">" : "<")) {
    case "<":
      return text + fill.repeat(padding)
    case ">":
      return fill.repeat(padding) + text
    case "^":
      return fill.repeat(Math.floor(padding / 2)) + text + fill.repeat(Math.ceil(padding / 2))
    default:
      return /^[-+ ]/.test(text) ? text[0] + fill.repeat(padding) + text.slice(1) : fill.repeat(padding) + text
  }
}

/** `str.format()`: positional `{}`/`{0}` and named `{name}` fields, attribute and index access, format specs. */
const formatMethod = (text: string, args: ReadonlyArray<unknown>, last: unknown): string => {
  const named = isDict(last) && Object.hasOwn(last, "__keywords") ? last : {}
  let next = 0
  return text.replace(/\{\{|\}\}|\{([^{}!:]*)(?:!([rsa]))?(?::([^{}]*))?\}/g, (whole, field: string, conversion: string | undefined, spec: string | undefined) => {
    if (whole === "{{") return "{"
    if (whole === "}}") return "}"
    const [head = "", ...path] = field.split(/(?=[.[])/)
    let value: unknown
    if (head === "") value = args[next++]
    else if (/^\d+$/.test(head)) value = args[Number(head)]
    else if (Object.hasOwn(named, head)) value = named[head]
    else throw new PythonError("KeyError", stringRepr(head))
    for (const step of path) {
      value = step.startsWith(".")
        ? getAttribute(value, step.slice(1), head, true)
        : getAttribute(value, /^\[\d+\]$/.test(step) ? Number(step.slice(1, -1)) : step.slice(1, -1), head, false)
    }
    if (conversion === "r" || conversion === "a") value = pythonRepr(value)
    else if (conversion === "s") value = pythonStr(value)
    return formatSpec(value, spec ?? "")
  })
}

/** A Python method that would change a context value: the context is data the email is built from, never changed. */
const unavailable = (owner: string, name: string) => () => () => {
  throw new PythonError("TypeError", `${owner}.${name}() would change the context; templates cannot call it`)
}

const dictMethods: Record<string, (dict: Record<string, unknown>) => (...args: ReadonlyArray<unknown>) => unknown> = {
  ...Object.fromEntries(["clear", "pop", "popitem", "setdefault", "update"].map((name) => [name, unavailable("dict", name)])),
  copy: (dict) => bound(() => ({ ...dict })),
  items: (dict) => bound(() => Object.entries(dict).map((entry) => tuple(entry))),
  keys: (dict) => bound(() => Object.keys(dict)),
  values: (dict) => bound(() => Object.values(dict)),
  get: (dict) => bound((key: unknown, fallback: unknown = null) =>
    typeof key === "string" && Object.hasOwn(dict, key) ? dict[key] : fallback)
}

const listMethods: Record<string, (list: ReadonlyArray<unknown>) => (...args: ReadonlyArray<unknown>) => unknown> = {
  ...Object.fromEntries(["append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"].map((name) => [name, unavailable("list", name)])),
  copy: (list) => bound(() => [...list]),
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
 * Jinja2's `obj.name` (`attribute`: an attribute first, then an item) and `obj[key]` (an item first, then an
 * attribute) on context values: a dict's own keys and Python's dict methods (so `d.items` is the method even when
 * `d` has an "items" key, and `d["items"]` the key); a list or string item by (negative) index; string and list
 * methods; an imported template's macros. Anything else is Undefined, and anything of Undefined is an error.
 */
export const getAttribute = (target: unknown, key: unknown, what: string, attribute = false): unknown => {
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
    const field = target instanceof PyTuple ? fieldNames.get(target)?.indexOf(name) ?? -1 : -1
    if (field >= 0) return target[field]
    return Object.hasOwn(listMethods, name) ? listMethods[name]!(target) : undefined
  }
  if (isDict(target)) {
    const method = Object.hasOwn(dictMethods, name) ? dictMethods[name]!(target) : undefined
    if (attribute && method !== undefined) return method
    return Object.hasOwn(target, name) ? target[name] : method
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
