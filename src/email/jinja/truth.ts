/** Python's truth and comparison: `bool()`, `==`, ordering and `in`. */
import { isDict, isMarkup, isNumeric, isText, PythonError, PyTuple, pythonTypeName, typeError } from "./values.ts"

/** Python's `bool()`: empty strings, lists and dicts, zero, None and Undefined are false. */
export const truthy = (value: unknown): boolean => {
  switch (typeof value) {
    case "boolean":
      return value
    case "string":
      return value.length > 0
    case "number":
      return value !== 0
    case "undefined":
      return false
  }
  if (value === null) return false
  if (Array.isArray(value)) return value.length > 0
  if (isMarkup(value)) return value.length > 0
  if (isDict(value)) return Object.keys(value).length > 0
  return true
}

/** Python's `==`: by value for lists and dicts, `1 == 1.0 == True`, and Undefined equal only to Undefined. */
export const equals = (left: unknown, right: unknown): boolean => {
  if (left === right) return true
  if (isNumeric(left) && isNumeric(right)) return Number(left) === Number(right)
  if (isText(left) && isText(right)) return left.toString() === right.toString()
  if (Array.isArray(left) && Array.isArray(right)) {
    return (left instanceof PyTuple) === (right instanceof PyTuple) && left.length === right.length &&
      left.every((item, index) => equals(item, right[index]))
  }
  if (isDict(left) && isDict(right)) {
    const keys = Object.keys(left)
    return keys.length === Object.keys(right).length &&
      keys.every((key) => Object.hasOwn(right, key) && equals(left[key], right[key]))
  }
  return false
}

export const undefinedError = (what: string) => new PythonError("UndefinedError", `'${what}' is undefined`)

export const requireDefined = (value: unknown, what: string): void => {
  if (value === undefined) throw undefinedError(what)
}

/** Python's ordering (`<`, `<=`, `>`, `>=`): numbers with numbers, strings with strings, lists item by item. */
const order = (left: unknown, right: unknown, operator: string): number => {
  if (isNumeric(left) && isNumeric(right)) return Number(left) - Number(right)
  if (isText(left) && isText(right)) {
    const [a, b] = [left.toString(), right.toString()]
    return a < b ? -1 : a > b ? 1 : 0
  }
  if (Array.isArray(left) && Array.isArray(right)) {
    for (let index = 0; index < Math.min(left.length, right.length); index++) {
      if (!equals(left[index], right[index])) return order(left[index], right[index], operator)
    }
    return left.length - right.length
  }
  if (left === undefined || right === undefined) throw new PythonError("UndefinedError", "an undefined value cannot be compared")
  throw typeError(`'${operator}' not supported between instances of '${pythonTypeName(left)}' and '${pythonTypeName(right)}'`)
}

/** One comparison of a (possibly chained) `a < b <= c`. */
export const compare = (left: unknown, operator: string, right: unknown): boolean => {
  switch (operator) {
    case "==":
    case "===":
      return equals(left, right)
    case "!=":
    case "!==":
      return !equals(left, right)
    case "<":
      return order(left, right, operator) < 0
    case "<=":
      return order(left, right, operator) <= 0
    case ">":
      return order(left, right, operator) > 0
    case ">=":
      return order(left, right, operator) >= 0
  }
  throw typeError(`unknown comparison ${operator}`)
}

/** Python's `in`: a substring, a list item (by `==`) or a dict key; nothing is in Undefined. */
export const contains = (container: unknown, item: unknown): boolean => {
  if (container === undefined) return false
  if (isText(container)) {
    if (!isText(item)) throw typeError(`'in <string>' requires string as left operand, not ${pythonTypeName(item)}`)
    return container.toString().includes(item.toString())
  }
  if (Array.isArray(container)) return container.some((element) => equals(element, item))
  if (isDict(container)) return typeof item === "string" && Object.hasOwn(container, item)
  throw typeError(`argument of type '${pythonTypeName(container)}' is not iterable`)
}
