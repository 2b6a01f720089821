/** Calling conventions and the Python semantics the filters share: errors, text, numbers, values, attributes and ordering. */
import {
  compare,
  escapeHtml,
  getAttribute,
  isDict,
  isMarkup,
  type Markup,
  markup,
  PythonError,
  pythonRepr,
  pythonStr,
  PyTuple,
  pythonTypeName,
  truthy,
  tuple
} from "./python.ts"

// ---- calling conventions --------------------------------------------------------------------------------------------

/** The render context nunjucks passes as `this`: through it, the environment. */
export interface FilterContext {
  readonly env: {
    readonly opts: { readonly autoescape: boolean }
    readonly filters: Readonly<Record<string, Function>>
    readonly tests: Readonly<Record<string, Function>>
  }
}

/**
 * Jinja2's `eval_ctx.autoescape`, which `join`, `replace`, `urlize` and `xmlattr` follow: the environment's setting
 * (nunjucks does not tell a filter about an enclosing `{% autoescape %}` block).
 */
export const autoescapes = (context: FilterContext): boolean => context.env.opts.autoescape

type Keywords = Record<string, unknown>

const isKeywords = (value: unknown): value is Keywords => isDict(value) && Object.hasOwn(value, "__keywords")

export const splitArguments = (args: ReadonlyArray<unknown>): { positional: ReadonlyArray<unknown>; keywords: Keywords } => {
  const last = args.at(-1)
  if (!isKeywords(last)) return { positional: args, keywords: {} }
  const { __keywords: _, ...keywords } = last
  return { positional: args.slice(0, -1), keywords }
}

/** Arguments for another filter or test, keyword arguments passed as nunjucks passes them. */
export const joinArguments = (positional: ReadonlyArray<unknown>, keywords: Keywords): ReadonlyArray<unknown> =>
  Object.keys(keywords).length === 0 ? positional : [...positional, { ...keywords, __keywords: true }]

const REQUIRED = Symbol("required")

/** A Python parameter: its name (required), or its name and default. */
type Parameter = string | readonly [name: string, fallback: unknown]

/**
 * A filter or test with a Python function's parameters: the value first, then each argument positionally or by its
 * keyword, with Python's TypeError for a missing, repeated, surplus or unknown argument. A built-in such as `len`
 * (`positionalOnly`) takes no keyword at all.
 */
export const define = <R>(
  name: string,
  parameters: ReadonlyArray<Parameter>,
  body: (this: FilterContext, ...values: Array<unknown>) => R,
  positionalOnly = false
) => {
  const spec = parameters.map((parameter) => typeof parameter === "string" ? [parameter, REQUIRED] as const : parameter)
  return function(this: FilterContext, ...args: ReadonlyArray<unknown>): R {
    const { positional, keywords } = splitArguments(args)
    const given = Object.keys(keywords)
    if (positionalOnly && given.length > 0) throw typeError(`${name}() takes no keyword arguments`)
    if (positional.length > spec.length) {
      throw typeError(`${name}() takes at most ${spec.length} arguments (${positional.length} given)`)
    }
    const unknown = given.find((keyword) => !spec.some(([parameter]) => parameter === keyword))
    if (unknown !== undefined) throw typeError(`${name}() got an unexpected keyword argument '${unknown}'`)
    const values = spec.map(([parameter, fallback], index) => {
      if (index < positional.length) {
        if (Object.hasOwn(keywords, parameter)) throw typeError(`${name}() got multiple values for argument '${parameter}'`)
        return positional[index]
      }
      if (Object.hasOwn(keywords, parameter)) return keywords[parameter]
      if (fallback === REQUIRED) throw typeError(`${name}() missing required argument: '${parameter}'`)
      return fallback
    })
    return body.apply(this, values)
  }
}

// ---- Python errors --------------------------------------------------------------------------------------------------

export const typeError = (message: string) => new PythonError("TypeError", message)
export const valueError = (message: string) => new PythonError("ValueError", message)
export const filterArgumentError = (message: string) => new PythonError("FilterArgumentError", message)
export const undefinedError = () => new PythonError("UndefinedError", "the value is undefined")

export const raisedAs = (error: unknown, ...types: ReadonlyArray<string>): boolean =>
  error instanceof PythonError && types.includes(error.pythonType)

/** Python's `value.method` on a value without it: Undefined fails as Undefined does, anything else has no such attribute. */
export const missingMethod = (value: unknown, method: string): PythonError =>
  value === undefined
    ? undefinedError()
    : new PythonError("AttributeError", `'${pythonTypeName(value)}' object has no attribute '${method}'`)

// ---- Python text --------------------------------------------------------------------------------------------------

export const isText = (value: unknown): value is string | Markup => typeof value === "string" || isMarkup(value)

