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
  arithmetic,
  compare,
  contains,
  equals,
  isDict,
  isMarkup,
  pythonStr
} from "./python.ts"
import {
  type FilterContext,
  define,
  isText,
  isNumeric,
  isIterable,
  requireHashable
} from "./filterSupport.ts"
import {
  upper,
  lower,
  capitalize,
  title,
  trim,
  center,
  replace,
  indent,
  truncateText,
  wordcount,
  wordwrap,
  format
} from "./textFilters.ts"
import {
  escape,
  forceescape,
  safe,
  string,
  striptags,
  urlencode,
  urlize,
  xmlattr,
  tojson
} from "./htmlFilters.ts"
import {
  abs,
  toInteger,
  toFloatOr,
  round,
  filesizeformat
} from "./numberFilters.ts"
import {
  length,
  list,
  first,
  last,
  random,
  reverse,
  sort,
  unique,
  extreme,
  sum,
  join,
  batch,
  sliceColumns,
  groupby,
  defaultValue,
  items,
  dictsort,
  attr,
  map,
  selection
} from "./collectionFilters.ts"
import { pprint } from "./pprintFilter.ts"
import { pluralize, slugify, displayList } from "./zulipFilters.ts"

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
