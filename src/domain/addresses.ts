/**
 * Addresses and header values, formed the way Zulip's `build_email` forms them (Zulip reference §5, §6.8).
 *
 * Every address is read by one parser, `email-addresses` (a strict RFC 5322 grammar with RFC 6532 UTF-8): it
 * returns nothing for anything that is not exactly one valid mailbox, so no regex of ours decides what an address
 * is. Values are then written back in a canonical form (names quoted when they carry specials, local parts quoted
 * when they are not dot-atoms) that nodemailer's own `addressparser` reads back to the same name and address.
 */
import emailAddresses from "email-addresses"
import { Exit } from "effect"
import { Buffer } from "node:buffer"
import { domainToASCII } from "node:url"
import { InvalidEvent } from "./errors.ts"

/** Amazon SES refuses a From or To longer than this; Zulip then drops the display name (§5, §6.8). */
export const MAX_ADDRESS_HEADER_LENGTH = 320

export interface Mailbox {
  /** the display name, "" when there is none */
  readonly name: string
  /** the addr-spec as it goes on the wire and in the SMTP envelope */
  readonly address: string
  readonly local: string
  readonly domain: string
}

// ---- header values -----------------------------------------------------------------------------------------------

/** C0, DEL and C1 controls, plus the Unicode line and paragraph separators some parsers treat as line breaks. */
const CONTROL_CHARACTER = /[\p{Cc}\u2028\u2029]/u

/** A character as `U+000D`, for an error message that must not carry the character itself. */
export const codePointName = (character: string): string =>
  `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`

/** The first control character in `value` as `U+000D`, or null when the value is one clean line. */
export const controlCharacterIn = (value: string): string | null => {
  const found = CONTROL_CHARACTER.exec(value)
  return found === null ? null : codePointName(found[0])
}

/** A value as it may appear in an error message: escaped, and short enough for a log line. */
export const displayValue = (value: string): string => {
  const shown = JSON.stringify(value)
  return shown.length > 120 ? `${shown.slice(0, 117)}..."` : shown
}

const controlCharacterError = (field: string, what: string, control: string): InvalidEvent =>
  new InvalidEvent({
    message: `invalid email event: ${what} contains the control character ${control}; header values must be a single line`,
    field
  })

/** Fails with `InvalidEvent` naming `field` when `value` holds a control character (a header injection attempt). */
export const requireHeaderSafe = (field: string, value: string, what: string = field): Exit.Exit<string, InvalidEvent> => {
  const control = controlCharacterIn(value)
  return control === null ? Exit.succeed(value) : Exit.fail(controlCharacterError(field, what, control))
}

// ---- parsing -------------------------------------------------------------------------------------------------------

/**
 * A bare ASCII address whose local part is a dot-atom and whose domain is dot-separated letter-digit-hyphen labels:
 * nearly every address a worker sees. The grammar reads each of these as exactly that local part and domain, so it
 * is not run for them (it is the costliest step of building an email); `test/addresses.test.ts` checks the two agree.
 */
