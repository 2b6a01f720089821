/**
 * The skeleton of a rendered HTML template, for `styleInliner.ts`: the same render with each plain value the
 * template writes (a context value, a variable of a translation) replaced by a marker, and the values aside. Two
 * emails from one template whose control flow went the same way have the same skeleton, so the skeleton's CSS
 * inlining can be reused for both, the values put back in afterwards.
 *
 * A value is only marked where putting it back cannot change what CSS inlining does: non-empty text, not only
 * whitespace, nothing an HTML parser rewrites (CR, NUL, other control characters, unpaired surrogates, the markers'
 * own characters). Anything that would compute with marked text (a filter, a test, a comparison, a method, a slice)
 * stops the skeleton render with `SkeletonUnusable`, and the email is inlined whole.
 */
import * as Python from "./python.ts"

/** Private-use characters no template or value carries (checked), around a value's index. */
const OPEN = "\uF8F0"
const CLOSE = "\uF8F1"
export const MARKER = /\uF8F0([0-9a-z]+)\uF8F1/g
export const MARKER_CHARACTER = /[\uF8F0\uF8F1]/

export const markerFor = (index: number): string => `${OPEN}${index.toString(36)}${CLOSE}`

/** The HTML with markers, and each marked value as text (before escaping). */
export interface Skeleton {
  readonly html: string
  readonly values: ReadonlyArray<string>
}

/** The skeleton render met something it cannot mark: the email's HTML is inlined as it is. */
export class SkeletonUnusable extends Error {}

/** Text a marker may stand for: it parses and serialises in HTML exactly as written, and is not blank. */
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const markable = (text: string): boolean =>
  /\S/.test(text) && !/[\x00-\x08\x0b-\x1f\x7f]/.test(text) && !MARKER_CHARACTER.test(text) && !UNPAIRED_SURROGATE.test(text)

const hasMarker = (value: unknown): boolean => {
  if (typeof value === "string" || Python.isMarkup(value)) return MARKER_CHARACTER.test(value.toString())
  if (Array.isArray(value)) return value.some(hasMarker)
  if (Python.isDict(value)) return Object.values(value).some(hasMarker)
  return false
}

/** `f`, refusing marked text among its arguments (one level into lists and dicts). */
export const guarded = <A extends Array<unknown>, R>(f: (...args: A) => R) =>
  function(this: unknown, ...args: A): R {
    if (args.some(hasMarker)) throw new SkeletonUnusable("a marked value is computed with")
    return f.call(this, ...args)
  }

/** Records the values of one skeleton render (renders are synchronous: one recorder per render call). */
export class SkeletonRecorder {
  readonly values: Array<string> = []

  /** What `{{ value }}` writes in the skeleton: a marker for a plain value, else what the real render writes. */
  output(value: unknown, autoescape: boolean): string {
    if (!autoescape || Python.isMarkup(value)) return Python.output(value, autoescape)
    const text = Python.pythonStr(value)
    return markable(text) ? this.mark(text) : Python.escapeText(text)
  }

  /**
   * A translation's variables: each plain one as a marker (Markup, so formatting keeps it as it is). Only `%(name)s`
   * may take one: a width, a precision or a number conversion would measure or convert the marker.
   */
  formatValues(message: string, variables: Record<string, unknown>): Record<string, unknown> {
    if (/%(?!%|\([^)]*\)s)/.test(message.replaceAll("%%", ""))) throw new SkeletonUnusable("a translation formats a value")
    return Object.fromEntries(Object.entries(variables).map(([name, value]) => {
      if (Python.isMarkup(value) || value === undefined) return [name, value]
      const text = Python.pythonStr(value)
      return [name, markable(text) ? Python.markup(this.mark(text)) : value]
    }))
  }

  private mark(text: string): string {
    this.values.push(text)
    return markerFor(this.values.length - 1)
  }
}

/** The real render's HTML from a skeleton: each marker replaced by its value, escaped as the render escapes it. */
export const filledIn = (skeleton: Skeleton): string =>
  skeleton.html.replace(MARKER, (_, index: string) => Python.escapeText(skeleton.values[Number.parseInt(index, 36)]!))
