/** Jinja2's HTML, URL and JSON filters. */
import {
  compare,
  escapeHtml,
  escapeText,
  isDict,
  isMarkup,
  iterate,
  markup,
  PythonError,
  pythonRepr,
  pythonStr,
  pythonTypeName,
  truthy,
  unpack
} from "./python.ts"
import {
  autoescapes,
  define,
  typeError,
  valueError,
  filterArgumentError,
  isText,
  softStr,
  codePoints,
  textLength,
  SPACE,
  WORD,
  splitWords,
  toIndex,
  isIterable,
  dictItems
} from "./filterSupport.ts"

// ---- filters: HTML and URLs ---------------------------------------------------------------------------------------

export const escape = define("escape", ["s"], (s) => escapeHtml(s), true)

export const forceescape = define("forceescape", ["value"], (value) => markup(escapeText(pythonStr(value))))

export const safe = define("safe", ["value"], (value) => isMarkup(value) ? value : markup(pythonStr(value)))

export const string = define("soft_str", ["s"], softStr, true)

/** Python's `html.unescape` named references: HTML 4's (with HTML5's values), by name and code point in hex. */
const NAMED_REFERENCES: ReadonlyMap<string, string> = new Map(
  `Aacute:c1 aacute:e1 Acirc:c2 acirc:e2 acute:b4 AElig:c6 aelig:e6 Agrave:c0 agrave:e0 alefsym:2135 Alpha:391
  alpha:3b1 AMP:26 amp:26 and:2227 ang:2220 apos:27 Aring:c5 aring:e5 asymp:2248 Atilde:c3 atilde:e3 Auml:c4
  auml:e4 bdquo:201e Beta:392 beta:3b2 brvbar:a6 bull:2022 cap:2229 Ccedil:c7 ccedil:e7 cedil:b8 cent:a2 Chi:3a7
  chi:3c7 circ:2c6 clubs:2663 cong:2245 COPY:a9 copy:a9 crarr:21b5 cup:222a curren:a4 Dagger:2021 dagger:2020
  dArr:21d3 darr:2193 deg:b0 Delta:394 delta:3b4 diams:2666 divide:f7 Eacute:c9 eacute:e9 Ecirc:ca ecirc:ea
  Egrave:c8 egrave:e8 empty:2205 emsp:2003 ensp:2002 Epsilon:395 epsilon:3b5 equiv:2261 Eta:397 eta:3b7 ETH:d0
  eth:f0 Euml:cb euml:eb euro:20ac exist:2203 fnof:192 forall:2200 frac12:bd frac14:bc frac34:be frasl:2044
  Gamma:393 gamma:3b3 ge:2265 GT:3e gt:3e hArr:21d4 harr:2194 hearts:2665 hellip:2026 Iacute:cd iacute:ed
  Icirc:ce icirc:ee iexcl:a1 Igrave:cc igrave:ec image:2111 infin:221e int:222b Iota:399 iota:3b9 iquest:bf
  isin:2208 Iuml:cf iuml:ef Kappa:39a kappa:3ba Lambda:39b lambda:3bb lang:27e8 laquo:ab lArr:21d0 larr:2190
  lceil:2308 ldquo:201c le:2264 lfloor:230a lowast:2217 loz:25ca lrm:200e lsaquo:2039 lsquo:2018 LT:3c lt:3c
  macr:af mdash:2014 micro:b5 middot:b7 minus:2212 Mu:39c mu:3bc nabla:2207 nbsp:a0 ndash:2013 ne:2260 ni:220b
  not:ac notin:2209 nsub:2284 Ntilde:d1 ntilde:f1 Nu:39d nu:3bd Oacute:d3 oacute:f3 Ocirc:d4 ocirc:f4 OElig:152
  oelig:153 Ograve:d2 ograve:f2 oline:203e Omega:3a9 omega:3c9 Omicron:39f omicron:3bf oplus:2295 or:2228
  ordf:aa ordm:ba Oslash:d8 oslash:f8 Otilde:d5 otilde:f5 otimes:2297 Ouml:d6 ouml:f6 para:b6 part:2202
  permil:2030 perp:22a5 Phi:3a6 phi:3c6 Pi:3a0 pi:3c0 piv:3d6 plusmn:b1 pound:a3 Prime:2033 prime:2032 prod:220f
  prop:221d Psi:3a8 psi:3c8 QUOT:22 quot:22 radic:221a rang:27e9 raquo:bb rArr:21d2 rarr:2192 rceil:2309
  rdquo:201d real:211c REG:ae reg:ae rfloor:230b Rho:3a1 rho:3c1 rlm:200f rsaquo:203a rsquo:2019 sbquo:201a
  Scaron:160 scaron:161 sdot:22c5 sect:a7 shy:ad Sigma:3a3 sigma:3c3 sigmaf:3c2 sim:223c spades:2660 sub:2282
  sube:2286 sum:2211 sup:2283 sup1:b9 sup2:b2 sup3:b3 supe:2287 szlig:df Tau:3a4 tau:3c4 there4:2234 Theta:398
  theta:3b8 thetasym:3d1 thinsp:2009 THORN:de thorn:fe tilde:2dc times:d7 trade:2122 Uacute:da uacute:fa
  uArr:21d1 uarr:2191 Ucirc:db ucirc:fb Ugrave:d9 ugrave:f9 uml:a8 upsih:3d2 Upsilon:3a5 upsilon:3c5 Uuml:dc
  uuml:fc weierp:2118 Xi:39e xi:3be Yacute:dd yacute:fd yen:a5 Yuml:178 yuml:ff Zeta:396 zeta:3b6 zwj:200d
  zwnj:200c`.trim().split(/\s+/).flatMap((entry) => {
    const [name, hex] = entry.split(":") as [string, string]
    const char = String.fromCodePoint(Number.parseInt(hex, 16))
    // HTML5 still reads the Latin-1 ones (but apos) without their semicolon
    return char < "\u0100" && name !== "apos" ? [[`${name};`, char], [name, char]] : [[`${name};`, char]]
  })
)

