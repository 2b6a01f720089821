/**
 * The `<style>` rules of an email's HTML inlined as Zulip inlines them (`css_inline.CSSInliner()`: the same Rust
 * library), except that a `<link>`ed stylesheet is not fetched: a worker makes no network requests for a template.
 *
 * Inlining parses, matches and re-serialises the whole document, about 150 µs for one of Zulip's emails, most of
 * the cost of a template email (bench/FINDINGS.md, "Templates"). Emails from one template differ in their values,
 * rarely in their structure; so the skeleton of the render (`jinja/skeleton.ts`: the same HTML with each plain value
 * as a marker) is inlined once per distinct skeleton, and each email's values are put back into that result,
 * escaped as the library's serialiser escapes text and attribute values. It is used only where that is provably the
 * same as inlining the email: the skeleton with its values put back must be the email's HTML exactly, and no marker
 * may sit where a value could change what the rules match or how the document parses (a class, id or style
 * attribute, any attribute when the rules have attribute selectors, a `<style>`, `<script>` or comment). Otherwise,
 * and for HTML without a skeleton, the email's HTML is inlined as it is.
 */
import { inline } from "@css-inline/css-inline"
import { Cache, Effect } from "effect"
import { filledIn, MARKER, MARKER_CHARACTER, type Skeleton } from "./jinja/skeleton.ts"

/** css-inline on a whole document, as Zulip calls it. */
export const inlineDocument = (html: string): string => inline(html, { loadRemoteStylesheets: false })

interface Slot {
  /** the value's index in the skeleton */
  readonly index: number
  /** in an attribute value (else in text) */
  readonly attribute: boolean
}

/** An inlined skeleton cut at its markers: `parts[0]`, value of `slots[0]`, `parts[1]`, … */
interface Prepared {
  readonly parts: ReadonlyArray<string>
  readonly slots: ReadonlyArray<Slot>
}

/** Where a value could change the document's parsing or the rules' matching. */
const UNSAFE_REGIONS = /<(style|script|textarea|title|xmp|iframe|noembed|noframes|noscript|plaintext)\b[^>]*>[\s\S]*?<\/\1\s*>|<!--[\s\S]*?-->/gi

const SELECTOR_ATTRIBUTES: ReadonlySet<string> = new Set(["class", "id", "style"])

/** The inlined skeleton cut at its markers, or null when a value's place makes reusing it unsafe. */
const prepare = (skeleton: string, inlineWith: (html: string) => string): Prepared | null => {
  for (const region of skeleton.matchAll(UNSAFE_REGIONS)) {
    if (MARKER_CHARACTER.test(region[0])) return null
  }
  const attributeSelectors = [...skeleton.matchAll(/<style\b[^>]*>([\s\S]*?)<\/style\s*>/gi)].some((style) => style[1]!.includes("["))
  let inlined: string
  try {
    inlined = inlineWith(skeleton)
  } catch {
    return null
  }
  const parts: Array<string> = []
  const slots: Array<Slot> = []
  let cut = 0
  for (const marker of inlined.matchAll(MARKER)) {
    const position = marker.index
    const tagOpen = inlined.lastIndexOf("<", position)
    const attribute = tagOpen > inlined.lastIndexOf(">", position)
    if (attribute) {
      const name = /([^\s"'=<>/]+)\s*=\s*"[^"]*$/.exec(inlined.slice(tagOpen, position))?.[1]?.toLowerCase()
      if (name === undefined || attributeSelectors || SELECTOR_ATTRIBUTES.has(name)) return null
    }
    parts.push(inlined.slice(cut, position))
    slots.push({ index: Number.parseInt(marker[1]!, 36), attribute })
    cut = position + marker[0].length
  }
  parts.push(inlined.slice(cut))
  return { parts, slots }
}

/** A value as the library's serialiser writes it: text escapes `& < >`, attribute values `& "`, both no-break spaces. */
const serialized = (value: string, attribute: boolean): string =>
  value.replace(attribute ? /[&"\u00a0]/g : /[&<>\u00a0]/g, (character) =>
    character === "&" ? "&amp;" : character === "\u00a0" ? "&nbsp;" : character === "\"" ? "&quot;" : character === "<" ? "&lt;" : "&gt;")

const filled = (prepared: Prepared, values: ReadonlyArray<string>): string => {
  let html = prepared.parts[0]!
  prepared.slots.forEach((slot, position) => {
    html += serialized(values[slot.index]!, slot.attribute) + prepared.parts[position + 1]!
  })
  return html
}

export interface StyleInliner {
  /** `html` with its styles inlined; `skeleton` (from the same render) lets a previous email's inlining serve */
  readonly inline: (html: string, skeleton: Skeleton | null) => Effect.Effect<string, unknown>
}

/** Distinct skeletons kept: far more than the emails × languages × branches an installation sends. */
const SKELETONS_KEPT = 512

/** `inlineWith` is the library (a test counts its calls through it). */
export const makeStyleInliner = (inlineWith: (html: string) => string = inlineDocument): Effect.Effect<StyleInliner> =>
  Effect.map(
    Cache.make({ capacity: SKELETONS_KEPT, lookup: (skeleton: string) => Effect.sync(() => prepare(skeleton, inlineWith)) }),
    (prepared): StyleInliner => ({
      inline: (html, skeleton) => {
        const reusable = skeleton !== null && !MARKER_CHARACTER.test(html) && filledIn(skeleton) === html
        if (!reusable) return Effect.try(() => inlineWith(html))
        return Effect.flatMap(Cache.get(prepared, skeleton.html), (cut) =>
          cut === null ? Effect.try(() => inlineWith(html)) : Effect.succeed(filled(cut, skeleton.values)))
      }
    })
  )
