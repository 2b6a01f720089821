/** Jinja2's `pprint` filter: Python's `pprint.pformat`. */
import { isDict, pythonRepr, PyTuple } from "./python.ts"
import {
  define,
  textLength,
  SPACE,
  splitLines,
  sortBy
} from "./filterSupport.ts"

// ---- filters: pprint ----------------------------------------------------------------------------------------------

const PPRINT_WIDTH = 80

const sortedEntries = (dict: Record<string, unknown>): Array<[string, unknown]> => sortBy(Object.entries(dict), ([key]) => key, false)

/** `repr()` as `pprint` writes it: dict keys sorted. */
const sortedRepr = (value: unknown): string => {
  if (value === undefined) return "Undefined"
  if (isDict(value)) return `{${sortedEntries(value).map(([key, item]) => `${pythonRepr(key)}: ${sortedRepr(item)}`).join(", ")}}`
  if (value instanceof PyTuple) return value.length === 1 ? `(${sortedRepr(value[0])},)` : `(${value.map(sortedRepr).join(", ")})`
  if (Array.isArray(value)) return `[${value.map(sortedRepr).join(", ")}]`
  return pythonRepr(value)
}

const NONSPACE_THEN_SPACE = new RegExp(`[^${SPACE}]*[${SPACE}]*`, "gu")

/** Python's `pprint.pformat`: the repr, or, when it is wider than 80, dicts, lists, tuples and strings split over lines. */
const prettyFormat = (value: unknown): string => {
  let out = ""
  const write = (text: string): void => {
    out += text
  }
  const format = (item: unknown, indent: number, allowance: number, level: number): void => {
    const rep = sortedRepr(item)
    if (textLength(rep) <= PPRINT_WIDTH - indent - allowance) return write(rep)
    if (isDict(item)) {
      write("{")
      formatEntries(sortedEntries(item), indent, allowance + 1, level + 1)
      write("}")
    } else if (item instanceof PyTuple) {
      const end = item.length === 1 ? ",)" : ")"
      write("(")
      formatItems(item, indent, allowance + end.length, level + 1)
      write(end)
    } else if (Array.isArray(item)) {
      write("[")
      formatItems(item, indent, allowance + 1, level + 1)
      write("]")
    } else if (typeof item === "string") {
      formatString(item, indent, allowance, level + 1)
    } else {
      write(rep)
    }
  }
  const formatItems = (items: ReadonlyArray<unknown>, indent: number, allowance: number, level: number): void => {
    items.forEach((item, index) => {
      if (index > 0) write(`,\n${" ".repeat(indent + 1)}`)
      format(item, indent + 1, index === items.length - 1 ? allowance : 1, level)
    })
  }
  const formatEntries = (entries: ReadonlyArray<[string, unknown]>, indent: number, allowance: number, level: number): void => {
    entries.forEach(([key, item], index) => {
      const keyRep = pythonRepr(key)
      write(`${keyRep}: `)
      format(item, indent + 1 + textLength(keyRep) + 2, index === entries.length - 1 ? allowance : 1, level)
      if (index < entries.length - 1) write(`,\n${" ".repeat(indent + 1)}`)
    })
  }
  const formatString = (text: string, indent: number, allowance: number, level: number): void => {
    const [start, room] = level === 1 ? [indent + 1, allowance + 1] : [indent, allowance]
    const maxWidth = PPRINT_WIDTH - start
    const lines = splitLines(text, true)
    const chunks: Array<string> = []
    let rep = ""
    lines.forEach((line, lineIndex) => {
      const lastLine = lineIndex === lines.length - 1
      rep = pythonRepr(line)
      if (textLength(rep) <= maxWidth - (lastLine ? room : 0)) return void chunks.push(rep)
      // words with their following whitespace, gathered into chunks that fit
      const parts = [...line.matchAll(NONSPACE_THEN_SPACE)].map((match) => match[0]).slice(0, -1)
      let current = ""
      parts.forEach((part, partIndex) => {
        const candidate = current + part
        const width = maxWidth - (lastLine && partIndex === parts.length - 1 ? room : 0)
        if (textLength(pythonRepr(candidate)) > width) {
          if (current !== "") chunks.push(pythonRepr(current))
          current = part
        } else {
          current = candidate
        }
      })
      if (current !== "") chunks.push(pythonRepr(current))
    })
    // (pprint writes the last line's repr when there is a single chunk)
    if (chunks.length === 1) return write(rep)
    if (level === 1) write("(")
    write(chunks.join(`\n${" ".repeat(start)}`))
    if (level === 1) write(")")
  }
  format(value, 0, 0, 0)
  return out
}

export const pprint = define("pprint", ["value"], prettyFormat)