/** Python's `html.unescape` for numeric references to C1 controls and NUL: Windows-1252's characters, as browsers. */
const C1_REFERENCES = "\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f" +
  "\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178"

/** Code points `html.unescape` drops: controls, noncharacters. */
const isDroppedCodePoint = (code: number): boolean =>
  (code >= 0x1 && code <= 0x8) || code === 0xb || (code >= 0xe && code <= 0x1f) || (code >= 0x7f && code <= 0x9f) ||
  (code >= 0xfdd0 && code <= 0xfdef) || (code & 0xfffe) === 0xfffe

const CHARACTER_REFERENCE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu

/** Python's `html.unescape` (named references limited to HTML 4's). */
const unescapeHtml = (text: string): string =>
  text.replace(CHARACTER_REFERENCE, (_, reference: string) => {
    if (reference.startsWith("#")) {
      const hex = reference[1] === "x" || reference[1] === "X"
      const code = Number.parseInt(reference.slice(hex ? 2 : 1).replace(/;$/, ""), hex ? 16 : 10)
      if (code === 0) return "\ufffd"
      if (code === 0xd) return "\r"
      if (code >= 0x80 && code <= 0x9f) return C1_REFERENCES[code - 0x80]!
      if ((code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) return "\ufffd"
      return isDroppedCodePoint(code) ? "" : String.fromCodePoint(code)
    }
    const exact = NAMED_REFERENCES.get(reference)
    if (exact !== undefined) return exact
    // the longest prefix that is a reference readable without its semicolon
    for (let length = reference.length - 1; length > 1; length--) {
      const prefix = NAMED_REFERENCES.get(reference.slice(0, length))
      if (prefix !== undefined) return prefix + reference.slice(length)
    }
    return `&${reference}`
  })

/** Removes each `open`…`close` span as markupsafe's `striptags` does (an unclosed one stays). */
const removeSpans = (text: string, open: string, close: string): string => {
  let value = text
  for (;;) {
    const start = value.indexOf(open)
    if (start < 0) return value
    const end = value.indexOf(close, start)
    if (end < 0) return value
    value = value.slice(0, start) + value.slice(end + close.length)
  }
}

/** markupsafe's `striptags`: comments and tags removed, whitespace collapsed, then entities unescaped (plain text). */
export const striptags = define("striptags", ["value"], (value) => {
  const text = removeSpans(removeSpans(pythonStr(value), "<!--", "-->"), "<", ">")
  return unescapeHtml(splitWords(text).join(" "))
})

/** Jinja2's `url_quote`: UTF-8 percent-encoding; in a query string `/` is encoded too and a space is `+`. */
const urlQuote = (value: unknown, forQuery: boolean): string => {
  const text = pythonStr(value)
  if (/\p{Cs}/u.test(text)) throw new PythonError("UnicodeEncodeError", "'utf-8' codec can't encode a surrogate")
  let quoted = ""
  for (const byte of new TextEncoder().encode(text)) {
    const char = String.fromCharCode(byte)
    quoted += /[A-Za-z0-9_.~-]/.test(char) || (!forQuery && char === "/")
      ? char
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return forQuery ? quoted.replaceAll("%20", "+") : quoted
}

export const urlencode = define("urlencode", ["value"], (value) => {
  if (isText(value) || !isIterable(value)) return urlQuote(value, false)
  const pairs = isDict(value) ? Object.entries(value) : iterate(value).map((item) => unpack(item, 2))
  return pairs.map(([key, item]) => `${urlQuote(key, true)}=${urlQuote(item, true)}`).join("&")
})

const HTTP_URL = new RegExp(
  `^((https?://|www\\.)(([${WORD}%-]+\\.)+)?([a-z]{2,63}|xn--[${WORD}%]{2,59})|([${WORD}%-]{2,63}\\.)+` +
    `(com|net|int|edu|gov|org|info|mil)|(https?://)(((\\p{Nd}{1,3})(\\.\\p{Nd}{1,3}){3})|` +
    `(\\[([\\p{Nd}a-f]{0,4}:){2}([\\p{Nd}a-f]{0,4}:?){1,6}\\])))(?::\\p{Nd}{1,5})?(?:[/?#][^${SPACE}]*)?$`,
  "iu"
)
const EMAIL = new RegExp(`^[^${SPACE}]+@[${WORD}][${WORD}.-]*\\.[${WORD}]+$`, "u")
const URI_SCHEME = /^[\p{L}\p{N}_.+-]{2,}:(\/){0,2}$/u
const SPACE_RUN = new RegExp(`([${SPACE}]+)`, "u")

const occurrences = (text: string, part: string): number => text.split(part).length - 1

/** Jinja2's `utils.urlize` on one whitespace-separated word of escaped text. */
const linkWord = (word: string, attributes: string, trimUrl: (url: string) => string, extraSchemes: ReadonlyArray<string>): string => {
  let [head, middle, tail] = ["", word, ""]
  const lead = /^([(<]|&lt;)+/.exec(middle)
  if (lead !== null) {
    head = lead[0]
    middle = middle.slice(head.length)
  }
  const trail = /([)>.,\n]|&gt;)+$/.exec(middle)
  if (trail !== null) {
    tail = trail[0]
    middle = middle.slice(0, trail.index)
  }
  // parentheses and brackets balanced within the URL rather than left out of it
  for (const [open, close] of [["(", ")"], ["<", ">"], ["&lt;", "&gt;"]] as const) {
    const opened = occurrences(middle, open)
    if (opened <= occurrences(middle, close)) continue
    for (let moved = Math.min(opened, occurrences(tail, close)); moved > 0; moved--) {
      const end = tail.indexOf(close) + close.length
      middle += tail.slice(0, end)
      tail = tail.slice(end)
    }
  }
  if (HTTP_URL.test(middle)) {
    const href = middle.startsWith("https://") || middle.startsWith("http://") ? middle : `https://${middle}`
    middle = `<a href="${href}"${attributes}>${trimUrl(middle)}</a>`
  } else if (middle.startsWith("mailto:") && EMAIL.test(middle.slice(7))) {
    middle = `<a href="${middle}">${middle.slice(7)}</a>`
  } else if (middle.includes("@") && !middle.startsWith("www.") && !middle.startsWith("@") && !middle.includes(":") && EMAIL.test(middle)) {
    middle = `<a href="mailto:${middle}">${middle}</a>`
  } else {
    for (const scheme of extraSchemes) {
      if (middle !== scheme && middle.startsWith(scheme)) middle = `<a href="${middle}"${attributes}>${middle}</a>`
    }
  }
  return head + middle + tail
}

/** Jinja2's `urlize` with its default policies (`rel="noopener"`, no target). */
export const urlize = define(
  "urlize",
  ["value", ["trim_url_limit", null], ["nofollow", false], ["target", null], ["rel", null], ["extra_schemes", null]],
  function(value, trimUrlLimit, nofollow, target, rel, extraSchemes) {
    const relParts = new Set(truthy(rel) ? splitWords(pythonStr(rel)) : [])
    if (truthy(nofollow)) relParts.add("nofollow")
    relParts.add("noopener")
    const schemes = extraSchemes === null ? [] : iterate(extraSchemes).map(pythonStr)
    const invalid = schemes.find((scheme) => !URI_SCHEME.test(scheme))
    if (invalid !== undefined) throw filterArgumentError(`${pythonRepr(invalid)} is not a valid URI scheme prefix.`)
    const attributes = ` rel="${escapeText([...relParts].sort().join(" "))}"` +
      (truthy(target) ? ` target="${escapeHtml(target).toString()}"` : "")
    const trimUrl = (url: string): string =>
      trimUrlLimit !== null && compare(textLength(url), ">", trimUrlLimit)
        ? `${codePoints(url).slice(0, toIndex(trimUrlLimit)).join("")}...`
        : url
    const linked = escapeHtml(value).toString().split(SPACE_RUN)
      .map((word, index) => index % 2 === 1 ? word : linkWord(word, attributes, trimUrl, schemes))
      .join("")
    return autoescapes(this) ? markup(linked) : linked
  }
)

/** An attribute name must not contain ASCII whitespace, `/`, `>` or `=`. */
const INVALID_ATTRIBUTE_NAME = /[ \t\n\r\f\v/>=]/

export const xmlattr = define("xmlattr", ["d", ["autospace", true]], function(d, autospace) {
  const attributes = dictItems(d)
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([key, value]) => {
      if (INVALID_ATTRIBUTE_NAME.test(pythonStr(key))) throw valueError(`Invalid character in attribute name: ${pythonRepr(key)}`)
      return `${escapeHtml(key).toString()}="${escapeHtml(value).toString()}"`
    })
    .join(" ")
  const text = truthy(autospace) && attributes !== "" ? ` ${attributes}` : attributes
  return autoescapes(this) ? markup(text) : text
})

const JSON_ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "\"": "\\\"",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t"
}

