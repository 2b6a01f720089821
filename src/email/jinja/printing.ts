/** Python's `str()` and `repr()`, markupsafe's escaping, and what `{{ value }}` writes. */
import { isDict, isMarkup, markup, type Markup, Namespace, PyTuple } from "./values.ts"

/** Python's `repr()` of a float, from JavaScript's shortest round-trip digits. */
const floatRepr = (value: number): string => {
  if (Number.isNaN(value)) return "nan"
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf"
  const [mantissa, exponentText] = value.toExponential().split("e") as [string, string]
  const exponent = Number(exponentText)
  if (exponent < -4 || exponent >= 16) {
    return `${mantissa}e${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`
  }
  const fixed = String(value)
  return fixed.includes(".") ? fixed : `${fixed}.0`
}

/**
 * Python's `str()` of a number. JavaScript has one number type, so an integral value prints as an int (what Zulip's
 * producers send: JSON's `1.0`, a Python float, prints as `1` here) and anything else as Python prints a float.
 */
const numberText = (value: number): string =>
  Number.isInteger(value) && Math.abs(value) < 1e21 ? BigInt(value).toString() : floatRepr(value)

/** Python's `repr()` of a string: single quotes unless the text has one and no double quote. */
export const stringRepr = (text: string): string => {
  const quote = text.includes("'") && !text.includes("\"") ? "\"" : "'"
  let body = ""
  for (const character of text) {
    const code = character.codePointAt(0)!
    if (character === "\\") body += "\\\\"
    else if (character === quote) body += `\\${quote}`
    else if (character === "\n") body += "\\n"
    else if (character === "\r") body += "\\r"
    else if (character === "\t") body += "\\t"
    else if (code < 0x20 || code === 0x7f) body += `\\x${code.toString(16).padStart(2, "0")}`
    else body += character
  }
  return `${quote}${body}${quote}`
}

/** Python's `repr()`: how a value prints inside a printed list or dict. */
export const pythonRepr = (value: unknown): string => {
  if (isMarkup(value)) return `Markup(${stringRepr(value.toString())})`
  if (typeof value === "string") return stringRepr(value)
  return pythonStr(value)
}

/** Python's `str()`: what `{{ value }}` prints (before escaping). `Undefined` prints as nothing. */
export const pythonStr = (value: unknown): string => {
  switch (typeof value) {
    case "string":
      return value
    case "undefined":
      return ""
    case "boolean":
      return value ? "True" : "False"
    case "number":
      return numberText(value)
  }
  if (value === null) return "None"
  if (isMarkup(value)) return value.toString()
  if (value instanceof PyTuple) return value.length === 1 ? `(${pythonRepr(value[0])},)` : `(${value.map(pythonRepr).join(", ")})`
  if (Array.isArray(value)) return `[${value.map(pythonRepr).join(", ")}]`
  if (isDict(value)) {
    return `{${Object.entries(value).map(([key, item]) => `${stringRepr(key)}: ${pythonRepr(item)}`).join(", ")}}`
  }
  if (value instanceof Namespace) return `<Namespace ${pythonStr(value.attributes)}>`
  return String(value)
}

const htmlEscapes: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&#34;", "'": "&#39;" }

/** markupsafe's `escape()` on text: `& < > " '`. */
export const escapeText = (text: string): string => text.replace(/[&<>"']/g, (character) => htmlEscapes[character]!)

/** markupsafe's `escape()`: Markup stays as it is, anything else is printed and escaped. */
export const escapeHtml = (value: unknown): Markup => isMarkup(value) ? value : markup(escapeText(pythonStr(value)))

/** What `{{ value }}` writes: escaped when the environment autoescapes, unless it is Markup. */
export const output = (value: unknown, autoescape: boolean): string => {
  if (typeof value === "string") return autoescape ? escapeText(value) : value
  if (isMarkup(value)) return value.toString()
  const text = pythonStr(value)
  return autoescape ? escapeText(text) : text
}
