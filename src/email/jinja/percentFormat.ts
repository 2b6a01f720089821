/** Python's printf-style formatting (`str % values`). */
import { fixed } from "./decimal.ts"
import { escapeText, pythonRepr, pythonStr, stringRepr } from "./printing.ts"
import { isDict, isMarkup, isNumeric, PythonError, PyTuple, pythonTypeName, typeError } from "./values.ts"

const CONVERSION = /%(?:\(([^)]*)\))?([#0\- +]*)(\*|\d+)?(?:\.(\*|\d*))?[hlL]?([diouxXeEfFgGcrsa%])?/g

const integerOf = (value: unknown, conversion: string): number => {
  if (isNumeric(value)) return Math.trunc(Number(value))
  throw typeError(`%${conversion} format: a real number is required, not ${pythonTypeName(value)}`)
}

const floatOf = (value: unknown, conversion: string): number => {
  if (isNumeric(value)) return Number(value)
  throw typeError(`must be real number, not ${pythonTypeName(value)}`.replace("must", `%${conversion} format: must`))
}

/** Python's `%e`: at least two exponent digits. */
export const exponential = (value: number, precision: number): string => {
  const [mantissa, exponent] = value.toExponential(precision).split("e") as [string, string]
  const magnitude = exponent.replace(/^[+-]/, "")
  return `${mantissa}e${exponent.startsWith("-") ? "-" : "+"}${magnitude.padStart(2, "0")}`
}

/** Python's `%g`: the shorter of `%e` and `%f` at `precision` significant digits, trailing zeros dropped. */
export const general = (value: number, precision: number, alternate: boolean): string => {
  const digits = precision === 0 ? 1 : precision
  if (value === 0) return alternate ? (0).toFixed(digits - 1) : "0"
  const exponent = Math.floor(Math.log10(Math.abs(Number(value.toPrecision(digits)))))
  const text = exponent < -4 || exponent >= digits
    ? exponential(value, digits - 1)
    : value.toFixed(Math.max(0, digits - 1 - exponent))
  if (alternate) return text
  return text.includes("e")
    ? text.replace(/\.?0+e/, "e")
    : text.includes(".") ? text.replace(/\.?0+$/, "") : text
}

const convert = (value: unknown, conversion: string, flags: string, precision: number | null): string => {
  switch (conversion) {
    case "s":
      return precision === null ? pythonStr(value) : pythonStr(value).slice(0, precision)
    case "r":
    case "a":
      return precision === null ? pythonRepr(value) : pythonRepr(value).slice(0, precision)
    case "d":
    case "i":
    case "u":
      return String(integerOf(value, conversion))
    case "o":
      return (flags.includes("#") ? "0o" : "") + integerOf(value, conversion).toString(8)
    case "x":
      return (flags.includes("#") ? "0x" : "") + integerOf(value, conversion).toString(16)
    case "X":
      return (flags.includes("#") ? "0X" : "") + integerOf(value, conversion).toString(16).toUpperCase()
    case "f":
    case "F":
      return fixed(floatOf(value, conversion), precision ?? 6)
    case "e":
      return exponential(floatOf(value, conversion), precision ?? 6)
    case "E":
      return exponential(floatOf(value, conversion), precision ?? 6).toUpperCase()
    case "g":
      return general(floatOf(value, conversion), precision ?? 6, flags.includes("#"))
    case "G":
      return general(floatOf(value, conversion), precision ?? 6, flags.includes("#")).toUpperCase()
    case "c":
      return typeof value === "number" ? String.fromCodePoint(value) : pythonStr(value)
  }
  throw new PythonError("ValueError", `unsupported format character '${conversion}'`)
}

const pad = (text: string, flags: string, width: number, numeric: boolean): string => {
  const signed = numeric && (flags.includes("+") || flags.includes(" ")) && !text.startsWith("-")
    ? (flags.includes("+") ? "+" : " ") + text
    : text
  if (signed.length >= width) return signed
  if (flags.includes("-")) return signed.padEnd(width)
  if (flags.includes("0") && numeric) {
    const sign = /^[+\- ]/.test(signed) ? signed[0]! : ""
    return sign + signed.slice(sign.length).padStart(width - sign.length, "0")
  }
  return signed.padStart(width)
}

/**
 * Python's `format % values` where `values` is a dict (or a single value), as gettext's newstyle `rv % variables`
 * and Jinja2's `%` operator do. With `escape`, the format is Markup and each value is escaped as markupsafe does.
 */
export const percentFormat = (format: string, values: unknown, escape: boolean): string =>
  isDict(values) ? namedFormat(format, values, escape) ?? fullFormat(format, values, escape) : fullFormat(format, values, escape)

/**
 * The common case of `percentFormat`, what `{% trans %}` blocks make: only `%(name)s` and `%%` with a dict, read in
 * one pass; null when the format has anything else (the full reader handles it).
 */
const namedFormat = (format: string, values: Record<string, unknown>, escape: boolean): string | null => {
  let text = ""
  let from = 0
  for (let at = format.indexOf("%"); at >= 0; at = format.indexOf("%", from)) {
    text += format.slice(from, at)
    if (format[at + 1] === "%") {
      text += "%"
      from = at + 2
      continue
    }
    const close = format[at + 1] === "(" ? format.indexOf(")", at + 2) : -1
    if (close < 0 || format[close + 1] !== "s") return null
    const key = format.slice(at + 2, close)
    if (!Object.hasOwn(values, key)) return null
    const value = values[key]
    text += escape && !isMarkup(value) ? escapeText(pythonStr(value)) : pythonStr(value)
    from = close + 2
  }
  return text + format.slice(from)
}

const fullFormat = (format: string, values: unknown, escape: boolean): string => {
  let positional = 0
  let named = false
  const text = format.replace(CONVERSION, (whole, key: string | undefined, flags: string, width: string | undefined, precision: string | undefined, conversion: string | undefined) => {
    if (conversion === undefined) throw new PythonError("ValueError", "incomplete format")
    if (conversion === "%") return "%"
    let value: unknown
    if (key !== undefined) {
      named = true
      if (!isDict(values)) throw typeError("format requires a mapping")
      if (!Object.hasOwn(values, key)) throw new PythonError("KeyError", stringRepr(key))
      value = values[key]
    } else {
      // only a tuple holds several values; a list is one value, as in Python
      const all = values instanceof PyTuple ? values : [values]
      if (positional >= all.length) throw typeError("not enough arguments for format string")
      value = all[positional++]
    }
    if (width === "*" || precision === "*") throw typeError(`* wants int in ${whole}`)
    const numeric = "diouxXeEfFgG".includes(conversion)
    let converted = convert(value, conversion, flags, precision === undefined ? null : Number(precision || 0))
    if (escape && !numeric) converted = isMarkup(value) && conversion === "s" ? converted : escapeText(converted)
    return pad(converted, flags, Number(width ?? 0), numeric)
  })
  // Python refuses values left over, unless they came as a mapping (or the format only uses names)
  const given = values instanceof PyTuple ? values.length : isDict(values) ? 0 : 1
  if (!named && positional < given) throw typeError("not all arguments converted during string formatting")
  return text
}
