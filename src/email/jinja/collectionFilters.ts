/** Jinja2's sequence, mapping and filter-calling filters. */
import {
  add,
  arithmetic,
  compare,
  equals,
  escapeHtml,
  getAttribute,
  isDict,
  isMarkup,
  iterate,
  markup,
  namedTuple,
  PythonError,
  pythonRepr,
  pythonStr,
  pythonTypeName,
  slice,
  truthy
} from "./python.ts"
import {
  type FilterContext,
  autoescapes,
  splitArguments,
  joinArguments,
  define,
  typeError,
  filterArgumentError,
  undefinedError,
  raisedAs,
  isText,
  sameKind,
  codePoints,
  toIndex,
  lengthOf,
  itemAt,
  requireHashable,
  dictItems,
  attributeGetter,
  multiAttributeGetter,
  caseFolding,
  sortBy
} from "./filterSupport.ts"

// ---- filters: sequences -------------------------------------------------------------------------------------------

export const length = define("len", ["obj"], lengthOf, true)

export const list = define("list", ["value"], (value) => [...iterate(value)])

export const first = define("first", ["seq"], (seq) => iterate(seq)[0])

export const last = define("last", ["seq"], (seq) => {
  if (seq === undefined) return undefined
  if (isText(seq) || Array.isArray(seq)) return lengthOf(seq) === 0 ? undefined : itemAt(seq, -1)
  if (isDict(seq)) return Object.keys(seq).at(-1)
  throw typeError(`'${pythonTypeName(seq)}' object is not reversible`)
})

export const random = define("random", ["seq"], (seq) => {
  const size = lengthOf(seq)
  return size === 0 ? undefined : itemAt(seq, Math.floor(Math.random() * size))
})

export const reverse = define("reverse", ["value"], (value) => {
  if (isText(value)) return sameKind(value, codePoints(value.toString()).reverse().join(""))
  try {
    return [...iterate(value)].reverse()
  } catch (error) {
    if (raisedAs(error, "TypeError")) throw filterArgumentError("argument must be iterable")
    throw error
  }
})

export const sort = define(
  "sort",
  ["value", ["reverse", false], ["case_sensitive", false], ["attribute", null]],
  (value, reverse, caseSensitive, attribute) =>
    sortBy(iterate(value), multiAttributeGetter(attribute, caseFolding(caseSensitive)), truthy(reverse))
)

export const unique = define("unique", ["value", ["case_sensitive", false], ["attribute", null]], (value, caseSensitive, attribute) => {
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
export const extreme = (name: string, operator: "<" | ">") =>
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

export const sum = define("sum", ["iterable", ["attribute", null], ["start", 0]], (iterable, attribute, start) => {
  if (isText(start)) throw typeError("sum() can't sum strings [use ''.join(seq) instead]")
  const getter = attribute === null ? (item: unknown) => item : attributeGetter(attribute)
  return iterate(iterable).reduce((total: unknown, item) => add(total, getter(item)), start)
})

/** Jinja2's `join`: items as `str()`; where output is escaped, Markup among them (or as separator) escapes the rest. */
export const join = define("join", ["value", ["d", ""], ["attribute", null]], function(value, separator, attribute) {
  const items = attribute === null ? iterate(value) : iterate(value).map(attributeGetter(attribute))
  if (!autoescapes(this) || (!isMarkup(separator) && !items.some(isMarkup))) {
    return items.map(pythonStr).join(pythonStr(separator))
  }
  return markup(items.map((item) => escapeHtml(item).toString()).join(escapeHtml(separator).toString()))
})

/** Jinja2's `batch`: lists of `linecount` items, the last one filled up with `fill_with` unless that is None. */
export const batch = define("batch", ["value", "linecount", ["fill_with", null]], (value, linecount, fillWith) => {
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
export const sliceColumns = define("slice", ["value", "slices", ["fill_with", null]], (value, slices, fillWith) => {
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
export const groupby = define(
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

export const defaultValue = define("default", ["value", ["default_value", ""], ["boolean", false]], (value, fallback, boolean) =>
  value === undefined || (truthy(boolean) && !truthy(value)) ? fallback : value)

export const items = define("items", ["value"], (value) => {
  if (value === undefined) return []
  if (!isDict(value)) throw typeError("Can only get item pairs from a mapping.")
  return dictItems(value)
})

export const dictsort = define(
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
export const attr = define("attr", ["obj", "name"], (obj, name) => {
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
export const map = function(this: FilterContext, value: unknown, ...args: ReadonlyArray<unknown>): Array<unknown> {
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
export const selection = (keep: boolean, byAttribute: boolean) =>
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
