/** Zulip's own filters. */
import {
  add,
  arithmetic,
  compare,
  contains,
  equals,
  iterate,
  pythonStr,
  slice
} from "./python.ts"
import {
  define,
  raisedAs,
  missingMethod,
  isText,
  SPACE,
  strip,
  toFloat,
  toIndex,
  lengthOf,
  itemAt
} from "./filterSupport.ts"

// ---- Zulip's filters ----------------------------------------------------------------------------------------------

/** Django's `pluralize`: the singular suffix when `float(value) == 1` (else by `len`), nothing for anything else. */
export const pluralize = define("pluralize", ["value", ["arg", "s"]], (value, arg) => {
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
export const slugify = define("slugify", ["value"], (value) =>
  strip(
    pythonStr(value).normalize("NFKD").replace(/[^\x00-\x7f]/g, "").toLowerCase().replace(SLUG_REMOVED, "").replace(SLUG_SEPARATORS, "-"),
    "-_"
  ))

/** Zulip's `display_list`: "a, b and c", or "a, b and 3 others" beyond `display_limit`. */
export const displayList = define("display_list", ["values", "display_limit"], (values, limit) => {
  const count = lengthOf(values)
  if (count === 1) return pythonStr(itemAt(values, 0))
  const listed = (stop: unknown) => iterate(slice(values, null, stop, null)).map(pythonStr).join(", ")
  if (compare(count, "<=", limit)) return `${listed(-1)} and ${pythonStr(itemAt(values, -1))}`
  const others = arithmetic("-", count, limit)
  // a slice bound must be an int (`values[:1.5]` is a TypeError)
  return `${listed(toIndex(limit))} and ${pythonStr(others)} other${equals(count, add(limit, 1)) ? "" : "s"}`
})
