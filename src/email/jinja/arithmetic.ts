/** Python's arithmetic operators: `+`, `~`, `-`, `*`, `/`, `//`, `%`, `**` and unary signs. */
import { percentFormat } from "./percentFormat.ts"
import { escapeHtml, pythonStr } from "./printing.ts"
import { requireDefined } from "./truth.ts"
import { isMarkup, isNumeric, isText, markup, PythonError, pythonTypeName, typeError } from "./values.ts"

const unsupported = (operator: string, left: unknown, right: unknown) =>
  typeError(`unsupported operand type(s) for ${operator}: '${pythonTypeName(left)}' and '${pythonTypeName(right)}'`)

const numberOperands = (operator: string, left: unknown, right: unknown): readonly [number, number] => {
  requireDefined(left, "left operand")
  requireDefined(right, "right operand")
  if (!isNumeric(left) || !isNumeric(right)) throw unsupported(operator, left, right)
  return [Number(left), Number(right)]
}

const zeroDivision = (divisor: number, message: string) => {
  if (divisor === 0) throw new PythonError("ZeroDivisionError", message)
}

/** Python's `+`. Markup joined with text escapes the text (markupsafe's `__add__` and `__radd__`). */
export const add = (left: unknown, right: unknown): unknown => {
  requireDefined(left, "left operand")
  requireDefined(right, "right operand")
  if (isText(left) && isText(right)) {
    if (isMarkup(left) || isMarkup(right)) return markup(escapeHtml(left).toString() + escapeHtml(right).toString())
    return left.toString() + right.toString()
  }
  if (Array.isArray(left) && Array.isArray(right)) return [...left, ...right]
  const [a, b] = numberOperands("+", left, right)
  return a + b
}

/** Jinja2's `~`: both sides as text (Undefined as nothing); Markup on either side keeps the result safe. */
export const concat = (left: unknown, right: unknown, autoescape: boolean): unknown =>
  autoescape && (isMarkup(left) || isMarkup(right))
    ? markup(escapeHtml(left ?? "").toString() + escapeHtml(right ?? "").toString())
    : pythonStr(left) + pythonStr(right)

const repeat = (sequence: unknown, times: number): unknown => {
  if (!Number.isInteger(times)) throw typeError(`can't multiply sequence by non-int of type 'float'`)
  if (isMarkup(sequence)) return markup(sequence.toString().repeat(Math.max(0, times)))
  if (isText(sequence)) return sequence.toString().repeat(Math.max(0, times))
  return Array.from({ length: Math.max(0, times) }, () => sequence as ReadonlyArray<unknown>).flat()
}

/** Python's binary operators other than `+`, including `str * int` and `str % values`. */
export const arithmetic = (operator: string, left: unknown, right: unknown): unknown => {
  if (operator === "*") {
    if ((isText(left) || Array.isArray(left)) && typeof right === "number") return repeat(left, right)
    if ((isText(right) || Array.isArray(right)) && typeof left === "number") return repeat(right, left)
  }
  if (operator === "%" && isText(left)) {
    requireDefined(right, "right operand")
    // Markup's `%` escapes the values it formats
    return isMarkup(left) ? markup(percentFormat(left.toString(), right, true)) : percentFormat(left.toString(), right, false)
  }
  const [a, b] = numberOperands(operator, left, right)
  switch (operator) {
    case "-":
      return a - b
    case "*":
      return a * b
    case "/":
      zeroDivision(b, "division by zero")
      return a / b
    case "//":
      zeroDivision(b, "integer division or modulo by zero")
      return Math.floor(a / b)
    case "%":
      zeroDivision(b, "integer modulo by zero")
      return a - b * Math.floor(a / b)
    case "**":
      return a ** b
  }
  throw typeError(`unknown operator ${operator}`)
}

/** Unary `-` and `+`. */
export const unary = (operator: "-" | "+", value: unknown): number => {
  requireDefined(value, "operand")
  if (!isNumeric(value)) throw typeError(`bad operand type for unary ${operator}: '${pythonTypeName(value)}'`)
  return operator === "-" ? -Number(value) : Number(value)
}
