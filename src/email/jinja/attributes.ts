/**
 * Attribute and item lookups: a dict's own keys and a short list of Python methods (never JavaScript's prototype
 * chain), `str.format()`, slicing, unpacking and iteration.
 */
import nunjucks from "nunjucks"
import { fixed } from "./decimal.ts"
import { exponential, general } from "./percentFormat.ts"
import { escapeText, pythonRepr, pythonStr, stringRepr } from "./printing.ts"
import { equals, requireDefined, undefinedError } from "./truth.ts"
import { at, fieldNames, isDict, isMarkup, isText, markup, Namespace, PythonError, PyTuple, pythonTypeName, tuple, typeError } from "./values.ts"

const { SafeString } = nunjucks.runtime

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
