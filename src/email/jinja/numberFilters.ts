/** Jinja2's number filters. */
import {
  equals,
  pythonRepr,
  pythonTypeName,
  fixed,
  roundDecimal,
  truthy
} from "./python.ts"
import {
  define,
  typeError,
  valueError,
  filterArgumentError,
  undefinedError,
  raisedAs,
  isText,
  isNumeric,
  toFloat,
  parseIntText,
  intOf,
  toIndex,
  integerText,
  powerOfTen
} from "./filterSupport.ts"

// ---- filters: numbers ---------------------------------------------------------------------------------------------

export const abs = define("abs", ["x"], (x) => {
  if (!isNumeric(x)) throw typeError(`bad operand type for abs(): '${pythonTypeName(x)}'`)
  return Math.abs(Number(x))
}, true)

/** Jinja2's `int`: Python's `int(value, base)` for text, else `int(value)`, then `int(float(value))`, else `default`. */
export const toInteger = define("int", ["value", ["default", 0], ["base", 10]], (value, fallback, base) => {
  try {
    if (!isText(value)) return intOf(value)
    const radix = toIndex(base)
    if (radix !== 0 && (radix < 2 || radix > 36)) throw valueError("int() base must be >= 2 and <= 36, or 0")
    const number = parseIntText(value.toString(), radix)
    if (number === null) throw valueError(`invalid literal for int() with base ${radix}: ${pythonRepr(value.toString())}`)
    return number
  } catch (error) {
    if (!raisedAs(error, "TypeError", "ValueError")) throw error
  }
  try {
    return intOf(toFloat(value))
  } catch (error) {
    if (!raisedAs(error, "TypeError", "ValueError", "OverflowError")) throw error
    return fallback
  }
})

export const toFloatOr = define("float", ["value", ["default", 0]], (value, fallback) => {
  try {
    return toFloat(value)
  } catch (error) {
    if (!raisedAs(error, "TypeError", "ValueError")) throw error
    return fallback
  }
})

/**
 * Jinja2's `round`: Python's `round(value, precision)` ("common": half to even, from the exact binary value, so 2.675
 * rounds to 2.67), or `math.floor`/`math.ceil` of the value scaled by `10 ** precision`.
 */
export const round = define("round", ["value", ["precision", 0], ["method", "common"]], (value, precision, method) => {
  if (!["common", "ceil", "floor"].some((name) => equals(method, name))) {
    throw filterArgumentError("method must be common, ceil or floor")
  }
  if (equals(method, "common")) {
    if (!isNumeric(value)) throw typeError(`type ${pythonTypeName(value)} doesn't define __round__ method`)
    const number = Number(value)
    // `round(x, None)` is an int: OverflowError and ValueError for the infinities and NaN
    if (precision === null) return Number.isFinite(number) ? Number(roundDecimal(number, 0)) : intOf(number)
    const digits = toIndex(precision)
    return Number.isFinite(number) ? Number(roundDecimal(number, digits)) : number
  }
  if (precision === undefined || value === undefined) throw undefinedError()
  if (!isNumeric(precision)) throw typeError(`unsupported operand type(s) for ** or pow(): 'int' and '${pythonTypeName(precision)}'`)
  if (!isNumeric(value)) throw typeError(`must be real number, not ${pythonTypeName(value)}`)
  const exponent = Number(precision)
  const scale = Number.isInteger(exponent) ? powerOfTen(exponent) : 10 ** exponent
  const scaled = Number(value) * scale
  return intOf(equals(method, "floor") ? Math.floor(scaled) : Math.ceil(scaled)) / scale
})

export const filesizeformat = define("filesizeformat", ["value", ["binary", false]], (value, binary) => {
  const bytes = toFloat(value)
  const base = truthy(binary) ? 1024 : 1000
  const prefixes = truthy(binary)
    ? ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    : ["kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
  if (bytes === 1) return "1 Byte"
  if (bytes < base) return `${integerText(intOf(bytes))} Bytes`
  const unitOf = (index: number): bigint => BigInt(base) ** BigInt(index + 2)
  // Python compares with the exact integer power, which a double may round
  const below = (unit: bigint) => Number.isInteger(bytes) ? BigInt(bytes) < unit : bytes < Number(unit)
  const fitting = prefixes.findIndex((_, index) => below(unitOf(index)))
  const index = fitting < 0 ? prefixes.length - 1 : fitting
  return `${fixed((base * bytes) / Number(unitOf(index)), 1)} ${prefixes[index]}`
})