/** Python's JSON string with `ensure_ascii`: anything outside printable ASCII as `\u` escapes (UTF-16 units). */
const jsonString = (text: string): string =>
  `"${text.replace(/[\\"]|[^ -~]/g, (char) => JSON_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`)}"`

/** Python's `json.dumps(value, indent=indent)` (Zulip's `dumps_kwargs` is empty: keys in their order). */
const jsonDumps = (value: unknown, indent: unknown): string => {
  const unit = indent === null ? null : isText(indent) ? indent.toString() : " ".repeat(Math.max(0, toIndex(indent)))
  const container = (open: string, close: string, parts: ReadonlyArray<string>, level: number): string => {
    if (parts.length === 0) return open + close
    if (unit === null) return `${open}${parts.join(", ")}${close}`
    const [inner, outer] = [`\n${unit.repeat(level + 1)}`, `\n${unit.repeat(level)}`]
    return `${open}${inner}${parts.join(`,${inner}`)}${outer}${close}`
  }
  const encode = (item: unknown, level: number): string => {
    if (item === null) return "null"
    if (typeof item === "boolean") return item ? "true" : "false"
    if (typeof item === "number") {
      return Number.isNaN(item) ? "NaN" : Number.isFinite(item) ? pythonStr(item) : item > 0 ? "Infinity" : "-Infinity"
    }
    if (isText(item)) return jsonString(item.toString())
    if (Array.isArray(item)) return container("[", "]", item.map((element) => encode(element, level + 1)), level)
    if (isDict(item)) {
      return container("{", "}", Object.entries(item).map(([key, element]) => `${jsonString(key)}: ${encode(element, level + 1)}`), level)
    }
    throw typeError(`Object of type ${pythonTypeName(item)} is not JSON serializable`)
  }
  return encode(value, 0)
}

/** Jinja2's `tojson`: JSON safe inside HTML and `<script>` (`< > & '` as `\u` escapes), as Markup. */
export const tojson = define("tojson", ["value", ["indent", null]], (value, indent) =>
  markup(jsonDumps(value, indent).replace(/[<>&']/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`)))
