/**
 * Jinja2 3.1's built-in filters and tests, and Zulip's own filters (`pluralize` and `slugify` as Django's,
 * `display_list` from `zerver.lib.templates`), with the meaning they have on Python values: each takes its Python
 * parameters positionally or by keyword, answers as the Python function does (Markup in, Markup out, as markupsafe's
 * str methods; Python's parsing of numbers, its whitespace, its sort order…) and raises where Python raises.
 *
 * nunjucks calls a filter or test with its render context as `this` (through it, the environment: whether output is
 * escaped, the other filters and tests), the value, then the arguments, keyword arguments last in one object marked
 * `__keywords`.
 */
import {
  add,
  arithmetic,
  compare,
  contains,
  equals,
  escapeHtml,
  escapeText,
  getAttribute,
  isDict,
  isMarkup,
  iterate,
  type Markup,
  markup,
  namedTuple,
  percentFormat,
  PythonError,
  pythonRepr,
  pythonStr,
  PyTuple,
  pythonTypeName,
  fixed,
  roundDecimal,
  slice,
  truthy,
  tuple,
  unpack
} from "./python.ts"

// ---- calling conventions --------------------------------------------------------------------------------------------

/** The render context nunjucks passes as `this`: through it, the environment. */
interface FilterContext {
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
const autoescapes = (context: FilterContext): boolean => context.env.opts.autoescape

type Keywords = Record<string, unknown>

const isKeywords = (value: unknown): value is Keywords => isDict(value) && Object.hasOwn(value, "__keywords")

const splitArguments = (args: ReadonlyArray<unknown>): { positional: ReadonlyArray<unknown>; keywords: Keywords } => {
  const last = args.at(-1)
  if (!isKeywords(last)) return { positional: args, keywords: {} }
  const { __keywords: _, ...keywords } = last
  return { positional: args.slice(0, -1), keywords }
}

/** Arguments for another filter or test, keyword arguments passed as nunjucks passes them. */
const joinArguments = (positional: ReadonlyArray<unknown>, keywords: Keywords): ReadonlyArray<unknown> =>
  Object.keys(keywords).length === 0 ? positional : [...positional, { ...keywords, __keywords: true }]

const REQUIRED = Symbol("required")

/** A Python parameter: its name (required), or its name and default. */
type Parameter = string | readonly [name: string, fallback: unknown]

/**
 * A filter or test with a Python function's parameters: the value first, then each argument positionally or by its
 * keyword, with Python's TypeError for a missing, repeated, surplus or unknown argument. A built-in such as `len`
 * (`positionalOnly`) takes no keyword at all.
 */
const define = <R>(
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

const typeError = (message: string) => new PythonError("TypeError", message)
const valueError = (message: string) => new PythonError("ValueError", message)
const filterArgumentError = (message: string) => new PythonError("FilterArgumentError", message)
const undefinedError = () => new PythonError("UndefinedError", "the value is undefined")

const raisedAs = (error: unknown, ...types: ReadonlyArray<string>): boolean =>
  error instanceof PythonError && types.includes(error.pythonType)

/** Python's `value.method` on a value without it: Undefined fails as Undefined does, anything else has no such attribute. */
const missingMethod = (value: unknown, method: string): PythonError =>
  value === undefined
    ? undefinedError()
    : new PythonError("AttributeError", `'${pythonTypeName(value)}' object has no attribute '${method}'`)

// ---- Python text --------------------------------------------------------------------------------------------------

const isText = (value: unknown): value is string | Markup => typeof value === "string" || isMarkup(value)

/** markupsafe's `soft_str`: Markup stays Markup, anything else is `str()`. */
const softStr = (value: unknown): string | Markup => isMarkup(value) ? value : pythonStr(value)

/** `text` as the same kind of string as `original`: a str method on Markup gives Markup (markupsafe). */
const sameKind = (original: unknown, text: string): string | Markup => isMarkup(original) ? markup(text) : text

/** Python indexes and measures strings by code point, not by UTF-16 unit. */
const codePoints = (text: string): Array<string> => Array.from(text)

const textLength = (text: string): number => {
  let length = 0
  for (const _ of text) length++
  return length
}

/** Python's whitespace (`str.isspace()`, `\s`), which is not JavaScript's. */
const SPACE = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
/** Python's `\w`: letters, digits and numerals of any script, and `_`. */
const WORD = "\\p{L}\\p{N}_"

const SPACES = new RegExp(`[${SPACE}]+`, "u")
const SURROUNDING_SPACES = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, "gu")

/** Python's `str.strip(chars)`: whitespace when `chars` is None. */
const strip = (text: string, characters: unknown): string => {
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
const splitWords = (text: string): Array<string> => text.split(SPACES).filter((word) => word !== "")

const LINE_BOUNDARY = /\r\n|[\n\v\f\r\x1c-\x1e\x85\u2028\u2029]/g

/** Python's `str.splitlines(keepends)`: at `\n`, `\r\n`, `\r` and the other line boundaries Python knows. */
const splitLines = (text: string, keepEnds = false): Array<string> => {
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
const replaceText = (text: string, old: string, replacement: string, count: number): string => {
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
const joinWith = (separator: unknown, items: ReadonlyArray<string | Markup>): string | Markup => {
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
const titleCaseOf = (char: string): string => {
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

const isNumeric = (value: unknown): value is number | boolean => typeof value === "number" || typeof value === "boolean"

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
const toFloat = (value: unknown): number => {
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
const parseIntText = (text: string, base: number): number | null => {
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
const intOf = (value: unknown): number => {
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
const toIndex = (value: unknown): number => {
  if (typeof value === "boolean") return Number(value)
  if (typeof value === "number" && Number.isInteger(value)) return value
  throw typeError(`'${pythonTypeName(value)}' object cannot be interpreted as an integer`)
}

/** Python's `int` printed in full (beyond 10^16 too, where a float would print with an exponent). */
const integerText = (value: number): string => BigInt(value).toString()

/** Python's exact `10 ** n` as a float (JavaScript's `10 ** -4` is not 0.0001). */
const powerOfTen = (exponent: number): number => Number(`1e${exponent}`)

// ---- Python values ------------------------------------------------------------------------------------------------

/** Python's `len()`: code points of a string, items of a list, keys of a dict; Undefined has none. */
const lengthOf = (value: unknown): number => {
  if (value === undefined) return 0
  if (isText(value)) return textLength(value.toString())
  if (Array.isArray(value)) return value.length
  if (isDict(value)) return Object.keys(value).length
  throw typeError(`object of type '${pythonTypeName(value)}' has no len()`)
}

/** Python's `seq[index]` for an int index. */
const itemAt = (sequence: unknown, index: number): unknown => {
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
const isIterable = (value: unknown): boolean =>
  value === undefined || isText(value) || Array.isArray(value) || isDict(value) ||
  (typeof value === "object" && value !== null && Symbol.iterator in value)

/** A set member or dict key must be hashable: lists and dicts are not. */
const requireHashable = (value: unknown): void => {
  if (isDict(value) || (Array.isArray(value) && !(value instanceof PyTuple))) {
    throw typeError(`unhashable type: '${pythonTypeName(value)}'`)
  }
  if (value instanceof PyTuple) value.forEach(requireHashable)
}

/** `dict.items()` as Python tuples. */
const dictItems = (value: unknown): Array<PyTuple> => {
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
const attributeGetter = (attribute: unknown, fallback: unknown = null, postprocess?: Postprocess) => {
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
const multiAttributeGetter = (attribute: unknown, postprocess?: Postprocess) => {
  const getters = (isText(attribute) ? attribute.toString().split(",") : [attribute])
    .map((part) => attributeGetter(part, null, postprocess))
  return (item: unknown): Array<unknown> => getters.map((getter) => getter(item))
}

/** Jinja2's `ignore_case`, for the case-insensitive sorting and grouping filters. */
const ignoreCase = (value: unknown): unknown => isText(value) ? value.toString().toLowerCase() : value

const caseFolding = (caseSensitive: unknown): Postprocess | undefined => truthy(caseSensitive) ? undefined : ignoreCase

/** Python's `sorted(items, key=key, reverse=reverse)`: by `<` alone, stable, equal items in their first order. */
const sortBy = <A>(items: ReadonlyArray<A>, key: (item: A) => unknown, reverse: boolean): Array<A> => {
  const ascending = (left: unknown, right: unknown): number =>
    compare(left, "<", right) ? -1 : compare(right, "<", left) ? 1 : 0
  const keyed = items.map((item) => ({ item, key: key(item) }))
  keyed.sort((a, b) => reverse ? ascending(b.key, a.key) : ascending(a.key, b.key))
  return keyed.map(({ item }) => item)
}

// ---- filters: text ------------------------------------------------------------------------------------------------

const upper = define("upper", ["s"], (s) => sameKind(s, pythonStr(s).toUpperCase()))

const lower = define("lower", ["s"], (s) => sameKind(s, pythonStr(s).toLowerCase()))

const capitalize = define("capitalize", ["s"], (s) => {
  const text = pythonStr(s)
  const first = codePoints(text)[0]
  if (first === undefined) return sameKind(s, "")
  // the rest lower-cased in place, so that a final sigma is seen as final
  return sameKind(s, titleCaseOf(first) + text.toLowerCase().slice(first.toLowerCase().length))
})

const WORD_BEGINNING = new RegExp(`([-${SPACE}({\\[<]+)`, "u")

/** Jinja2's `title`: each word's first letter upper-cased, after whitespace or `- ( { [ <` only (so "it's" → "It's"). */
const title = define("title", ["s"], (s) =>
  pythonStr(s).split(WORD_BEGINNING).filter((item) => item !== "").map((item) => {
    const [first = "", ...rest] = codePoints(item)
    return first.toUpperCase() + rest.join("").toLowerCase()
  }).join(""))

const trim = define("trim", ["value", ["chars", null]], (value, chars) => sameKind(value, strip(pythonStr(value), chars)))

const center = define("center", ["value", ["width", 80]], (value, width) => {
  const text = pythonStr(value)
  const [size, length] = [toIndex(width), textLength(text)]
  if (size <= length) return sameKind(value, text)
  // CPython's split of the margin: the odd space goes left when the width is odd
  const margin = size - length
  const left = Math.floor(margin / 2) + (margin & size & 1)
  return sameKind(value, " ".repeat(left) + text + " ".repeat(margin - left))
})

/**
 * Jinja2's `replace`: in an autoescaping environment the text is escaped first when `old` is Markup (or `new` is and
 * the text is not), and a Markup text escapes `new` (markupsafe's `replace`); otherwise plain `str.replace`.
 */
const replace = define("replace", ["s", "old", "new", ["count", null]], function(s, old, replacement, count) {
  const limit = count === null ? -1 : toIndex(count)
  if (!autoescapes(this)) return replaceText(pythonStr(s), pythonStr(old), pythonStr(replacement), limit)
  const subject = isMarkup(old) || (isMarkup(replacement) && !isMarkup(s)) ? escapeHtml(s) : softStr(s)
  if (isMarkup(subject)) {
    return markup(replaceText(subject.toString(), pythonStr(old), escapeHtml(replacement).toString(), limit))
  }
  return replaceText(subject, pythonStr(old), pythonStr(replacement), limit)
})

/** Jinja2's `indent`: every line but the first (unless `first`) and blank ones (unless `blank`) indented. */
const indent = define("indent", ["s", ["width", 4], ["first", false], ["blank", false]], (s, width, first, blank) => {
  if (width === undefined) throw undefinedError()
  if (!isText(width) && !(typeof width === "boolean" || Number.isInteger(width))) {
    throw typeError(`can't multiply sequence by non-int of type '${pythonTypeName(width)}'`)
  }
  let indention = isText(width) ? width : " ".repeat(Math.max(0, Number(width)))
  let newline: string | Markup = "\n"
  if (isMarkup(s)) {
    indention = markup(pythonStr(indention))
    newline = markup("\n")
  }
  // Python's `s += newline`, which also refuses anything but text
  const text = add(s, newline) as string | Markup
  const lines = splitLines(text.toString()).map((line) => sameKind(text, line))
  let result: unknown
  if (truthy(blank)) {
    result = joinWith(add(newline, indention), lines)
  } else {
    result = lines.shift()!
    if (lines.length > 0) {
      const indented = lines.map((line) => line.length > 0 ? add(indention, line) as string | Markup : line)
      result = add(result, add(newline, joinWith(newline, indented)))
    }
  }
  return truthy(first) ? add(indention, result) : result
})

/** Jinja2's `truncate`: untouched up to `length + leeway`, else cut to `length` with `end`, at a space unless `killwords`. */
const truncateText = define(
  "truncate",
  ["s", ["length", 255], ["killwords", false], ["end", "..."], ["leeway", null]],
  (s, length, killwords, end, leeway) => {
    const slack = leeway === null ? 5 : leeway
    const endLength = lengthOf(end)
    if (!compare(length, ">=", endLength)) {
      throw new PythonError("AssertionError", `expected length >= ${endLength}, got ${pythonStr(length)}`)
    }
    if (!compare(slack, ">=", 0)) throw new PythonError("AssertionError", `expected leeway >= 0, got ${pythonStr(slack)}`)
    if (compare(lengthOf(s), "<=", add(length, slack))) return s
    if (!isText(s)) throw missingMethod(s, "rsplit")
    const kept = codePoints(s.toString()).slice(0, Math.max(0, toIndex(length) - endLength)).join("")
    const space = kept.lastIndexOf(" ")
    return add(sameKind(s, truthy(killwords) || space < 0 ? kept : kept.slice(0, space)), end)
  }
)

const WORDS = new RegExp(`[${WORD}]+`, "gu")

const wordcount = define("wordcount", ["s"], (s) => pythonStr(s).match(WORDS)?.length ?? 0)

// Python's textwrap, as Jinja2's `wordwrap` configures it (tabs kept, whitespace kept, whitespace dropped at line ends)
const WRAP_SPACE = "\\t\\n\\x0b\\x0c\\r "
const WORD_PUNCTUATION = `[${WORD}!"'&.,?]`
/** Python's `[^\d\W]`: word characters but decimal digits */
const LETTER = "[\\p{L}\\p{Nl}\\p{No}_]"
/** textwrap's `wordsep_re`: whitespace, em-dashes, and words split after their hyphens */
const WORD_SEPARATOR = new RegExp(
  `([${WRAP_SPACE}]+|(?<=${WORD_PUNCTUATION})-{2,}(?=[${WORD}])|[^${WRAP_SPACE}]+?(?:-(?:(?<=${LETTER}{2}-)|(?<=${LETTER}-${LETTER}-))` +
    `(?=${LETTER}-?${LETTER})|(?=[${WRAP_SPACE}]|$)|(?<=${WORD_PUNCTUATION})(?=-{2,}[${WORD}])))`,
  "u"
)
const SPACE_SEPARATOR = new RegExp(`([${WRAP_SPACE}]+)`)

interface WrapOptions {
  readonly width: number
  readonly breakLongWords: boolean
  /** textwrap splits at hyphens only when this is exactly True, but breaks long words after one when it is true */
  readonly breakOnHyphens: unknown
}

/** textwrap's `_handle_long_word`: as much of the next chunk as fits (after a hyphen if one is there). */
const breakLongWord = (chunks: Array<string>, line: Array<string>, length: number, options: WrapOptions): void => {
  const spaceLeft = options.width < 1 ? 1 : options.width - length
  if (options.breakLongWords) {
    const chunk = codePoints(chunks.at(-1)!)
    let end = spaceLeft
    if (truthy(options.breakOnHyphens) && chunk.length > spaceLeft) {
      const hyphen = chunk.slice(0, spaceLeft).lastIndexOf("-")
      if (hyphen > 0 && chunk.slice(0, hyphen).some((char) => char !== "-")) end = hyphen + 1
    }
    line.push(chunk.slice(0, end).join(""))
    chunks[chunks.length - 1] = chunk.slice(end).join("")
  } else if (line.length === 0) {
    line.push(chunks.pop()!)
  }
}

/** Python's `textwrap.wrap(text)`: lines of at most `width` code points, split between chunks. */
const wrapText = (text: string, options: WrapOptions): Array<string> => {
  if (options.width <= 0) throw valueError(`invalid width ${options.width} (must be > 0)`)
  const isSpace = (chunk: string) => strip(chunk, null) === ""
  const chunks = text.split(options.breakOnHyphens === true ? WORD_SEPARATOR : SPACE_SEPARATOR)
    .filter((chunk) => chunk !== "")
    .reverse()
  const lines: Array<string> = []
  while (chunks.length > 0) {
    const line: Array<string> = []
    let length = 0
    if (isSpace(chunks.at(-1)!) && lines.length > 0) chunks.pop()
    while (chunks.length > 0 && length + textLength(chunks.at(-1)!) <= options.width) {
      length += textLength(chunks.at(-1)!)
      line.push(chunks.pop()!)
    }
    if (chunks.length > 0 && textLength(chunks.at(-1)!) > options.width) {
      breakLongWord(chunks, line, length, options)
    }
    if (line.length > 0 && isSpace(line.at(-1)!)) line.pop()
    if (line.length > 0) lines.push(line.join(""))
  }
  return lines
}

const wordwrap = define(
  "wordwrap",
  ["s", ["width", 79], ["break_long_words", true], ["wrapstring", null], ["break_on_hyphens", true]],
  (s, width, breakLongWords, wrapstring, breakOnHyphens) => {
    if (!isText(s)) throw missingMethod(s, "splitlines")
    if (!isNumeric(width)) throw typeError(`'<=' not supported between instances of '${pythonTypeName(width)}' and 'int'`)
    const separator = wrapstring === null ? "\n" : wrapstring
    const options = { width: Number(width), breakLongWords: truthy(breakLongWords), breakOnHyphens }
    return joinWith(separator, splitLines(s.toString()).map((line) => joinWith(separator, wrapText(line, options))))
  }
)

const format = function(this: FilterContext, ...args: ReadonlyArray<unknown>): string | Markup {
  const { positional, keywords } = splitArguments(args)
  if (positional.length === 0) throw typeError("do_format() missing 1 required positional argument: 'value'")
  if (Object.hasOwn(keywords, "value")) throw typeError("do_format() got multiple values for argument 'value'")
  const [value, ...values] = positional
  const named = Object.keys(keywords).length > 0
  if (named && values.length > 0) throw filterArgumentError("can't handle positional and keyword arguments at the same time")
  // `soft_str(value) % (kwargs or args)`: a Markup format escapes the values it formats
  const operands = named ? keywords : tuple(values)
  return isMarkup(value) ? markup(percentFormat(value.toString(), operands, true)) : percentFormat(pythonStr(value), operands, false)
}

// ---- filters: HTML and URLs ---------------------------------------------------------------------------------------

const escape = define("escape", ["s"], (s) => escapeHtml(s), true)

const forceescape = define("forceescape", ["value"], (value) => markup(escapeText(pythonStr(value))))

const safe = define("safe", ["value"], (value) => isMarkup(value) ? value : markup(pythonStr(value)))

const string = define("soft_str", ["s"], softStr, true)

/** Python's `html.unescape` named references: HTML 4's (with HTML5's values), by name and code point in hex. */
const NAMED_REFERENCES: ReadonlyMap<string, string> = new Map(
  `Aacute:c1 aacute:e1 Acirc:c2 acirc:e2 acute:b4 AElig:c6 aelig:e6 Agrave:c0 agrave:e0 alefsym:2135 Alpha:391
  alpha:3b1 AMP:26 amp:26 and:2227 ang:2220 apos:27 Aring:c5 aring:e5 asymp:2248 Atilde:c3 atilde:e3 Auml:c4
  auml:e4 bdquo:201e Beta:392 beta:3b2 brvbar:a6 bull:2022 cap:2229 Ccedil:c7 ccedil:e7 cedil:b8 cent:a2 Chi:3a7
  chi:3c7 circ:2c6 clubs:2663 cong:2245 COPY:a9 copy:a9 crarr:21b5 cup:222a curren:a4 Dagger:2021 dagger:2020
  dArr:21d3 darr:2193 deg:b0 Delta:394 delta:3b4 diams:2666 divide:f7 Eacute:c9 eacute:e9 Ecirc:ca ecirc:ea
  Egrave:c8 egrave:e8 empty:2205 emsp:2003 ensp:2002 Epsilon:395 epsilon:3b5 equiv:2261 Eta:397 eta:3b7 ETH:d0
  eth:f0 Euml:cb euml:eb euro:20ac exist:2203 fnof:192 forall:2200 frac12:bd frac14:bc frac34:be frasl:2044
  Gamma:393 gamma:3b3 ge:2265 GT:3e gt:3e hArr:21d4 harr:2194 hearts:2665 hellip:2026 Iacute:cd iacute:ed
  Icirc:ce icirc:ee iexcl:a1 Igrave:cc igrave:ec image:2111 infin:221e int:222b Iota:399 iota:3b9 iquest:bf
  isin:2208 Iuml:cf iuml:ef Kappa:39a kappa:3ba Lambda:39b lambda:3bb lang:27e8 laquo:ab lArr:21d0 larr:2190
  lceil:2308 ldquo:201c le:2264 lfloor:230a lowast:2217 loz:25ca lrm:200e lsaquo:2039 lsquo:2018 LT:3c lt:3c
  macr:af mdash:2014 micro:b5 middot:b7 minus:2212 Mu:39c mu:3bc nabla:2207 nbsp:a0 ndash:2013 ne:2260 ni:220b
  not:ac notin:2209 nsub:2284 Ntilde:d1 ntilde:f1 Nu:39d nu:3bd Oacute:d3 oacute:f3 Ocirc:d4 ocirc:f4 OElig:152
  oelig:153 Ograve:d2 ograve:f2 oline:203e Omega:3a9 omega:3c9 Omicron:39f omicron:3bf oplus:2295 or:2228
  ordf:aa ordm:ba Oslash:d8 oslash:f8 Otilde:d5 otilde:f5 otimes:2297 Ouml:d6 ouml:f6 para:b6 part:2202
  permil:2030 perp:22a5 Phi:3a6 phi:3c6 Pi:3a0 pi:3c0 piv:3d6 plusmn:b1 pound:a3 Prime:2033 prime:2032 prod:220f
  prop:221d Psi:3a8 psi:3c8 QUOT:22 quot:22 radic:221a rang:27e9 raquo:bb rArr:21d2 rarr:2192 rceil:2309
  rdquo:201d real:211c REG:ae reg:ae rfloor:230b Rho:3a1 rho:3c1 rlm:200f rsaquo:203a rsquo:2019 sbquo:201a
  Scaron:160 scaron:161 sdot:22c5 sect:a7 shy:ad Sigma:3a3 sigma:3c3 sigmaf:3c2 sim:223c spades:2660 sub:2282
  sube:2286 sum:2211 sup:2283 sup1:b9 sup2:b2 sup3:b3 supe:2287 szlig:df Tau:3a4 tau:3c4 there4:2234 Theta:398
  theta:3b8 thetasym:3d1 thinsp:2009 THORN:de thorn:fe tilde:2dc times:d7 trade:2122 Uacute:da uacute:fa
  uArr:21d1 uarr:2191 Ucirc:db ucirc:fb Ugrave:d9 ugrave:f9 uml:a8 upsih:3d2 Upsilon:3a5 upsilon:3c5 Uuml:dc
  uuml:fc weierp:2118 Xi:39e xi:3be Yacute:dd yacute:fd yen:a5 Yuml:178 yuml:ff Zeta:396 zeta:3b6 zwj:200d
  zwnj:200c`.trim().split(/\s+/).flatMap((entry) => {
    const [name, hex] = entry.split(":") as [string, string]
    const char = String.fromCodePoint(Number.parseInt(hex, 16))
    // HTML5 still reads the Latin-1 ones (but apos) without their semicolon
    return char < "\u0100" && name !== "apos" ? [[`${name};`, char], [name, char]] : [[`${name};`, char]]
  })
)

/** Python's `html.unescape` for numeric references to C1 controls and NUL: Windows-1252's characters, as browsers. */
const C1_REFERENCES = "\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f" +
  "\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178"

/** Code points `html.unescape` drops: controls, noncharacters. */
const isDroppedCodePoint = (code: number): boolean =>
  (code >= 0x1 && code <= 0x8) || code === 0xb || (code >= 0xe && code <= 0x1f) || (code >= 0x7f && code <= 0x9f) ||
  (code >= 0xfdd0 && code <= 0xfdef) || (code & 0xfffe) === 0xfffe

const CHARACTER_REFERENCE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu

/** Python's `html.unescape` (named references limited to HTML 4's). */
const unescapeHtml = (text: string): string =>
  text.replace(CHARACTER_REFERENCE, (_, reference: string) => {
    if (reference.startsWith("#")) {
      const hex = reference[1] === "x" || reference[1] === "X"
      const code = Number.parseInt(reference.slice(hex ? 2 : 1).replace(/;$/, ""), hex ? 16 : 10)
      if (code === 0) return "\ufffd"
      if (code === 0xd) return "\r"
      if (code >= 0x80 && code <= 0x9f) return C1_REFERENCES[code - 0x80]!
      if ((code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) return "\ufffd"
      return isDroppedCodePoint(code) ? "" : String.fromCodePoint(code)
    }
    const exact = NAMED_REFERENCES.get(reference)
    if (exact !== undefined) return exact
    // the longest prefix that is a reference readable without its semicolon
    for (let length = reference.length - 1; length > 1; length--) {
      const prefix = NAMED_REFERENCES.get(reference.slice(0, length))
      if (prefix !== undefined) return prefix + reference.slice(length)
    }
    return `&${reference}`
  })

/** Removes each `open`…`close` span as markupsafe's `striptags` does (an unclosed one stays). */
const removeSpans = (text: string, open: string, close: string): string => {
  let value = text
  for (;;) {
    const start = value.indexOf(open)
    if (start < 0) return value
    const end = value.indexOf(close, start)
    if (end < 0) return value
    value = value.slice(0, start) + value.slice(end + close.length)
  }
}

/** markupsafe's `striptags`: comments and tags removed, whitespace collapsed, then entities unescaped (plain text). */
const striptags = define("striptags", ["value"], (value) => {
  const text = removeSpans(removeSpans(pythonStr(value), "<!--", "-->"), "<", ">")
  return unescapeHtml(splitWords(text).join(" "))
})

/** Jinja2's `url_quote`: UTF-8 percent-encoding; in a query string `/` is encoded too and a space is `+`. */
const urlQuote = (value: unknown, forQuery: boolean): string => {
  const text = pythonStr(value)
  if (/\p{Cs}/u.test(text)) throw new PythonError("UnicodeEncodeError", "'utf-8' codec can't encode a surrogate")
  let quoted = ""
  for (const byte of new TextEncoder().encode(text)) {
    const char = String.fromCharCode(byte)
    quoted += /[A-Za-z0-9_.~-]/.test(char) || (!forQuery && char === "/")
      ? char
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return forQuery ? quoted.replaceAll("%20", "+") : quoted
}

const urlencode = define("urlencode", ["value"], (value) => {
  if (isText(value) || !isIterable(value)) return urlQuote(value, false)
  const pairs = isDict(value) ? Object.entries(value) : iterate(value).map((item) => unpack(item, 2))
  return pairs.map(([key, item]) => `${urlQuote(key, true)}=${urlQuote(item, true)}`).join("&")
})

const HTTP_URL = new RegExp(
  `^((https?://|www\\.)(([${WORD}%-]+\\.)+)?([a-z]{2,63}|xn--[${WORD}%]{2,59})|([${WORD}%-]{2,63}\\.)+` +
    `(com|net|int|edu|gov|org|info|mil)|(https?://)(((\\p{Nd}{1,3})(\\.\\p{Nd}{1,3}){3})|` +
    `(\\[([\\p{Nd}a-f]{0,4}:){2}([\\p{Nd}a-f]{0,4}:?){1,6}\\])))(?::\\p{Nd}{1,5})?(?:[/?#][^${SPACE}]*)?$`,
  "iu"
)
const EMAIL = new RegExp(`^[^${SPACE}]+@[${WORD}][${WORD}.-]*\\.[${WORD}]+$`, "u")
const URI_SCHEME = /^[\p{L}\p{N}_.+-]{2,}:(\/){0,2}$/u
const SPACE_RUN = new RegExp(`([${SPACE}]+)`, "u")

const occurrences = (text: string, part: string): number => text.split(part).length - 1

/** Jinja2's `utils.urlize` on one whitespace-separated word of escaped text. */
const linkWord = (word: string, attributes: string, trimUrl: (url: string) => string, extraSchemes: ReadonlyArray<string>): string => {
  let [head, middle, tail] = ["", word, ""]
  const lead = /^([(<]|&lt;)+/.exec(middle)
  if (lead !== null) {
    head = lead[0]
    middle = middle.slice(head.length)
  }
  const trail = /([)>.,\n]|&gt;)+$/.exec(middle)
  if (trail !== null) {
    tail = trail[0]
    middle = middle.slice(0, trail.index)
  }
  // parentheses and brackets balanced within the URL rather than left out of it
  for (const [open, close] of [["(", ")"], ["<", ">"], ["&lt;", "&gt;"]] as const) {
    const opened = occurrences(middle, open)
    if (opened <= occurrences(middle, close)) continue
    for (let moved = Math.min(opened, occurrences(tail, close)); moved > 0; moved--) {
      const end = tail.indexOf(close) + close.length
      middle += tail.slice(0, end)
      tail = tail.slice(end)
    }
  }
  if (HTTP_URL.test(middle)) {
    const href = middle.startsWith("https://") || middle.startsWith("http://") ? middle : `https://${middle}`
    middle = `<a href="${href}"${attributes}>${trimUrl(middle)}</a>`
  } else if (middle.startsWith("mailto:") && EMAIL.test(middle.slice(7))) {
    middle = `<a href="${middle}">${middle.slice(7)}</a>`
  } else if (middle.includes("@") && !middle.startsWith("www.") && !middle.startsWith("@") && !middle.includes(":") && EMAIL.test(middle)) {
    middle = `<a href="mailto:${middle}">${middle}</a>`
  } else {
    for (const scheme of extraSchemes) {
      if (middle !== scheme && middle.startsWith(scheme)) middle = `<a href="${middle}"${attributes}>${middle}</a>`
    }
  }
  return head + middle + tail
}

/** Jinja2's `urlize` with its default policies (`rel="noopener"`, no target). */
const urlize = define(
  "urlize",
  ["value", ["trim_url_limit", null], ["nofollow", false], ["target", null], ["rel", null], ["extra_schemes", null]],
  function(value, trimUrlLimit, nofollow, target, rel, extraSchemes) {
    const relParts = new Set(truthy(rel) ? splitWords(pythonStr(rel)) : [])
    if (truthy(nofollow)) relParts.add("nofollow")
    relParts.add("noopener")
    const schemes = extraSchemes === null ? [] : iterate(extraSchemes).map(pythonStr)
    const invalid = schemes.find((scheme) => !URI_SCHEME.test(scheme))
    if (invalid !== undefined) throw filterArgumentError(`${pythonRepr(invalid)} is not a valid URI scheme prefix.`)
    const attributes = ` rel="${escapeText([...relParts].sort().join(" "))}"` +
      (truthy(target) ? ` target="${escapeHtml(target).toString()}"` : "")
    const trimUrl = (url: string): string =>
      trimUrlLimit !== null && compare(textLength(url), ">", trimUrlLimit)
        ? `${codePoints(url).slice(0, toIndex(trimUrlLimit)).join("")}...`
        : url
    const linked = escapeHtml(value).toString().split(SPACE_RUN)
      .map((word, index) => index % 2 === 1 ? word : linkWord(word, attributes, trimUrl, schemes))
      .join("")
    return autoescapes(this) ? markup(linked) : linked
  }
)

/** An attribute name must not contain ASCII whitespace, `/`, `>` or `=`. */
const INVALID_ATTRIBUTE_NAME = /[ \t\n\r\f\v/>=]/

const xmlattr = define("xmlattr", ["d", ["autospace", true]], function(d, autospace) {
  const attributes = dictItems(d)
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([key, value]) => {
      if (INVALID_ATTRIBUTE_NAME.test(pythonStr(key))) throw valueError(`Invalid character in attribute name: ${pythonRepr(key)}`)
      return `${escapeHtml(key).toString()}="${escapeHtml(value).toString()}"`
    })
    .join(" ")
  const text = truthy(autospace) && attributes !== "" ? ` ${attributes}` : attributes
  return autoescapes(this) ? markup(text) : text
})

const JSON_ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "\"": "\\\"",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t"
}

/** Python's JSON string with `ensure_ascii`: anything outside printable ASCII as `\u` escapes (UTF-16 units). */
const jsonString = (text: string): string =>
  `"${text.replace(/[\\"]|[^ -~]/g, (char) => JSON_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`)}"`

/** Python's `json.dumps(value, indent=indent)` (Zulip's `dumps_kwargs` is empty: keys in their order). */
const jsonDumps = (value: unknown, indent: unknown): string => {
  const unit = indent === null ? null : isText(indent) ? indent.toString() : " ".repeat(Math.max(0, toIndex(indent)))
  const container = (open: string, close: string, parts: ReadonlyArray<string>, level: number): string => {
    if (parts.length === 0) return open + close
    if (unit === null) return `${open}${parts.join(", ")}${close}`
    const [inner, outer] = [`\n${unit.repeat(level + 1)}`, `\n${unit.repeat(level)}`]
    return `${open}${inner}${parts.join(`,${inner}`)}${outer}${close}`
  }
  const encode = (item: unknown, level: number): string => {
    if (item === null) return "null"
    if (typeof item === "boolean") return item ? "true" : "false"
    if (typeof item === "number") {
      return Number.isNaN(item) ? "NaN" : Number.isFinite(item) ? pythonStr(item) : item > 0 ? "Infinity" : "-Infinity"
    }
    if (isText(item)) return jsonString(item.toString())
    if (Array.isArray(item)) return container("[", "]", item.map((element) => encode(element, level + 1)), level)
    if (isDict(item)) {
      return container("{", "}", Object.entries(item).map(([key, element]) => `${jsonString(key)}: ${encode(element, level + 1)}`), level)
    }
    throw typeError(`Object of type ${pythonTypeName(item)} is not JSON serializable`)
  }
  return encode(value, 0)
}

/** Jinja2's `tojson`: JSON safe inside HTML and `<script>` (`< > & '` as `\u` escapes), as Markup. */
const tojson = define("tojson", ["value", ["indent", null]], (value, indent) =>
  markup(jsonDumps(value, indent).replace(/[<>&']/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`)))

// ---- filters: numbers ---------------------------------------------------------------------------------------------

const abs = define("abs", ["x"], (x) => {
  if (!isNumeric(x)) throw typeError(`bad operand type for abs(): '${pythonTypeName(x)}'`)
  return Math.abs(Number(x))
}, true)

/** Jinja2's `int`: Python's `int(value, base)` for text, else `int(value)`, then `int(float(value))`, else `default`. */
const toInteger = define("int", ["value", ["default", 0], ["base", 10]], (value, fallback, base) => {
  try {
    if (!isText(value)) return intOf(value)
    const radix = toIndex(base)
    if (radix !== 0 && (radix < 2 || radix > 36)) throw valueError("int() base must be >= 2 and <= 36, or 0")
    const number = parseIntText(value.toString(), radix)
    if (number === null) throw valueError(`invalid literal for int() with base ${radix}: ${pythonRepr(value.toString())}`)
    return number
  } catch (error) {
    if (!raisedAs(error, "TypeError", "ValueError")) throw error
  }
  try {
    return intOf(toFloat(value))
  } catch (error) {
    if (!raisedAs(error, "TypeError", "ValueError", "OverflowError")) throw error
    return fallback
  }
})

const toFloatOr = define("float", ["value", ["default", 0]], (value, fallback) => {
  try {
    return toFloat(value)
  } catch (error) {
    if (!raisedAs(error, "TypeError", "ValueError")) throw error
    return fallback
  }
})

/**
 * Jinja2's `round`: Python's `round(value, precision)` ("common": half to even, from the exact binary value, so 2.675
 * rounds to 2.67), or `math.floor`/`math.ceil` of the value scaled by `10 ** precision`.
 */
const round = define("round", ["value", ["precision", 0], ["method", "common"]], (value, precision, method) => {
  if (!["common", "ceil", "floor"].some((name) => equals(method, name))) {
    throw filterArgumentError("method must be common, ceil or floor")
  }
  if (equals(method, "common")) {
    if (!isNumeric(value)) throw typeError(`type ${pythonTypeName(value)} doesn't define __round__ method`)
    const number = Number(value)
    // `round(x, None)` is an int: OverflowError and ValueError for the infinities and NaN
    if (precision === null) return Number.isFinite(number) ? Number(roundDecimal(number, 0)) : intOf(number)
    const digits = toIndex(precision)
    return Number.isFinite(number) ? Number(roundDecimal(number, digits)) : number
  }
  if (precision === undefined || value === undefined) throw undefinedError()
  if (!isNumeric(precision)) throw typeError(`unsupported operand type(s) for ** or pow(): 'int' and '${pythonTypeName(precision)}'`)
  if (!isNumeric(value)) throw typeError(`must be real number, not ${pythonTypeName(value)}`)
  const exponent = Number(precision)
  const scale = Number.isInteger(exponent) ? powerOfTen(exponent) : 10 ** exponent
  const scaled = Number(value) * scale
  return intOf(equals(method, "floor") ? Math.floor(scaled) : Math.ceil(scaled)) / scale
})

const filesizeformat = define("filesizeformat", ["value", ["binary", false]], (value, binary) => {
  const bytes = toFloat(value)
  const base = truthy(binary) ? 1024 : 1000
  const prefixes = truthy(binary)
    ? ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    : ["kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
  if (bytes === 1) return "1 Byte"
  if (bytes < base) return `${integerText(intOf(bytes))} Bytes`
  const unitOf = (index: number): bigint => BigInt(base) ** BigInt(index + 2)
  // Python compares with the exact integer power, which a double may round
  const below = (unit: bigint) => Number.isInteger(bytes) ? BigInt(bytes) < unit : bytes < Number(unit)
  const fitting = prefixes.findIndex((_, index) => below(unitOf(index)))
  const index = fitting < 0 ? prefixes.length - 1 : fitting
  return `${fixed((base * bytes) / Number(unitOf(index)), 1)} ${prefixes[index]}`
})

// ---- filters: sequences -------------------------------------------------------------------------------------------

const length = define("len", ["obj"], lengthOf, true)

const list = define("list", ["value"], (value) => [...iterate(value)])

const first = define("first", ["seq"], (seq) => iterate(seq)[0])

const last = define("last", ["seq"], (seq) => {
  if (seq === undefined) return undefined
  if (isText(seq) || Array.isArray(seq)) return lengthOf(seq) === 0 ? undefined : itemAt(seq, -1)
  if (isDict(seq)) return Object.keys(seq).at(-1)
  throw typeError(`'${pythonTypeName(seq)}' object is not reversible`)
})

const random = define("random", ["seq"], (seq) => {
  const size = lengthOf(seq)
  return size === 0 ? undefined : itemAt(seq, Math.floor(Math.random() * size))
})

const reverse = define("reverse", ["value"], (value) => {
  if (isText(value)) return sameKind(value, codePoints(value.toString()).reverse().join(""))
  try {
    return [...iterate(value)].reverse()
  } catch (error) {
    if (raisedAs(error, "TypeError")) throw filterArgumentError("argument must be iterable")
    throw error
  }
})

const sort = define(
  "sort",
  ["value", ["reverse", false], ["case_sensitive", false], ["attribute", null]],
  (value, reverse, caseSensitive, attribute) =>
    sortBy(iterate(value), multiAttributeGetter(attribute, caseFolding(caseSensitive)), truthy(reverse))
)

const unique = define("unique", ["value", ["case_sensitive", false], ["attribute", null]], (value, caseSensitive, attribute) => {
  const key = attributeGetter(attribute, null, caseFolding(caseSensitive))
  const seen: Array<unknown> = []
  return iterate(value).filter((item) => {
    const itemKey = key(item)
    requireHashable(itemKey)
    if (seen.some((known) => equals(known, itemKey))) return false
    seen.push(itemKey)
    return true
  })
})

/** Jinja2's `min`/`max`: the first item whose key is smallest/largest; Undefined for an empty sequence. */
const extreme = (name: string, operator: "<" | ">") =>
  define(name, ["value", ["case_sensitive", false], ["attribute", null]], (value, caseSensitive, attribute) => {
    const items = iterate(value)
    if (items.length === 0) return undefined
    const key = attributeGetter(attribute, null, caseFolding(caseSensitive))
    let [best, bestKey] = [items[0], key(items[0])]
    for (const item of items.slice(1)) {
      const itemKey = key(item)
      if (compare(itemKey, operator, bestKey)) [best, bestKey] = [item, itemKey]
    }
    return best
  })

const sum = define("sum", ["iterable", ["attribute", null], ["start", 0]], (iterable, attribute, start) => {
  if (isText(start)) throw typeError("sum() can't sum strings [use ''.join(seq) instead]")
  const getter = attribute === null ? (item: unknown) => item : attributeGetter(attribute)
  return iterate(iterable).reduce((total: unknown, item) => add(total, getter(item)), start)
})

/** Jinja2's `join`: items as `str()`; where output is escaped, Markup among them (or as separator) escapes the rest. */
const join = define("join", ["value", ["d", ""], ["attribute", null]], function(value, separator, attribute) {
  const items = attribute === null ? iterate(value) : iterate(value).map(attributeGetter(attribute))
  if (!autoescapes(this) || (!isMarkup(separator) && !items.some(isMarkup))) {
    return items.map(pythonStr).join(pythonStr(separator))
  }
  return markup(items.map((item) => escapeHtml(item).toString()).join(escapeHtml(separator).toString()))
})

/** Jinja2's `batch`: lists of `linecount` items, the last one filled up with `fill_with` unless that is None. */
const batch = define("batch", ["value", "linecount", ["fill_with", null]], (value, linecount, fillWith) => {
  const rows: Array<Array<unknown>> = []
  let row: Array<unknown> = []
  for (const item of iterate(value)) {
    if (equals(row.length, linecount)) {
      rows.push(row)
      row = []
    }
    row.push(item)
  }
  if (row.length > 0) {
    if (fillWith !== null && compare(row.length, "<", linecount)) {
      row.push(...Array.from({ length: toIndex(linecount) - row.length }, () => fillWith))
    }
    rows.push(row)
  }
  return rows
})

/** Jinja2's `slice`: `slices` columns, the first ones one item longer; the others filled with `fill_with` unless None. */
const sliceColumns = define("slice", ["value", "slices", ["fill_with", null]], (value, slices, fillWith) => {
  const items = iterate(value)
  const count = toIndex(slices)
  const perSlice = arithmetic("//", items.length, count) as number
  const withExtra = arithmetic("%", items.length, count) as number
  const columns: Array<Array<unknown>> = []
  let offset = 0
  for (let column = 0; column < count; column++) {
    const start = offset + column * perSlice
    if (column < withExtra) offset++
    const taken = slice(items, start, offset + (column + 1) * perSlice, null) as Array<unknown>
    if (fillWith !== null && column >= withExtra) taken.push(fillWith)
    columns.push(taken)
  }
  return columns
})

/** Jinja2's `groupby`: `(grouper, list)` tuples in key order; case-insensitive, the grouper is the first item's value. */
const groupby = define(
  "groupby",
  ["value", "attribute", ["default", null], ["case_sensitive", false]],
  (value, attribute, fallback, caseSensitive) => {
    const key = attributeGetter(attribute, fallback, caseFolding(caseSensitive))
    const groups: Array<[unknown, Array<unknown>]> = []
    for (const item of sortBy(iterate(value), key, false)) {
      const itemKey = key(item)
      const group = groups.at(-1)
      if (group !== undefined && equals(group[0], itemKey)) group[1].push(item)
      else groups.push([itemKey, [item]])
    }
    const grouper = truthy(caseSensitive) ? null : attributeGetter(attribute, fallback)
    return groups.map(([groupKey, items]) => namedTuple(["grouper", "list"], [grouper === null ? groupKey : grouper(items[0]), items]))
  }
)

// ---- filters: mappings and attributes -----------------------------------------------------------------------------

const defaultValue = define("default", ["value", ["default_value", ""], ["boolean", false]], (value, fallback, boolean) =>
  value === undefined || (truthy(boolean) && !truthy(value)) ? fallback : value)

const items = define("items", ["value"], (value) => {
  if (value === undefined) return []
  if (!isDict(value)) throw typeError("Can only get item pairs from a mapping.")
  return dictItems(value)
})

const dictsort = define(
  "dictsort",
  ["value", ["case_sensitive", false], ["by", "key"], ["reverse", false]],
  (value, caseSensitive, by, reverse) => {
    const position = equals(by, "key") ? 0 : equals(by, "value") ? 1 : null
    if (position === null) throw filterArgumentError("You can only sort by either \"key\" or \"value\"")
    const fold = caseFolding(caseSensitive) ?? ((item: unknown) => item)
    return sortBy(dictItems(value), (pair) => fold(pair[position]), truthy(reverse))
  }
)

/** Jinja2's `attr`: an attribute only, never an item: a dict's keys and a list's indexes are not attributes. */
const attr = define("attr", ["obj", "name"], (obj, name) => {
  if (!isText(name)) throw typeError("attribute name must be string")
  const key = name.toString()
  if (isDict(obj) && Object.hasOwn(obj, key)) return undefined
  if ((Array.isArray(obj) || isText(obj)) && /^-?\d+$/.test(key)) return undefined
  return getAttribute(obj, key, key)
})

// ---- filters: calling filters and tests ---------------------------------------------------------------------------

const named = (context: FilterContext, kind: "filter" | "test", name: unknown): Function => {
  if (name === undefined) throw undefinedError()
  const table = kind === "filter" ? context.env.filters : context.env.tests
  if (!isText(name) || !Object.hasOwn(table, name.toString())) {
    throw new PythonError("TemplateRuntimeError", `No ${kind} named ${pythonRepr(name)}.`)
  }
  return table[name.toString()]!
}

/** Jinja2's `map`: each item through a filter, or its `attribute` (`default` for Undefined). Nothing for a false value. */
const map = function(this: FilterContext, value: unknown, ...args: ReadonlyArray<unknown>): Array<unknown> {
  if (!truthy(value)) return []
  const { positional, keywords } = splitArguments(args)
  if (positional.length === 0 && Object.hasOwn(keywords, "attribute")) {
    const { attribute, default: fallback = null, ...unexpected } = keywords
    const extra = Object.keys(unexpected)[0]
    if (extra !== undefined) throw filterArgumentError(`Unexpected keyword argument '${extra}'`)
    return iterate(value).map(attributeGetter(attribute, fallback))
  }
  if (positional.length === 0) throw filterArgumentError("map requires a filter argument")
  const [name, ...filterArgs] = positional
  const filter = named(this, "filter", name)
  return iterate(value).map((item) => filter.call(this, item, ...joinArguments(filterArgs, keywords)))
}

/**
 * Jinja2's `select`/`reject` (`byAttribute`: `selectattr`/`rejectattr`): the items (or their attribute) for which a
 * test, or truth without one, is `keep`. Nothing for a false value.
 */
const selection = (keep: boolean, byAttribute: boolean) =>
  function(this: FilterContext, value: unknown, ...args: ReadonlyArray<unknown>): Array<unknown> {
    if (!truthy(value)) return []
    const { positional, keywords } = splitArguments(args)
    if (byAttribute && positional.length === 0) throw filterArgumentError("Missing parameter for attribute name")
    const subject = byAttribute ? attributeGetter(positional[0]) : (item: unknown) => item
    const offset = byAttribute ? 1 : 0
    let passes = truthy
    if (positional.length > offset) {
      const test = named(this, "test", positional[offset])
      const testArgs = joinArguments(positional.slice(offset + 1), keywords)
      passes = (item) => truthy(test.call(this, item, ...testArgs))
    }
    return iterate(value).filter((item) => passes(subject(item)) === keep)
  }

// ---- filters: pprint ----------------------------------------------------------------------------------------------

const PPRINT_WIDTH = 80

const sortedEntries = (dict: Record<string, unknown>): Array<[string, unknown]> => sortBy(Object.entries(dict), ([key]) => key, false)

/** `repr()` as `pprint` writes it: dict keys sorted. */
const sortedRepr = (value: unknown): string => {
  if (value === undefined) return "Undefined"
  if (isDict(value)) return `{${sortedEntries(value).map(([key, item]) => `${pythonRepr(key)}: ${sortedRepr(item)}`).join(", ")}}`
  if (value instanceof PyTuple) return value.length === 1 ? `(${sortedRepr(value[0])},)` : `(${value.map(sortedRepr).join(", ")})`
  if (Array.isArray(value)) return `[${value.map(sortedRepr).join(", ")}]`
  return pythonRepr(value)
}

const NONSPACE_THEN_SPACE = new RegExp(`[^${SPACE}]*[${SPACE}]*`, "gu")

/** Python's `pprint.pformat`: the repr, or, when it is wider than 80, dicts, lists, tuples and strings split over lines. */
const prettyFormat = (value: unknown): string => {
  let out = ""
  const write = (text: string): void => {
    out += text
  }
  const format = (item: unknown, indent: number, allowance: number, level: number): void => {
    const rep = sortedRepr(item)
    if (textLength(rep) <= PPRINT_WIDTH - indent - allowance) return write(rep)
    if (isDict(item)) {
      write("{")
      formatEntries(sortedEntries(item), indent, allowance + 1, level + 1)
      write("}")
    } else if (item instanceof PyTuple) {
      const end = item.length === 1 ? ",)" : ")"
      write("(")
      formatItems(item, indent, allowance + end.length, level + 1)
      write(end)
    } else if (Array.isArray(item)) {
      write("[")
      formatItems(item, indent, allowance + 1, level + 1)
      write("]")
    } else if (typeof item === "string") {
      formatString(item, indent, allowance, level + 1)
    } else {
      write(rep)
    }
  }
  const formatItems = (items: ReadonlyArray<unknown>, indent: number, allowance: number, level: number): void => {
    items.forEach((item, index) => {
      if (index > 0) write(`,\n${" ".repeat(indent + 1)}`)
      format(item, indent + 1, index === items.length - 1 ? allowance : 1, level)
    })
  }
  const formatEntries = (entries: ReadonlyArray<[string, unknown]>, indent: number, allowance: number, level: number): void => {
    entries.forEach(([key, item], index) => {
      const keyRep = pythonRepr(key)
      write(`${keyRep}: `)
      format(item, indent + 1 + textLength(keyRep) + 2, index === entries.length - 1 ? allowance : 1, level)
      if (index < entries.length - 1) write(`,\n${" ".repeat(indent + 1)}`)
    })
  }
  const formatString = (text: string, indent: number, allowance: number, level: number): void => {
    const [start, room] = level === 1 ? [indent + 1, allowance + 1] : [indent, allowance]
    const maxWidth = PPRINT_WIDTH - start
    const lines = splitLines(text, true)
    const chunks: Array<string> = []
    let rep = ""
    lines.forEach((line, lineIndex) => {
      const lastLine = lineIndex === lines.length - 1
      rep = pythonRepr(line)
      if (textLength(rep) <= maxWidth - (lastLine ? room : 0)) return void chunks.push(rep)
      // words with their following whitespace, gathered into chunks that fit
      const parts = [...line.matchAll(NONSPACE_THEN_SPACE)].map((match) => match[0]).slice(0, -1)
      let current = ""
      parts.forEach((part, partIndex) => {
        const candidate = current + part
        const width = maxWidth - (lastLine && partIndex === parts.length - 1 ? room : 0)
        if (textLength(pythonRepr(candidate)) > width) {
          if (current !== "") chunks.push(pythonRepr(current))
          current = part
        } else {
          current = candidate
        }
      })
      if (current !== "") chunks.push(pythonRepr(current))
    })
    // (pprint writes the last line's repr when there is a single chunk)
    if (chunks.length === 1) return write(rep)
    if (level === 1) write("(")
    write(chunks.join(`\n${" ".repeat(start)}`))
    if (level === 1) write(")")
  }
  format(value, 0, 0, 0)
  return out
}

const pprint = define("pprint", ["value"], prettyFormat)

// ---- Zulip's filters ----------------------------------------------------------------------------------------------

/** Django's `pluralize`: the singular suffix when `float(value) == 1` (else by `len`), nothing for anything else. */
const pluralize = define("pluralize", ["value", ["arg", "s"]], (value, arg) => {
  const suffixes = contains(arg, ",") ? arg : add(",", arg)
  if (!isText(suffixes)) throw missingMethod(suffixes, "split")
  const bits = suffixes.toString().split(",")
  if (bits.length > 2) return ""
  const [singular, plural] = bits as [string, string]
  try {
    return toFloat(value) === 1 ? singular : plural
  } catch (error) {
    if (raisedAs(error, "ValueError")) return ""
    if (!raisedAs(error, "TypeError")) throw error
  }
  try {
    return lengthOf(value) === 1 ? singular : plural
  } catch (error) {
    if (raisedAs(error, "TypeError")) return ""
    throw error
  }
})

const SLUG_REMOVED = new RegExp(`[^\\w${SPACE}-]`, "gu")
const SLUG_SEPARATORS = new RegExp(`[-${SPACE}]+`, "gu")

/** Django's `slugify`: ASCII only, lower-cased, punctuation removed, whitespace and dashes as one `-`. */
const slugify = define("slugify", ["value"], (value) =>
  strip(
    pythonStr(value).normalize("NFKD").replace(/[^\x00-\x7f]/g, "").toLowerCase().replace(SLUG_REMOVED, "").replace(SLUG_SEPARATORS, "-"),
    "-_"
  ))

/** Zulip's `display_list`: "a, b and c", or "a, b and 3 others" beyond `display_limit`. */
const displayList = define("display_list", ["values", "display_limit"], (values, limit) => {
  const count = lengthOf(values)
  if (count === 1) return pythonStr(itemAt(values, 0))
  const listed = (stop: unknown) => iterate(slice(values, null, stop, null)).map(pythonStr).join(", ")
  if (compare(count, "<=", limit)) return `${listed(-1)} and ${pythonStr(itemAt(values, -1))}`
  const others = arithmetic("-", count, limit)
  // a slice bound must be an int (`values[:1.5]` is a TypeError)
  return `${listed(toIndex(limit))} and ${pythonStr(others)} other${equals(count, add(limit, 1)) ? "" : "s"}`
})

type Filter = (this: FilterContext, ...args: ReadonlyArray<unknown>) => unknown

/** Jinja2's built-in filters, and Zulip's. */
export const jinjaFilters: Record<string, Filter> = {
  abs,
  attr,
  batch,
  capitalize,
  center,
  count: length,
  d: defaultValue,
  default: defaultValue,
  dictsort,
  e: escape,
  escape,
  filesizeformat,
  first,
  float: toFloatOr,
  forceescape,
  format,
  groupby,
  indent,
  int: toInteger,
  join,
  last,
  length,
  list,
  lower,
  items,
  map,
  min: extreme("min", "<"),
  max: extreme("max", ">"),
  pprint,
  random,
  reject: selection(false, false),
  rejectattr: selection(false, true),
  replace,
  reverse,
  round,
  safe,
  select: selection(true, false),
  selectattr: selection(true, true),
  slice: sliceColumns,
  sort,
  string,
  striptags,
  sum,
  title,
  trim,
  truncate: truncateText,
  unique,
  upper,
  urlencode,
  urlize,
  wordcount,
  wordwrap,
  xmlattr,
  tojson,
  pluralize,
  slugify,
  display_list: displayList
}

// ---- tests --------------------------------------------------------------------------------------------------------

type Test = (this: FilterContext, ...args: ReadonlyArray<unknown>) => boolean

/** Python's `str.islower()`/`isupper()`: a cased character, and none of the other case (nor titlecase). */
const hasOnlyCase = (text: string, cased: RegExp, other: RegExp): boolean => cased.test(text) && !other.test(text)

const isMember = (context: FilterContext, table: "filters" | "tests", value: unknown): boolean => {
  requireHashable(value)
  return isText(value) && Object.hasOwn(context.env[table], value.toString())
}

/** Python's `operator` functions (`eq`, `lt`, …) as tests: two values, positional only. */
const comparison = (operator: string): Test =>
  define(operator, ["a", "b"], (left, right) => compare(left, operator, right), true)

const equalTo = comparison("==")
const notEqualTo = comparison("!=")
const lessThan = comparison("<")
const lessOrEqual = comparison("<=")
const greaterThan = comparison(">")
const greaterOrEqual = comparison(">=")

/** Jinja2's tests. Undefined is iterable, a sequence and callable, as Jinja2's `Undefined` object is. */
export const jinjaTests: Record<string, Test> = {
  odd: define("test_odd", ["value"], (value) => equals(arithmetic("%", value, 2), 1)),
  even: define("test_even", ["value"], (value) => equals(arithmetic("%", value, 2), 0)),
  divisibleby: define("test_divisibleby", ["value", "num"], (value, num) => equals(arithmetic("%", value, num), 0)),
  defined: define("test_defined", ["value"], (value) => value !== undefined),
  undefined: define("test_undefined", ["value"], (value) => value === undefined),
  filter: define("test_filter", ["value"], function(value) {
    return isMember(this, "filters", value)
  }),
  test: define("test_test", ["value"], function(value) {
    return isMember(this, "tests", value)
  }),
  none: define("test_none", ["value"], (value) => value === null),
  boolean: define("test_boolean", ["value"], (value) => typeof value === "boolean"),
  false: define("test_false", ["value"], (value) => value === false),
  true: define("test_true", ["value"], (value) => value === true),
  integer: define("test_integer", ["value"], (value) => typeof value === "number" && Number.isInteger(value)),
  float: define("test_float", ["value"], (value) => typeof value === "number" && !Number.isInteger(value)),
  lower: define("test_lower", ["value"], (value) => hasOnlyCase(pythonStr(value), /\p{Lowercase}/u, /[\p{Uppercase}\p{Lt}]/u)),
  upper: define("test_upper", ["value"], (value) => hasOnlyCase(pythonStr(value), /\p{Uppercase}/u, /[\p{Lowercase}\p{Lt}]/u)),
  string: define("test_string", ["value"], isText),
  mapping: define("test_mapping", ["value"], isDict),
  number: define("test_number", ["value"], isNumeric),
  sequence: define("test_sequence", ["value"], (value) => value === undefined || isText(value) || Array.isArray(value) || isDict(value)),
  iterable: define("test_iterable", ["value"], isIterable),
  callable: define("callable", ["obj"], (obj) => obj === undefined || typeof obj === "function", true),
  // `is`: the same object (each Undefined is a new one)
  sameas: define("test_sameas", ["value", "other"], (value, other) => value !== undefined && Object.is(value, other)),
  escaped: define("test_escaped", ["value"], isMarkup),
  in: define("test_in", ["value", "seq"], (value, seq) => contains(seq, value)),
  "==": equalTo,
  eq: equalTo,
  equalto: equalTo,
  "!=": notEqualTo,
  ne: notEqualTo,
  "<": lessThan,
  lt: lessThan,
  lessthan: lessThan,
  "<=": lessOrEqual,
  le: lessOrEqual,
  ">": greaterThan,
  gt: greaterThan,
  greaterthan: greaterThan,
  ">=": greaterOrEqual,
  ge: greaterOrEqual
}
