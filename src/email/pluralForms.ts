/**
 * The `plural=` expression of a gettext catalog's `Plural-Forms` header, read and evaluated as Python's
 * `gettext.c2py` does (the function Django's translations call), without `eval`.
 *
 * `@tannin/plural-forms` was the first choice, but it gets real catalogs wrong: its early-return trick for `?:`
 * returns an inner ternary's branch as the whole result, so Transifex's Romanian rule
 * `(n==1?0:(((n%100>19)||((n%100==0)&&(n!=0)))?2:1))` gives form 2 for n = 2 (Python: 1), and it evaluates
 * malformed expressions to NaN instead of refusing them. This is a recursive-descent reading of Python's own
 * grammar (`gettext._parse`), so what Python refuses is refused here with Python's message.
 */
import { Schema } from "effect"

/** A count ngettext cannot use, or a plural expression that cannot be evaluated for it (division by zero). */
export class PluralFormError extends Schema.TaggedError<PluralFormError>()("PluralFormError", {
  message: Schema.String
}) {}

/** The expression cannot be read; the message is Python's `ValueError` text where Python has one. */
export class PluralExpressionError extends Error {}

/** The index of the plural form for a count. */
export type PluralFunction = (n: number) => number

/** Python's `gettext._token_pattern`: blanks are skipped, the first group is a token, the second an invalid one. */
const TOKEN = /[ \t]+|([0-9]+\b|n\b|[()]|[-*/%+?:]|[><!]=?|==|&&|\|\|)|(\w+|[\s\S])/g

/** Python's `gettext._binary_ops`: C's precedence, loosest first. */
const PRIORITY = new Map([
  ["||", 1], ["&&", 2], ["==", 3], ["!=", 3], ["<", 4], [">", 4], ["<=", 4], [">=", 4], ["+", 5], ["-", 5],
  ["*", 6], ["/", 6], ["%", 6]
])

const tokenize = (source: string): Array<string> =>
  Array.from(source.matchAll(TOKEN), ([, token, invalid]) => {
    if (invalid !== undefined) throw new PluralExpressionError(`invalid token in plural form: ${invalid}`)
    return token
  }).filter((token) => token !== undefined)

const unexpected = (token: string) =>
  new PluralExpressionError(
    token === "" ? "unexpected end of plural form" : `unexpected token in plural form: ${token}`
  )

/** Python's `//` and `%` (floor division, the sign of the divisor), which differ from C's for negative counts. */
const divisor = (source: string, n: number, b: number): number => {
  if (b === 0) throw new PluralFormError({ message: `plural form "${source}" divides by zero for the count ${n}` })
  return b
}
const floorModulo = (a: number, b: number): number => {
  const remainder = a % b
  return remainder !== 0 && (remainder < 0) !== (b < 0) ? remainder + b : remainder
}

type Operand = (n: number) => number

/** Comparisons give 0/1 (Python's bools), `&&`/`||` give an operand and short-circuit, as Python's and/or. */
const binary = (source: string, operator: string, left: Operand, right: Operand): Operand => {
  switch (operator) {
    case "||": return (n) => left(n) || right(n)
    case "&&": return (n) => left(n) && right(n)
    case "==": return (n) => +(left(n) === right(n))
    case "!=": return (n) => +(left(n) !== right(n))
    case "<": return (n) => +(left(n) < right(n))
    case ">": return (n) => +(left(n) > right(n))
    case "<=": return (n) => +(left(n) <= right(n))
    case ">=": return (n) => +(left(n) >= right(n))
    case "+": return (n) => left(n) + right(n)
    case "-": return (n) => left(n) - right(n)
    case "*": return (n) => left(n) * right(n)
    case "/": return (n) => Math.floor(left(n) / divisor(source, n, right(n)))
    default: return (n) => floorModulo(left(n), divisor(source, n, right(n)))
  }
}

/** Compiles a `plural=` expression; throws `PluralExpressionError` for one Python's `c2py` would refuse. */
export const compilePluralForms = (source: string): PluralFunction => {
  if (source.length > 1000) throw new PluralExpressionError("plural form expression is too long")
  const tokens = tokenize(source)
  let position = 0
  const next = (): string => tokens[position++] ?? ""

  /** Python's `_parse(tokens, priority)`: one operand and every operator binding at least as tightly as `priority`. */
  const parse = (priority: number): [Operand, string] => {
    let token = next()
    let negations = 0
    for (; token === "!"; token = next()) negations++
    let operand: Operand
    if (token === "(") {
      const [inner, closing] = parse(-1)
      if (closing !== ")") throw new PluralExpressionError("unbalanced parenthesis in plural form")
      operand = inner
    } else if (token === "n") {
      operand = (n) => n
    } else if (/^[0-9]+$/.test(token)) {
      const value = Number(token)
      operand = () => value
    } else {
      throw unexpected(token)
    }
    token = next()
    if (negations > 0) {
      // Python writes `!` as `not`, which covers a whole comparison (`!n == 1` is `not (n == 1)` there, `(!n) == 1`
      // in C) and cannot follow a comparison or arithmetic operator: refused rather than read one way or the other
      if (priority >= 4 || (PRIORITY.get(token) ?? 0) >= 3) {
        throw new PluralExpressionError(`'!' in plural form "${source}" must be followed by a parenthesised operand`)
      }
      const negated = operand
      operand = negations % 2 === 1 ? (n) => +!negated(n) : (n) => +!!negated(n)
    }
    for (let bound = PRIORITY.get(token); bound !== undefined && bound >= priority; bound = PRIORITY.get(token)) {
      const [right, after] = parse(bound + 1)
      operand = binary(source, token, operand, right)
      token = after
    }
    if (token === "?" && priority <= 0) {
      const [ifTrue, colon] = parse(0)
      if (colon !== ":") throw unexpected(colon)
      const [ifFalse, after] = parse(-1)
      const condition = operand
      operand = (n) => condition(n) ? ifTrue(n) : ifFalse(n)
      token = after
    }
    return [operand, token]
  }

  const [plural, rest] = parse(-1)
  if (rest !== "") throw unexpected(rest)
  return plural
}

/** Python's default when a catalog has no `Plural-Forms`: Germanic, anything but one is plural. */
export const germanicPlural: PluralFunction = (n) => +(n !== 1)
