/**
 * The filters and tests templates use, with Jinja2's and Zulip's meaning: Zulip's own filters (`pluralize` as
 * Django's, `slugify` as Django's, `display_list` from `zerver.lib.templates`), and Jinja2's built-ins wherever
 * nunjucks' version of the same name answers differently for Python values (escaping, `default`, `length`, `join`,
 * `string`, `tojson`, …). The other nunjucks built-ins are kept as they are.
 */
import {
  escapeHtml,
  escapeText,
  isDict,
  isMarkup,
  iterate,
  markup,
  PythonError,
  pythonStr,
  pythonTypeName,
  stripCharacters,
  titleCase,
  truthy
} from "./python.ts"

type Filter = (...args: ReadonlyArray<any>) => unknown

/** Django's `pluralize`: the plural suffix unless the value is 1 (or has one item). */
export const pluralize: Filter = (value: unknown, suffixes: unknown = "s") => {
  const arg = pythonStr(suffixes)
  const bits = (arg.includes(",") ? arg : `,${arg}`).split(",")
  if (bits.length > 2) return ""
  const [singular, plural] = bits as [string, string]
  if (typeof value === "number" || typeof value === "boolean") return Number(value) === 1 ? singular : plural
  if (typeof value === "string" || isMarkup(value)) {
    const text = value.toString().trim()
    const number = text === "" ? NaN : Number(text)
    // Django's float(value): a string that is not a number is measured by its length instead
    if (!Number.isNaN(number)) return number === 1 ? singular : plural
    return value.length === 1 ? singular : plural
  }
  if (Array.isArray(value)) return value.length === 1 ? singular : plural
  if (isDict(value)) return Object.keys(value).length === 1 ? singular : plural
  return ""
}

/** Django's `slugify` (ASCII): accents dropped, anything but letters, digits, `_`, `-` and spaces removed. */
export const slugify: Filter = (value: unknown) =>
  pythonStr(value)
    .normalize("NFKD")
    .replace(/[^\x00-\x7f]/g, "")
    .toLowerCase()
    .replace(/[^\w\s-]/g, "")
    .replace(/[-\s]+/g, "-")
    .replace(/^[-_]+|[-_]+$/g, "")

/** Zulip's `display_list`: "a, b and c", or "a, b and 3 others" beyond `limit`. */
export const displayList: Filter = (values: unknown, limit: unknown) => {
  const items = iterate(values).map(pythonStr)
  const shown = Number(limit)
  if (items.length === 1) return items[0]
  if (items.length <= shown) return `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`
  const others = items.length - shown
  return `${items.slice(0, shown).join(", ")} and ${others} other${items.length === shown + 1 ? "" : "s"}`
}

const lengthOf = (value: unknown): number => {
  if (value === undefined) return 0
  if (typeof value === "string" || isMarkup(value)) return Array.from(value.toString()).length
  if (Array.isArray(value)) return value.length
  if (isDict(value)) return Object.keys(value).length
  throw new PythonError("TypeError", `object of type '${pythonTypeName(value)}' has no len()`)
}

/** Jinja2's `join`: items printed as `str()`; with Markup in the mix, the others are escaped and the result is safe. */
const join: Filter = function(this: { env: { opts: { autoescape: boolean } } }, value: unknown, separator: unknown = "", attribute?: unknown) {
  const items = iterate(value).map((item) => attribute === undefined || !isDict(item) ? item : item[pythonStr(attribute)])
  if (this.env.opts.autoescape && (isMarkup(separator) || items.some(isMarkup))) {
    return markup(items.map((item) => escapeHtml(item).toString()).join(escapeHtml(separator).toString()))
  }
  return items.map(pythonStr).join(pythonStr(separator))
}