/** markupsafe's `soft_str`: Markup stays Markup, anything else is `str()`. */
export const softStr = (value: unknown): string | Markup => isMarkup(value) ? value : pythonStr(value)

/** `text` as the same kind of string as `original`: a str method on Markup gives Markup (markupsafe). */
export const sameKind = (original: unknown, text: string): string | Markup => isMarkup(original) ? markup(text) : text

/** Python indexes and measures strings by code point, not by UTF-16 unit. */
export const codePoints = (text: string): Array<string> => Array.from(text)

export const textLength = (text: string): number => {
  let length = 0
  for (const _ of text) length++
  return length
}

/** Python's whitespace (`str.isspace()`, `\s`), which is not JavaScript's. */
export const SPACE = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
/** Python's `\w`: letters, digits and numerals of any script, and `_`. */
export const WORD = "\\p{L}\\p{N}_"

const SPACES = new RegExp(`[${SPACE}]+`, "u")
const SURROUNDING_SPACES = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, "gu")

/** Python's `str.strip(chars)`: whitespace when `chars` is None. */
export const strip = (text: string, characters: unknown): string => {
  if (characters === null) return text.replace(SURROUNDING_SPACES, "")
  if (!isText(characters)) throw typeError("strip arg must be None or str")
  const set = new Set(codePoints(characters.toString()))
  const chars = codePoints(text)
  let [from, to] = [0, chars.length]
  while (from < to && set.has(chars[from]!)) from++
  while (to > from && set.has(chars[to - 1]!)) to--
  return chars.slice(from, to).join("")
}

/** Python's `str.split()` without a separator: the runs of non-whitespace. */
export const splitWords = (text: string): Array<string> => text.split(SPACES).filter((word) => word !== "")

const LINE_BOUNDARY = /\r\n|[\n\v\f\r\x1c-\x1e\x85\u2028\u2029]/g

/** Python's `str.splitlines(keepends)`: at `\n`, `\r\n`, `\r` and the other line boundaries Python knows. */
export const splitLines = (text: string, keepEnds = false): Array<string> => {
  const lines: Array<string> = []
  let start = 0
  for (const boundary of text.matchAll(LINE_BOUNDARY)) {
    const end = boundary.index + boundary[0].length
    lines.push(text.slice(start, keepEnds ? end : boundary.index))
    start = end
  }
  if (start < text.length) lines.push(text.slice(start))
  return lines
}

/** Python's `str.replace(old, new, count)`; an empty `old` inserts `new` around every code point. */
export const replaceText = (text: string, old: string, replacement: string, count: number): string => {
  const limit = count < 0 ? Infinity : count
  if (old === "") {
    const chars = codePoints(text)
    let result = ""
    for (let index = 0; index <= chars.length; index++) {
      if (index < limit) result += replacement
      result += chars[index] ?? ""
    }
    return result
  }
  const parts = text.split(old)
  if (parts.length - 1 <= limit) return parts.join(replacement)
  return parts.slice(0, limit + 1).join(replacement) + old + parts.slice(limit + 1).join(old)
}

/** Python's `separator.join(items)` of text; a Markup separator escapes the items (markupsafe's `join`). */
export const joinWith = (separator: unknown, items: ReadonlyArray<string | Markup>): string | Markup => {
  if (isMarkup(separator)) return markup(items.map((item) => escapeHtml(item).toString()).join(separator.toString()))
  if (typeof separator === "string") return items.join(separator)
  throw missingMethod(separator, "join")
}

/**
 * Python's titlecase of one character (the first one of `str.capitalize()`): its uppercase, except where Unicode's
 * titlecase differs: titlecase letters and Georgian letters stay, the Latin digraphs take their titlecase form
 * (ǆ → ǅ), a Greek vowel with ypogegrammeni keeps it as prosgegrammeni (ᾳ → ᾼ, not ΑΙ), ŉ is ʼN, and any other
 * multi-letter uppercase has its tail lower-cased (ß → Ss, ﬁ → Fi).
 */
export const titleCaseOf = (char: string): string => {
  const code = char.codePointAt(0)!
  if (/\p{Lt}/u.test(char) || (code >= 0x10d0 && code <= 0x10ff)) return char
  if (code >= 0x1c4 && code <= 0x1cc) return String.fromCodePoint(0x1c5 + 3 * Math.floor((code - 0x1c4) / 3))
  if (code >= 0x1f1 && code <= 0x1f3) return "\u01f2"
  if (code === 0x149) return "\u02bcN"
  const upper = char.toUpperCase()
  if (code !== 0x345 && char.normalize("NFD").includes("\u0345")) {
    // precomposed (ᾼ) where Unicode has the letter, else the uppercase letters and U+0345
    const letters = upper.slice(0, -1)
    return textLength(letters) === 1 ? `${letters}\u0345`.normalize("NFC") : `${letters}\u0345`
  }
  const [head = "", ...tail] = codePoints(upper)
  return head + tail.join("").toLowerCase()
}