const PLAIN_ADDRESS =
  /^([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)@([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)$/

/** `a@b.example` or `Name <a@b.example>`; null unless the whole input is exactly one valid mailbox. */
export const parseMailbox = (input: string): Mailbox | null => {
  const plain = PLAIN_ADDRESS.exec(input)
  if (plain !== null) return { name: "", address: input, local: plain[1]!, domain: plain[2]! }
  if (controlCharacterIn(input) !== null) return null
  const parsed = emailAddresses({ input, startAt: "mailbox", rfc6532: true, strict: true })
  const mailbox = parsed?.addresses.length === 1 ? parsed.addresses[0] : undefined
  if (mailbox === undefined || mailbox.type !== "mailbox") return null
  return {
    name: mailbox.name ?? "",
    address: formatAddrSpec(mailbox.local, mailbox.domain),
    local: mailbox.local,
    domain: mailbox.domain
  }
}

/** RFC 5321 §4.5.3.1.1: the longest local part, in octets as sent (quotes included) */
const MAX_LOCAL_PART_OCTETS = 64

/**
 * Why a mailbox the grammar reads is still not one the worker sends to, or null: an address literal
 * (`a@[127.0.0.1]`) would let an event pick the server its email goes to, a label that starts or ends with a
 * hyphen is no host name (RFC 1123), and a longer local part is refused by SMTP servers after the email is built.
 */
const undeliverableReason = (mailbox: Mailbox): string | null => {
  if (mailbox.domain.startsWith("[")) return "has an address literal for its domain; only domain names are accepted"
  const label = mailbox.domain.split(".").find((part) => part.startsWith("-") || part.endsWith("-"))
  if (label !== undefined) return `has the domain label ${JSON.stringify(label)}, which starts or ends with a hyphen`
  const localOctets = Buffer.byteLength(mailbox.address.slice(0, mailbox.address.lastIndexOf("@")), "utf8")
  return localOctets > MAX_LOCAL_PART_OCTETS
    ? `has a local part of ${localOctets} octets; at most ${MAX_LOCAL_PART_OCTETS} are allowed`
    : null
}

/**
 * Parses one address of the event, synchronously (the result is an `Exit`); fails with `InvalidEvent` naming the
 * field and the address. Beyond the grammar, the address must be one to deliver to (`undeliverableReason`).
 * `withName: false` accepts only a bare address (`from_address`, a user's delivery email), as
 * Zulip's `Address(addr_spec=...)` does.
 */
export const parseAddressField = (
  field: string,
  value: string,
  options: { readonly withName: boolean; readonly what?: string }
): Exit.Exit<Mailbox, InvalidEvent> => {
  const what = options.what ?? field
  const control = controlCharacterIn(value)
  if (control !== null) return Exit.fail(controlCharacterError(field, what, control))
  const mailbox = parseMailbox(value)
  if (mailbox === null) {
    return Exit.fail(
      new InvalidEvent({ message: `invalid email event: ${what} ${displayValue(value)} is not a valid email address`, field })
    )
  }
  const undeliverable = undeliverableReason(mailbox)
  if (undeliverable !== null) {
    return Exit.fail(
      new InvalidEvent({ message: `invalid email event: ${what} ${displayValue(value)} ${undeliverable}`, field })
    )
  }
  if (!options.withName && mailbox.name !== "") {
    return Exit.fail(
      new InvalidEvent({
        message: `invalid email event: ${what} ${displayValue(value)} must be a bare address, without a display name`,
        field
      })
    )
  }
  return Exit.succeed(mailbox)
}

// ---- formatting (Python's email.headerregistry.Address) ------------------------------------------------------------

/** RFC 5322 specials: a display name holding one of them must be a quoted string */
const SPECIALS = /[()<>@,:;.\\"[\]]/
/** what may not appear in a dot-atom local part */
const DOT_ATOM_ENDS = /[()<>@,:;\\"[\]\s]/

const quoteString = (value: string): string => `"${value.replace(/[\\"]/g, "\\$&")}"`

const isDotAtom = (local: string): boolean =>
  local !== "" && !DOT_ATOM_ENDS.test(local) && !local.startsWith(".") && !local.endsWith(".") && !local.includes("..")

export const formatAddrSpec = (local: string, domain: string): string =>
  `${isDotAtom(local) ? local : quoteString(local)}@${domain}`

/** `Name <address>`, the name quoted when it holds specials; just the address when the name is empty. */
export const formatMailbox = (name: string, address: string): string =>
  name === "" ? address : `${SPECIALS.test(name) ? quoteString(name) : name} <${address}>`

/**
 * Zulip's rule for From and for the To of `to_user_ids` events: `"Name <address>"`, or the bare address when the
 * sanitised header would be longer than 320 characters.
 */
export const limitedMailbox = (name: string, mailbox: Mailbox): string =>
  isSurelyShort(name, mailbox) || sanitizedHeaderLength(name, mailbox) <= MAX_ADDRESS_HEADER_LENGTH
    ? formatMailbox(name, mailbox.address)
    : mailbox.address

/**
 * Whether the sanitised header cannot reach the limit whatever the details: with an ASCII name and address, quoting
 * and escaping at most double them and folding adds at most a line break per character. Nearly every From and To is
 * this short, and then the exact length (the costliest step of building an email) is not needed.
 */
export const isSurelyShort = (name: string, mailbox: Mailbox): boolean =>
  3 * (name.length + mailbox.address.length) + 8 <= MAX_ADDRESS_HEADER_LENGTH && isAscii(name) && isAscii(mailbox.address)

// ---- Zulip's length computation ----------------------------------------------------------------------------------
//
// Zulip measures `len(sanitize_address(str(Address(name, address)), "utf-8"))`. Django's `sanitize_address`
// re-parses the mailbox, RFC 2047-encodes a non-ASCII name (and local part) with Python's `email.header.Header`,
// punycodes the domain and joins them with `formataddr`. The header encoder folds long values with "\n " and its
// line budget changes where a name is cut, so the length below follows Python's algorithm step by step.

/** `email.header.MAXLINELEN` */
const MAX_LINE_LENGTH = 78
/** `len("utf-8") + RFC2047_CHROME_LEN`: what `=?utf-8?b?` + `?=` add to an encoded word */
const ENCODED_WORD_CHROME = 12
/** `formataddr`'s specials (it also quotes on "."), and what it escapes inside quotes */
const FORMATADDR_SPECIALS = /[\][\\()<>@,:;".]/
const FORMATADDR_ESCAPES = /[\\"]/g

const isAscii = (value: string): boolean => /^[\x00-\x7f]*$/.test(value)

/** bytes that stay themselves in a `q` encoded word (`email.quoprimime`); a space becomes "_", the rest "=XX" */
const isQSafeByte = (byte: number): boolean =>
  (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) ||
  byte === 0x2d || byte === 0x21 || byte === 0x2a || byte === 0x2b || byte === 0x2f || byte === 0x20

const qLength = (bytes: Uint8Array): number => bytes.reduce((total, byte) => total + (isQSafeByte(byte) ? 1 : 3), 0)
const base64Length = (byteCount: number): number => Math.ceil(byteCount / 3) * 4

const encodeQ = (bytes: Uint8Array): string =>
  Array.from(bytes, (byte) =>
    byte === 0x20 ? "_" : isQSafeByte(byte) ? String.fromCharCode(byte) : `=${byte.toString(16).toUpperCase().padStart(2, "0")}`)
    .join("")

/** `Charset("utf-8")` picks base64 only when it is strictly shorter than `q` for the whole value. */
const prefersBase64 = (bytes: Uint8Array): boolean => base64Length(bytes.length) < qLength(bytes)

const encodedWord = (value: string, base64: boolean): string => {
  const bytes = Buffer.from(value, "utf8")
  return base64 ? `=?utf-8?b?${bytes.toString("base64")}?=` : `=?utf-8?q?${encodeQ(bytes)}?=`
}

/** `Header(value, "utf-8").encode()`: encoded words of at most 78 (then 77) characters, joined by "\n ". */
const encodeUtf8Header = (value: string): string => {
  const base64 = prefersBase64(Buffer.from(value, "utf8"))
  const words: Array<string> = []
  let current = ""
  let byteCount = 0
  let qCount = 0
  let budget = MAX_LINE_LENGTH - ENCODED_WORD_CHROME
  for (const character of value) {
    const bytes = Buffer.from(character, "utf8")
    const length = base64 ? base64Length(byteCount + bytes.length) : qCount + qLength(bytes)
    if (length > budget && current !== "") {
      words.push(encodedWord(current, base64))
      current = ""
      byteCount = 0
      qCount = 0
      budget = MAX_LINE_LENGTH - " ".length - ENCODED_WORD_CHROME
    }
    current += character
    byteCount += bytes.length
    qCount += qLength(bytes)
  }
  words.push(encodedWord(current, base64))
  return words.join("\n ")
}

type Chunk = readonly [whitespace: string, text: string]
const joinChunks = (chunks: ReadonlyArray<Chunk>): string => chunks.map(([whitespace, text]) => whitespace + text).join("")

/** Where `_ValueFormatter._append_chunk` folds a too long line: after ";", then ",", then before a space or tab. */
const foldPoint = (chunks: ReadonlyArray<Chunk>): number => {
  for (const splitter of [";", ",", " ", "\t"]) {
    for (let i = chunks.length - 1; i > 0; i--) {
      if (chunks[i]![0].startsWith(splitter) || chunks[i - 1]![1].endsWith(splitter)) return i
    }
  }
  return 0
}

/** `Header(value).encode()` for ASCII: the value itself, folded at whitespace into lines of 78 where it can be. */
const foldAsciiHeader = (value: string): string => {
  const pieces = value.split(/([ \t]+)/)
  if (pieces[0] !== "") pieces.unshift("")
  else pieces.shift()
  const lines: Array<string> = []
  let current: Array<Chunk> = []
  for (let i = 0; i < pieces.length; i += 2) {
    current.push([pieces[i]!, pieces[i + 1]!])
    const at = joinChunks(current).length > MAX_LINE_LENGTH ? foldPoint(current) : 0
    if (at > 0) {
      lines.push(joinChunks(current.slice(0, at)))
      current = current.slice(at)
    }
  }
  const last = joinChunks(current)
  if (last !== "" && /^\s+$/.test(last) && lines.length > 0) lines[lines.length - 1] += last
  else if (last !== "") lines.push(last)
  return lines.join("\n")
}

const encodeHeaderLikePython = (value: string): string =>
  isAscii(value) ? foldAsciiHeader(value) : encodeUtf8Header(value)

/** `len(sanitize_address(str(Address(name, address)), "utf-8"))`, the value Zulip compares with 320. */
export const sanitizedHeaderLength = (name: string, mailbox: Mailbox): number => {
  // str(Address) quotes a name with specials; re-parsing an unquoted one collapses and trims its whitespace
  const displayName = SPECIALS.test(name) ? name : name.replace(/[ \t]+/g, " ").trim()
  const encodedName = encodeHeaderLikePython(displayName)
  const local = isAscii(mailbox.local) ? mailbox.local : encodeUtf8Header(mailbox.local)
  const domain = mailbox.domain.startsWith("[") ? mailbox.domain : (domainToASCII(mailbox.domain) || mailbox.domain)
  const addrSpec = `${DOT_ATOM_ENDS.test(local) ? quoteString(local) : local}@${domain}`
  if (encodedName === "") return addrSpec.length
  const quotes = FORMATADDR_SPECIALS.test(encodedName) ? 2 : 0
  return quotes + encodedName.replace(FORMATADDR_ESCAPES, "\\$&").length + " <>".length + addrSpec.length
}

/**
 * Python's `formataddr((name, address))`, which Zulip uses for `List-Id`: a non-ASCII name becomes one encoded word,
 * an ASCII one is quoted when it holds specials.
 */
export const formatAddressPair = (name: string, address: string): string => {
  if (name === "") return address
  if (!isAscii(name)) return `${encodedWord(name, prefersBase64(Buffer.from(name, "utf8")))} <${address}>`
  const quotes = FORMATADDR_SPECIALS.test(name) ? "\"" : ""
  return `${quotes}${name.replace(FORMATADDR_ESCAPES, "\\$&")}${quotes} <${address}>`
}

/** `EXTERNAL_HOST` without its port, as Zulip's default addresses use it (`[::1]:9991` keeps the brackets). */
export const hostWithoutPort = (host: string): string =>
  host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0]!
