/**
 * A template's source as Jinja2's lexer reads it, rewritten for nunjucks' lexer, which reads the rest the same way:
 *
 * - line breaks as `\n`, and one trailing newline dropped (Jinja2's `keep_trailing_newline=False`);
 * - `lstrip_blocks` and `trim_blocks` applied here, as Jinja2 applies them: to block tags and comments (nunjucks
 *   leaves comments out), not after `{% raw %}`, and never where `{%+` or `+%}` asks to keep the whitespace;
 * - each `{# comment #}` as the no-op tag `{% __jinja_comment__ %}`, keeping its line breaks (for line numbers) and
 *   its `-` markers, which nunjucks then applies as it does to tags;
 * - `{% raw %}` sections with their whitespace control resolved, as plain `{% raw %}…{% endraw %}`.
 */

/** The tag each comment becomes; the compiler compiles it to nothing. */
export const COMMENT_TAG = "__jinja_comment__"

/** A comment or `{% raw %}` that never ends: Jinja2's TemplateSyntaxError, on the line where it starts. */
export class UnclosedTag extends Error {
  readonly lineno: number

  constructor(message: string, lineno: number) {
    super(message)
    this.lineno = lineno
  }
}

const lineOf = (source: string, index: number): number => source.slice(0, index).split("\n").length

export interface WhitespaceOptions {
  readonly trimBlocks: boolean
  readonly lstripBlocks: boolean
}

/** The end of the tag opening at `start` (`{{`, `{%` or `{#`), past its closing delimiter; string literals skipped. */
const tagEnd = (source: string, start: number): number => {
  const kind = source[start + 1]
  if (kind === "#") {
    const close = source.indexOf("#}", start + 2)
    return close < 0 ? source.length : close + 2
  }
  const close = kind === "{" ? "}}" : "%}"
  for (let index = start + 2; index < source.length; index++) {
    const character = source[index]
    if (character === "\"" || character === "'") {
      index++
      while (index < source.length && source[index] !== character) index += source[index] === "\\" ? 2 : 1
    } else if (source.startsWith(close, index)) {
      return index + 2
    }
  }
  return source.length
}

const RAW_START = /^\{%[-+]?\s*raw\s*[-+]?%\}$/
const RAW_END = /\{%([-+]?)\s*endraw\s*([-+]?)%\}/g

/** `text` without the spaces and tabs that follow its last line break (or its start, at a line start). */
const lstripped = (text: string, atLineStart: boolean): string => {
  const lineStart = text.lastIndexOf("\n") + 1
  return (lineStart > 0 || atLineStart) && /^[ \t]*$/.test(text.slice(lineStart)) ? text.slice(0, lineStart) : text
}

/** Past the whitespace a `-%}` removes (all of it), or the line break `trim_blocks` removes (one). */
const afterTag = (source: string, end: number, closingSign: string, trimBlocks: boolean): number => {
  if (closingSign === "-") return end + (/^\s*/.exec(source.slice(end))?.[0].length ?? 0)
  return trimBlocks && closingSign !== "+" && source[end] === "\n" ? end + 1 : end
}

export const jinjaSource = (text: string, options: WhitespaceOptions): string => {
  const normalized = text.replace(/\r\n?/g, "\n")
  const source = normalized.endsWith("\n") ? normalized.slice(0, -1) : normalized
  let result = ""
  let index = 0
  for (;;) {
    let open = source.indexOf("{", index)
    while (open >= 0 && !"%#{".includes(source[open + 1] ?? "")) open = source.indexOf("{", open + 1)
    if (open < 0) return result + source.slice(index)
    const kind = source[open + 1]!
    const end = tagEnd(source, open)
    const tag = source.slice(open, end)
    const openingSign = tag[2] === "-" || tag[2] === "+" ? tag[2] : ""
    const closingSign = tag.length >= 5 && (tag.at(-3) === "-" || tag.at(-3) === "+") ? tag.at(-3)! : ""
    let data = source.slice(index, open)
    if (kind !== "{" && openingSign === "" && options.lstripBlocks) data = lstripped(data, index === 0 || source[index - 1] === "\n")
    result += data
    if (kind === "#") {
      if (!tag.endsWith("#}") || tag.length < 4) throw new UnclosedTag("Missing end of comment tag", lineOf(source, open))
      const minus = (sign: string) => sign === "-" ? "-" : ""
      result += `{%${minus(openingSign)} ${COMMENT_TAG} ${tag.replace(/[^\n]/g, "")}${minus(closingSign)}%}`
      index = closingSign === "-" ? end : afterTag(source, end, closingSign, options.trimBlocks)
    } else if (kind === "%" && RAW_START.test(tag)) {
      RAW_END.lastIndex = end
      const close = RAW_END.exec(source)
      if (close === null) throw new UnclosedTag("Missing end of raw directive", lineOf(source, open))
      let body = source.slice(end, close.index)
      if (closingSign === "-") body = body.trimStart()
      if (close[1] === "-") body = body.trimEnd()
      else if (close[1] === "" && options.lstripBlocks) body = lstripped(body, false)
      result += `{% raw %}${body}{% endraw %}`
      index = afterTag(source, close.index + close[0].length, close[2]!, options.trimBlocks)
    } else {
      // nunjucks does not know `+`; the whitespace it keeps is kept by not stripping it here
      const bare = tag.slice(0, 2) + (openingSign === "+" ? "" : openingSign) + tag.slice(2 + openingSign.length, tag.length - 2 - closingSign.length) +
        (closingSign === "+" ? "" : closingSign) + tag.slice(-2)
      result += bare
      index = kind === "{" || closingSign === "-" ? end : afterTag(source, end, closingSign, options.trimBlocks)
    }
  }
}