// ---- Python numbers -----------------------------------------------------------------------------------------------

export const isNumeric = (value: unknown): value is number | boolean => typeof value === "number" || typeof value === "boolean"

const DECIMAL_DIGIT = /\p{Nd}/u

/** Decimal digits of any script as ASCII digits (Python's `int("٣")` is 3): they come in runs of ten from zero. */
const asciiDigits = (text: string): string =>
  text.replace(/\p{Nd}/gu, (digit) => {
    const code = digit.codePointAt(0)!
    let start = code
    while (DECIMAL_DIGIT.test(String.fromCodePoint(start - 1))) start--
    return String((code - start) % 10)
  })

const DIGITS = "\\d(?:_?\\d)*"
const FLOAT_TEXT = new RegExp(`^[+-]?(?:(?:${DIGITS}(?:\\.(?:${DIGITS})?)?|\\.${DIGITS})(?:e[+-]?${DIGITS})?|inf|infinity|nan)$`, "i")

/** Python's `float(text)`: surrounding whitespace, `_` between digits, `inf` and `nan` allowed; null if refused. */
const parseFloatText = (text: string): number | null => {
  const literal = asciiDigits(strip(text, null))
  if (!FLOAT_TEXT.test(literal)) return null
  const word = literal.replace(/^[+-]/, "").toLowerCase()
  if (word.startsWith("inf")) return literal.startsWith("-") ? -Infinity : Infinity
  if (word === "nan") return NaN
  return Number(literal.replaceAll("_", ""))
}

/** Python's `float(value)`. */
export const toFloat = (value: unknown): number => {
  if (value === undefined) throw undefinedError()
  if (isNumeric(value)) return Number(value)
  if (isText(value)) {
    const number = parseFloatText(value.toString())
    if (number === null) throw valueError(`could not convert string to float: ${pythonRepr(value.toString())}`)
    return number
  }
  throw typeError(`float() argument must be a string or a real number, not '${pythonTypeName(value)}'`)
}

const PREFIX_BASES: Record<string, number> = { x: 16, o: 8, b: 2 }

/** Python's `int(text, base)`: a sign, a base prefix where the base allows it, `_` between digits; null if refused. */
export const parseIntText = (text: string, base: number): number | null => {
  let literal = asciiDigits(strip(text, null))
  const negative = literal.startsWith("-")
  literal = literal.replace(/^[+-]/, "")
  let radix = base
  let afterPrefix = false
  const prefix = /^0([xob])/i.exec(literal)
  const prefixBase = prefix === null ? null : PREFIX_BASES[prefix[1]!.toLowerCase()]!
  if (prefixBase !== null && (base === 0 || base === prefixBase)) {
    radix = prefixBase
    literal = literal.slice(2)
    afterPrefix = true
  } else if (base === 0) {
    // base 0 reads decimals as Python source does: no leading zero but in zero itself
    if (literal.startsWith("0") && /[^0_]/.test(literal)) return null
    radix = 10
  }
  if (!(afterPrefix ? /^_?[0-9a-z]+(?:_[0-9a-z]+)*$/i : /^[0-9a-z]+(?:_[0-9a-z]+)*$/i).test(literal)) return null
  let value = 0n
  for (const char of literal.replaceAll("_", "").toLowerCase()) {
    const digit = Number.parseInt(char, 36)
    if (digit >= radix) return null
    value = value * BigInt(radix) + BigInt(digit)
  }
  return Number(negative ? -value : value)
}

/** Python's `int(value)` of a number. */
export const intOf = (value: unknown): number => {
  if (value === undefined) throw undefinedError()
  if (!isNumeric(value)) {
    throw typeError(`int() argument must be a string, a bytes-like object or a real number, not '${pythonTypeName(value)}'`)
  }
  const number = Number(value)
  if (Number.isNaN(number)) throw valueError("cannot convert float NaN to integer")
  if (!Number.isFinite(number)) throw new PythonError("OverflowError", "cannot convert float infinity to integer")
  return Math.trunc(number) || 0
}

/** Python's `operator.index()`: what an integer argument (a width, a count) must be. */
export const toIndex = (value: unknown): number => {
  if (typeof value === "boolean") return Number(value)
  if (typeof value === "number" && Number.isInteger(value)) return value
  throw typeError(`'${pythonTypeName(value)}' object cannot be interpreted as an integer`)
}

/** Python's `int` printed in full (beyond 10^16 too, where a float would print with an exponent). */
export const integerText = (value: number): string => BigInt(value).toString()

/** Python's exact `10 ** n` as a float (JavaScript's `10 ** -4` is not 0.0001). */
export const powerOfTen = (exponent: number): number => Number(`1e${exponent}`)

