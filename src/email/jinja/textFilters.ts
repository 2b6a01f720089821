/** Jinja2's text filters. */
import {
  add,
  compare,
  escapeHtml,
  isMarkup,
  type Markup,
  markup,
  percentFormat,
  PythonError,
  pythonStr,
  pythonTypeName,
  truthy,
  tuple
} from "./python.ts"
import {
  type FilterContext,
  autoescapes,
  splitArguments,
  define,
  typeError,
  valueError,
  filterArgumentError,
  undefinedError,
  missingMethod,
  isText,
  softStr,
  sameKind,
  codePoints,
  textLength,
  SPACE,
  WORD,
  strip,
  splitLines,
  replaceText,
  joinWith,
  titleCaseOf,
  isNumeric,
  toIndex,
  lengthOf
} from "./filterSupport.ts"

// ---- filters: text ------------------------------------------------------------------------------------------------

export const upper = define("upper", ["s"], (s) => sameKind(s, pythonStr(s).toUpperCase()))

export const lower = define("lower", ["s"], (s) => sameKind(s, pythonStr(s).toLowerCase()))

export const capitalize = define("capitalize", ["s"], (s) => {
  const text = pythonStr(s)
  const first = codePoints(text)[0]
  if (first === undefined) return sameKind(s, "")
  // the rest lower-cased in place, so that a final sigma is seen as final
  return sameKind(s, titleCaseOf(first) + text.toLowerCase().slice(first.toLowerCase().length))
})

const WORD_BEGINNING = new RegExp(`([-${SPACE}({\\[<]+)`, "u")

/** Jinja2's `title`: each word's first letter upper-cased, after whitespace or `- ( { [ <` only (so "it's" → "It's"). */
export const title = define("title", ["s"], (s) =>
  pythonStr(s).split(WORD_BEGINNING).filter((item) => item !== "").map((item) => {
    const [first = "", ...rest] = codePoints(item)
    return first.toUpperCase() + rest.join("").toLowerCase()
  }).join(""))

export const trim = define("trim", ["value", ["chars", null]], (value, chars) => sameKind(value, strip(pythonStr(value), chars)))

export const center = define("center", ["value", ["width", 80]], (value, width) => {
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
export const replace = define("replace", ["s", "old", "new", ["count", null]], function(s, old, replacement, count) {
  const limit = count === null ? -1 : toIndex(count)
  if (!autoescapes(this)) return replaceText(pythonStr(s), pythonStr(old), pythonStr(replacement), limit)
  const subject = isMarkup(old) || (isMarkup(replacement) && !isMarkup(s)) ? escapeHtml(s) : softStr(s)
  if (isMarkup(subject)) {
    return markup(replaceText(subject.toString(), pythonStr(old), escapeHtml(replacement).toString(), limit))
  }
  return replaceText(subject, pythonStr(old), pythonStr(replacement), limit)
})

/** Jinja2's `indent`: every line but the first (unless `first`) and blank ones (unless `blank`) indented. */
export const indent = define("indent", ["s", ["width", 4], ["first", false], ["blank", false]], (s, width, first, blank) => {
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
export const truncateText = define(
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

export const wordcount = define("wordcount", ["s"], (s) => pythonStr(s).match(WORDS)?.length ?? 0)

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

export const wordwrap = define(
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

export const format = function(this: FilterContext, ...args: ReadonlyArray<unknown>): string | Markup {
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
