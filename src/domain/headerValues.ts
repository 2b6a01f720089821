/**
 * The header values an event gives as they are, checked against their grammar when the event is decoded: the
 * Message-ID (`message_id`, RFC 5322 §3.6.4), the Date (`date`, RFC 2822 §3.3 with its obsolete zones, §4.3) and
 * the List-Unsubscribe URI (`context.unsubscribe_link`, RFC 2369). A value that does not match is refused with what
 * is wrong, so no value can add a header, a second Message-ID or a second URI, or go out as a date that is none.
 */
import { Buffer } from "node:buffer"
import { Schema } from "effect"
import { codePointName, controlCharacterIn, displayValue } from "./addresses.ts"

/** RFC 5322 §2.1.1: a line, and so a header value, is at most 998 octets. */
const MAX_HEADER_OCTETS = 998

/** The first character outside printable ASCII (a space, a control character, anything non-ASCII) as `U+0020`. */
const notPrintableAsciiIn = (value: string): string | null => {
  const found = /[^\x21-\x7e]/u.exec(value)
  return found === null ? null : codePointName(found[0])
}

// ---- Message-ID ------------------------------------------------------------------------------------------------

/** RFC 5322 §3.2.3 `atext`, and `dot-atom-text` built of it */
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
const DOT_ATOM_TEXT = `${ATEXT}+(?:\\.${ATEXT}+)*`
/** `no-fold-literal`: "[" *dtext "]" */
const NO_FOLD_LITERAL = "\\[[\\x21-\\x5a\\x5e-\\x7e]*\\]"
/** `id-left "@" id-right`, the inside of a msg-id */
const MSG_ID_INSIDE = new RegExp(`^${DOT_ATOM_TEXT}@(?:${DOT_ATOM_TEXT}|${NO_FOLD_LITERAL})$`)

/**
 * What is wrong with a producer's `message_id`, or undefined: it must be one msg-id, `<left@right>`, given with its
 * angle brackets or without them (the worker adds them), at most 998 octets.
 */
export const messageIdProblem = (value: string): string | undefined => {
  const octets = Buffer.byteLength(value, "utf8")
  if (octets > MAX_HEADER_OCTETS) return `is ${octets} octets long; a Message-ID is at most ${MAX_HEADER_OCTETS}`
  const outside = notPrintableAsciiIn(value)
  if (outside !== null) return `holds ${outside}; a Message-ID is printable ASCII without spaces`
  const inside = value.startsWith("<") && value.endsWith(">") ? value.slice(1, -1) : value
  return MSG_ID_INSIDE.test(inside)
    ? undefined
    : `${displayValue(value)} is not one msg-id <left@right> (RFC 5322: dot-atoms, or a [literal] on the right)`
}

// ---- Date ----------------------------------------------------------------------------------------------------

const DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
const MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
/** RFC 2822 §4.3 `obs-zone`: UT, GMT, the US zones and the military letters (all but J) */
const OBSOLETE_ZONES = "UT|GMT|[ECMP][SD]T|[A-IK-Z]"

/**
 * RFC 2822 §3.3 `date-time`: `[day-of-week ","] day month year hour ":" minute [":" second] zone [CFWS]`, with
 * folding white space between the parts (spaces and tabs: a header value is one line), the obsolete two- and
 * three-digit years and named zones, and a trailing comment such as MTAs write (`+0000 (UTC)`; not nested).
 * Names are case-insensitive, as ABNF strings are.
 */
const DATE_TIME = (() => {
  const blanks = "[ \\t]*"
  const dayOfWeek = `(?:(${DAY_NAMES.join("|")})${blanks},${blanks})?`
  const date = `(\\d{1,2})[ \\t]+(${MONTH_NAMES.join("|")})[ \\t]+(\\d{2,})`
  const time = `(\\d{2})${blanks}:${blanks}(\\d{2})(?:${blanks}:${blanks}(\\d{2}))?`
  const zone = `(?:[+-]\\d{2}(\\d{2})|${OBSOLETE_ZONES})`
  // ctext: printable ASCII but parentheses and backslash
  const comment = `(?:${blanks}\\([ \\t\\x21-\\x27\\x2a-\\x5b\\x5d-\\x7e]*\\))?`
  return new RegExp(`^${blanks}${dayOfWeek}${date}[ \\t]+${time}[ \\t]+${zone}${comment}${blanks}$`, "i")
})()

/** RFC 2822 §4.3: a two-digit year below 50 is 20xx, others 19xx; a three-digit year is 1900 + it. */
const fullYear = (digits: string): number => {
  const year = Number(digits)
  return digits.length === 2 ? (year < 50 ? 2000 + year : 1900 + year) : digits.length === 3 ? 1900 + year : year
}

/** What is wrong with an event's `date`, or undefined: it must be an RFC 2822 date-time naming a real day and time. */
export const dateProblem = (value: string): string | undefined => {
  const control = controlCharacterIn(value)
  if (control !== null) return `holds the control character ${control}; a Date is one line`
  const shown = `${displayValue(value)} is not an RFC 2822 date`
  const parts = DATE_TIME.exec(value)
  if (parts === null) return `${shown} (e.g. "Tue, 04 Mar 2025 16:09:25 +0000")`
  const [, , day, month, year, hour, minute, second, zoneMinutes] = parts
  const monthIndex = MONTH_NAMES.indexOf(month!.toLowerCase())
  const calendar = new Date(Date.UTC(fullYear(year!), monthIndex, Number(day)))
  if (calendar.getUTCMonth() !== monthIndex || Number(day) === 0 || fullYear(year!) < 1900) {
    return `${shown}: there is no ${day} ${month} ${year}`
  }
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second ?? 0) > 60 || Number(zoneMinutes ?? 0) > 59) {
    return `${shown}: its time or zone is out of range`
  }
  return undefined
}

// ---- List-Unsubscribe --------------------------------------------------------------------------------------------

const UNSUBSCRIBE_SCHEMES = ["http:", "https:", "mailto:"]

/**
 * What is wrong with `context.unsubscribe_link`, or undefined: it must be one http(s) or mailto URI, as
 * `List-Unsubscribe: <uri>` carries it, so nothing in it may close the brackets or start another URI.
 */
export const unsubscribeLinkProblem = (value: unknown): string | undefined => {
  if (typeof value !== "string") return "must be an http(s) or mailto URL (a string)"
  const outside = notPrintableAsciiIn(value)
  if (outside !== null) return `holds ${outside}; a URI is printable ASCII without spaces or line breaks`
  const separator = /[<>,]/.exec(value)
  if (separator !== null) return `${displayValue(value)} holds "${separator[0]}", which would end or add a URI`
  const url = URL.canParse(value) ? new URL(value) : null
  return url === null || !UNSUBSCRIBE_SCHEMES.includes(url.protocol)
    ? `${displayValue(value)} is not an http(s) or mailto URL`
    : undefined
}

// ---- the checks the event schema runs ---------------------------------------------------------------------------

export const MessageIdValue = Schema.NonEmptyString.check(Schema.makeFilter(messageIdProblem))

export const DateValue = Schema.String.check(Schema.makeFilter(dateProblem))

/** On the event's `context`: its `unsubscribe_link`, when present, is checked. */
export const unsubscribeLinkCheck = Schema.makeFilter((context: { readonly [key: string]: unknown }) => {
  if (!("unsubscribe_link" in context)) return undefined
  const problem = unsubscribeLinkProblem(context["unsubscribe_link"])
  return problem === undefined ? undefined : { path: ["unsubscribe_link"], issue: problem }
})
