/** Exact decimal rounding of doubles, ties to even, as Python's `round` and `%.Nf` do. */

/** A finite double's exact value as `mantissa * 2 ** exponent`. */
const binaryParts = (value: number): readonly [bigint, number] => {
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat64(0, Math.abs(value))
  const bits = view.getBigUint64(0)
  const biased = Number(bits >> 52n)
  const fraction = bits & ((1n << 52n) - 1n)
  return biased === 0 ? [fraction, -1074] : [fraction | (1n << 52n), biased - 1075]
}

/**
 * A finite `value` rounded to `digits` decimal places (to tens, hundreds… when negative), as Python's `round(x, n)`
 * and `'%.nf'` do: from the double's exact binary value, an exact tie going to the even digit (2.675 is really
 * 2.67499…, so "2.67"; 0.125 is exact, so "0.12"). Returns the decimal text, with the sign of a negative `value`.
 */
export const roundDecimal = (value: number, digits: number): string => {
  const [mantissa, exponent] = binaryParts(value)
  let numerator = exponent >= 0 ? mantissa << BigInt(exponent) : mantissa
  let denominator = exponent >= 0 ? 1n : 1n << BigInt(-exponent)
  if (digits >= 0) numerator *= 10n ** BigInt(digits)
  else denominator *= 10n ** BigInt(-digits)
  let quotient = numerator / denominator
  const twiceRemainder = (numerator % denominator) * 2n
  if (twiceRemainder > denominator || (twiceRemainder === denominator && quotient % 2n === 1n)) quotient += 1n
  const sign = value < 0 || Object.is(value, -0) ? "-" : ""
  if (digits <= 0) return sign + (quotient * 10n ** BigInt(-digits)).toString()
  const text = quotient.toString().padStart(digits + 1, "0")
  return `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}`
}

/** Python's `format(value, ".Nf")`: exact ties to even (`roundDecimal`), and `nan`/`inf` as Python writes them. */
export const fixed = (value: number, precision: number): string =>
  Number.isNaN(value) ? "nan" : Number.isFinite(value) ? roundDecimal(value, precision) : value > 0 ? "inf" : "-inf"