// ---- Python values ------------------------------------------------------------------------------------------------

/** Python's `len()`: code points of a string, items of a list, keys of a dict; Undefined has none. */
export const lengthOf = (value: unknown): number => {
  if (value === undefined) return 0
  if (isText(value)) return textLength(value.toString())
  if (Array.isArray(value)) return value.length
  if (isDict(value)) return Object.keys(value).length
  throw typeError(`object of type '${pythonTypeName(value)}' has no len()`)
}

/** Python's `seq[index]` for an int index. */
export const itemAt = (sequence: unknown, index: number): unknown => {
  if (sequence === undefined) throw undefinedError()
  const items = isText(sequence) ? codePoints(sequence.toString()) : Array.isArray(sequence) ? sequence : null
  if (items === null) {
    if (isDict(sequence)) throw new PythonError("KeyError", String(index))
    throw typeError(`'${pythonTypeName(sequence)}' object is not subscriptable`)
  }
  const position = index < 0 ? items.length + index : index
  if (position < 0 || position >= items.length) {
    throw new PythonError("IndexError", `${isText(sequence) ? "string" : "list"} index out of range`)
  }
  return isText(sequence) ? sameKind(sequence, items[position] as string) : items[position]
}

/** Python's `iter()` succeeds: a string, list, dict, Undefined (always empty) or any other iterable. */
export const isIterable = (value: unknown): boolean =>
  value === undefined || isText(value) || Array.isArray(value) || isDict(value) ||
  (typeof value === "object" && value !== null && Symbol.iterator in value)

/** A set member or dict key must be hashable: lists and dicts are not. */
export const requireHashable = (value: unknown): void => {
  if (isDict(value) || (Array.isArray(value) && !(value instanceof PyTuple))) {
    throw typeError(`unhashable type: '${pythonTypeName(value)}'`)
  }
  if (value instanceof PyTuple) value.forEach(requireHashable)
}

/** `dict.items()` as Python tuples. */
export const dictItems = (value: unknown): Array<PyTuple> => {
  if (!isDict(value)) throw missingMethod(value, "items")
  return Object.entries(value).map((entry) => tuple(entry))
}

// ---- attributes and ordering --------------------------------------------------------------------------------------

/** Jinja2's `_prepare_attribute_parts`: `"a.b.0"` is looked up part by part, digit parts as indexes. */
const attributeParts = (attribute: unknown): ReadonlyArray<unknown> => {
  if (attribute === null) return []
  if (!isText(attribute)) return [attribute]
  return attribute.toString().split(".").map((part) => /^\p{Nd}+$/u.test(part) ? Number(asciiDigits(part)) : part)
}

type Postprocess = (value: unknown) => unknown

/**
 * Jinja2's `make_attrgetter`: an item's attribute or key by `attribute` (as `environment.getitem`), Undefined
 * replaced by `fallback` unless that is None, then `postprocess`ed.
 */
export const attributeGetter = (attribute: unknown, fallback: unknown = null, postprocess?: Postprocess) => {
  const parts = attributeParts(attribute)
  return (item: unknown): unknown => {
    let value = item
    for (const part of parts) {
      value = getAttribute(value, part, pythonStr(part))
      if (fallback !== null && value === undefined) value = fallback
    }
    return postprocess === undefined ? value : postprocess(value)
  }
}

/** Jinja2's `make_multi_attrgetter` (`sort(attribute="a,b")`): the list of each comma-separated attribute's value. */
export const multiAttributeGetter = (attribute: unknown, postprocess?: Postprocess) => {
  const getters = (isText(attribute) ? attribute.toString().split(",") : [attribute])
    .map((part) => attributeGetter(part, null, postprocess))
  return (item: unknown): Array<unknown> => getters.map((getter) => getter(item))
}

/** Jinja2's `ignore_case`, for the case-insensitive sorting and grouping filters. */
const ignoreCase = (value: unknown): unknown => isText(value) ? value.toString().toLowerCase() : value

export const caseFolding = (caseSensitive: unknown): Postprocess | undefined => truthy(caseSensitive) ? undefined : ignoreCase

/** Python's `sorted(items, key=key, reverse=reverse)`: by `<` alone, stable, equal items in their first order. */
export const sortBy = <A>(items: ReadonlyArray<A>, key: (item: A) => unknown, reverse: boolean): Array<A> => {
  const ascending = (left: unknown, right: unknown): number =>
    compare(left, "<", right) ? -1 : compare(right, "<", left) ? 1 : 0
  const keyed = items.map((item) => ({ item, key: key(item) }))
  keyed.sort((a, b) => reverse ? ascending(b.key, a.key) : ascending(a.key, b.key))
  return keyed.map(({ item }) => item)
}