/** Python's `json.dumps` with Jinja2's `htmlsafe_json_dumps` (`<`, `>`, `&`, `'` as `\u` escapes). */
const toJson: Filter = (value: unknown, indent?: unknown) => {
  const dump = (item: unknown, depth: number): string => {
    const space = typeof indent === "number" ? "\n" + " ".repeat(indent * (depth + 1)) : ""
    const close = typeof indent === "number" ? "\n" + " ".repeat(indent * depth) : ""
    const separator = typeof indent === "number" ? "," : ", "
    if (item === null || item === undefined) return "null"
    if (typeof item === "boolean") return item ? "true" : "false"
    if (typeof item === "number") return pythonStr(item)
    if (typeof item === "string" || isMarkup(item)) {
      return JSON.stringify(item.toString()).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    }
    if (Array.isArray(item)) {
      return item.length === 0 ? "[]" : `[${space}${item.map((element) => dump(element, depth + 1)).join(separator + space)}${close}]`
    }
    if (isDict(item)) {
      const entries = Object.entries(item)
      return entries.length === 0
        ? "{}"
        : `{${space}${entries.map(([key, element]) => `${dump(key, depth + 1)}: ${dump(element, depth + 1)}`).join(separator + space)}${close}}`
    }
    throw new PythonError("TypeError", `Object of type ${pythonTypeName(item)} is not JSON serializable`)
  }
  return markup(
    dump(value, 0).replace(/[<>&']/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
  )
}

const integer: Filter = (value: unknown, fallback: unknown = 0) => {
  if (typeof value === "number" || typeof value === "boolean") return Math.trunc(Number(value))
  const text = pythonStr(value).trim().replaceAll("_", "")
  const number = /^[+-]?\d+$/.test(text) ? Number(text) : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Math.trunc(Number(text)) : NaN
  return Number.isNaN(number) ? fallback : number
}

const float: Filter = (value: unknown, fallback: unknown = 0) => {
  if (typeof value === "number" || typeof value === "boolean") return Number(value)
  const number = Number(pythonStr(value).trim())
  return pythonStr(value).trim() === "" || Number.isNaN(number) ? fallback : number
}

/** Jinja2's `default`: only Undefined is replaced, unless `boolean` asks for any false value to be. */
const defaultValue: Filter = (value: unknown, fallback: unknown = "", boolean: unknown = false) =>
  value === undefined || (truthy(boolean) && !truthy(value)) ? fallback : value

/** Jinja2's built-in filters whose nunjucks namesakes differ for Python values. */
export const jinjaFilters: Record<string, Filter> = {
  pluralize,
  slugify,
  display_list: displayList,
  default: defaultValue,
  d: defaultValue,
  length: lengthOf,
  count: lengthOf,
  escape: escapeHtml,
  e: escapeHtml,
  forceescape: (value: unknown) => markup(escapeText(pythonStr(value))),
  safe: (value: unknown) => isMarkup(value) ? value : markup(pythonStr(value)),
  string: (value: unknown) => isMarkup(value) ? value : pythonStr(value),
  upper: (value: unknown) => pythonStr(value).toUpperCase(),
  lower: (value: unknown) => pythonStr(value).toLowerCase(),
  title: (value: unknown) => titleCase(pythonStr(value)),
  capitalize: (value: unknown) => {
    const text = pythonStr(value)
    return text.charAt(0).toUpperCase() + text.slice(1).toLowerCase()
  },
  trim: (value: unknown, characters?: unknown) => stripCharacters(pythonStr(value), characters, true, true),
  join,
  first: (value: unknown) => iterate(value)[0],
  last: (value: unknown) => iterate(value).at(-1),
  list: (value: unknown) => iterate(value),
  int: integer,
  float,
  abs: (value: unknown) => Math.abs(Number(value)),
  tojson: toJson
}

/** Jinja2's tests (`x is defined`, …) whose nunjucks namesakes differ for Python values. */
export const jinjaTests: Record<string, (value: unknown, ...args: ReadonlyArray<unknown>) => boolean> = {
  defined: (value) => value !== undefined,
  undefined: (value) => value === undefined,
  none: (value) => value === null,
  boolean: (value) => typeof value === "boolean",
  true: (value) => value === true,
  false: (value) => value === false,
  number: (value) => typeof value === "number" || typeof value === "boolean",
  integer: (value) => typeof value === "number" && Number.isInteger(value),
  float: (value) => typeof value === "number" && !Number.isInteger(value),
  string: (value) => typeof value === "string" || isMarkup(value),
  mapping: isDict,
  iterable: (value) => typeof value === "string" || isMarkup(value) || Array.isArray(value) || isDict(value),
  sequence: (value) => typeof value === "string" || isMarkup(value) || Array.isArray(value) || isDict(value),
  odd: (value) => Number(value) % 2 !== 0,
  even: (value) => Number(value) % 2 === 0,
  divisibleby: (value, divisor) => Number(value) % Number(divisor) === 0,
  escaped: isMarkup
}
