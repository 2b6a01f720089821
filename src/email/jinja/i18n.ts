/**
 * Jinja2's i18n extension as Zulip installs it (`install_gettext_translations(translation, newstyle=True)`): the
 * `{% trans %}` tag with its variables, `{% pluralize %}`, `trimmed` and a message context, and the `_`, `gettext`,
 * `ngettext`, `pgettext` and `npgettext` functions. The message ids are the ones Jinja2 extracts (`{{ name }}`
 * becomes `%(name)s`, a literal `%` becomes `%%`), the translation is looked up in the environment's catalog, and
 * the result is always `%`-formatted with the variables, each escaped when the environment autoescapes.
 */
import { isDict, markup, PythonError, percentFormat } from "./python.ts"
import { lexer, type Node, nodes, type Parser } from "./nunjucksInternals.ts"

/** What the engine needs of one language's catalog (Django's activated translation). */
export interface Catalog {
  readonly gettext: (message: string) => string
  readonly ngettext: (singular: string, plural: string, count: unknown) => string
  readonly pgettext: (context: string, message: string) => string
  readonly npgettext: (context: string, singular: string, plural: string, count: unknown) => string
}

/** What the functions below are called with: nunjucks passes the template context as `this`. */
interface TemplateContext {
  readonly env: {
    readonly opts: { readonly autoescape: boolean }
    readonly jinja: {
      readonly catalog: Catalog
      readonly checkValue: (value: unknown) => void
      readonly formatValues: (message: string, variables: Record<string, unknown>) => Record<string, unknown>
    }
  }
}

/** `rv % variables`, as Markup when the environment autoescapes. */
const formatted = (context: TemplateContext, message: string, variables: Record<string, unknown>): unknown => {
  for (const value of Object.values(variables)) context.env.jinja.checkValue(value)
  const autoescape = context.env.opts.autoescape
  const text = percentFormat(message, context.env.jinja.formatValues(message, variables), autoescape)
  return autoescape ? markup(text) : text
}

/**
 * A call's `count` positional arguments and its keyword arguments (nunjucks passes them as a trailing object with
 * its `__keywords` marker); another number of positional arguments is Python's TypeError.
 */
const callArguments = (
  name: string,
  count: number,
  args: ReadonlyArray<unknown>
): readonly [ReadonlyArray<unknown>, Record<string, unknown>] => {
  const last = args.at(-1)
  const [positional, keywords] = isDict(last) && Object.hasOwn(last, "__keywords")
    ? [args.slice(0, -1), (({ __keywords: _, ...rest }) => rest)(last)]
    : [args, {}]
  if (positional.length !== count) {
    throw new PythonError("TypeError", `${name}() takes ${count} positional argument(s) but ${positional.length} were given`)
  }
  return [positional, keywords]
}

const text = (value: unknown, what: string): string => {
  if (typeof value !== "string") throw new PythonError("TypeError", `${what} must be a string`)
  return value
}

/** The globals Jinja2's i18n extension installs, in their newstyle form. */
export const gettextGlobals: Record<string, (this: TemplateContext, ...args: ReadonlyArray<unknown>) => unknown> = {
  gettext(...args) {
    const [[message], variables] = callArguments("gettext", 1, args)
    return formatted(this, this.env.jinja.catalog.gettext(text(message, "the message")), variables)
  },
  _(...args) {
    return gettextGlobals["gettext"]!.call(this, ...args)
  },
  ngettext(...args) {
    const [[singular, plural, count], variables] = callArguments("ngettext", 3, args)
    const translated = this.env.jinja.catalog.ngettext(text(singular, "the singular"), text(plural, "the plural"), count)
    return formatted(this, translated, { num: count, ...variables })
  },
  pgettext(...args) {
    const [[messageContext, message], variables] = callArguments("pgettext", 2, args)
    const translated = this.env.jinja.catalog.pgettext(text(messageContext, "the context"), text(message, "the message"))
    return formatted(this, translated, { context: messageContext, ...variables })
  },
  npgettext(...args) {
    const [[messageContext, singular, plural, count], variables] = callArguments("npgettext", 4, args)
    const translated = this.env.jinja.catalog.npgettext(
      text(messageContext, "the context"),
      text(singular, "the singular"),
      text(plural, "the plural"),
      count
    )
    return formatted(this, translated, { context: messageContext, num: count, ...variables })
  }
}

interface TransBody {
  /** the message id: text with `%%` for `%` and `%(name)s` for each `{{ name }}` */
  readonly message: string
  readonly names: ReadonlyArray<string>
}

/** Jinja2's `_parse_block`: the body's text and `{{ name }}` references, and nothing else. */
const parseBody = (parser: Parser, body: Node & { readonly children: ReadonlyArray<Node> }): TransBody => {
  let message = ""
  const names: Array<string> = []
  for (const child of body.children) {
    if (child.typename !== "Output") {
      const what = child.typename === "CallExtension" ? "trans blocks can't be nested; did you mean `endtrans`?" :
        `control structures in translatable sections are not allowed; saw \`${child.typename.toLowerCase()}\``
      parser.fail(what, child.lineno, child.colno)
    }
    for (const part of child["children"] as ReadonlyArray<Node>) {
      if (part.typename === "TemplateData") {
        message += String(part["value"]).replaceAll("%", "%%")
      } else if (part.typename === "Symbol") {
        const name = part["value"] as string
        names.push(name)
        message += `%(${name})s`
      } else {
        parser.fail("only simple names ({{ name }}) can be used inside a translatable section", part.lineno, part.colno)
      }
    }
  }
  return { message, names }
}

/** Jinja2's `trimmed`: surrounding whitespace removed, and each line break with its indentation made one space. */
const trimWhitespace = (message: string): string => message.trim().replace(/\s*\n\s*/g, " ")

/**
 * The `{% trans %}` tag. Parsing follows Jinja2's `InternationalizationExtension.parse`; the result is a call of
 * `run` with the message ids, the name of the count variable, and the variables' values.
 */
export const transExtension = {
  tags: ["trans"],
  // the result is formatted and escaped by `run` itself
  autoescape: false,

  parse(parser: Parser): Node {
    const tag = parser.nextToken()!
    const contextToken = parser.peekToken()
    const messageContext = contextToken?.type === lexer.TOKEN_STRING ? parser.nextToken()!.value : null
    const variables = new Map<string, Node>()
    let countName: string | null = null
    let trimmed: boolean | null = null
    while (parser.peekToken()?.type !== lexer.TOKEN_BLOCK_END) {
      if (variables.size > 0 && !parser.skip(lexer.TOKEN_COMMA)) parser.fail("expected a comma between translatable variables")
      if (parser.skip(lexer.TOKEN_COLON)) break
      const name = parser.expect(lexer.TOKEN_SYMBOL)
      if (variables.has(name.value)) parser.fail(`translatable variable '${name.value}' defined twice.`, name.lineno, name.colno)
      if (parser.skipValue(lexer.TOKEN_OPERATOR, "=")) {
        variables.set(name.value, parser.parseExpression())
      } else if (trimmed === null && (name.value === "trimmed" || name.value === "notrimmed")) {
        trimmed = name.value === "trimmed"
        continue
      } else {
        variables.set(name.value, new nodes.Symbol(name.lineno, name.colno, name.value))
      }
      countName ??= name.value
    }
    parser.advanceAfterBlockEnd(tag.value)

    const singular = parseBody(parser, parser.parseUntilBlocks("pluralize", "endtrans"))
    countName ??= singular.names[0] ?? null
    let plural: TransBody | null = null
    const end = parser.nextToken()
    if (end === null) parser.fail("unclosed translation block", tag.lineno, tag.colno)
    if (end.value === "pluralize") {
      const named = parser.peekToken()
      if (named?.type === lexer.TOKEN_SYMBOL) {
        parser.nextToken()
        if (!variables.has(named.value)) parser.fail(`unknown variable '${named.value}' for pluralization`, named.lineno, named.colno)
        countName = named.value
      }
      parser.advanceAfterBlockEnd("pluralize")
      plural = parseBody(parser, parser.parseUntilBlocks("pluralize", "endtrans"))
      const close = parser.nextToken()
      if (close === null) parser.fail("unclosed translation block", tag.lineno, tag.colno)
      if (close.value === "pluralize") parser.fail("a translatable section can have only one pluralize section", close.lineno, close.colno)
    }
    parser.advanceAfterBlockEnd("endtrans")

    for (const name of [...singular.names, ...(plural?.names ?? [])]) {
      if (!variables.has(name)) variables.set(name, new nodes.Symbol(tag.lineno, tag.colno, name))
    }
    if (plural !== null && countName === null) parser.fail("pluralize without variables", tag.lineno, tag.colno)
    const trim = (message: string) => trimmed === true ? trimWhitespace(message) : message
    const literal = (value: string | null) => new nodes.Literal(tag.lineno, tag.colno, value)
    const values = new nodes.Dict(
      tag.lineno,
      tag.colno,
      [...variables].map(([name, value]) => new nodes.Pair(tag.lineno, tag.colno, literal(name), value))
    )
    const args = new nodes.NodeList(tag.lineno, tag.colno, [
      literal(trim(singular.message)),
      literal(plural === null ? null : trim(plural.message)),
      literal(messageContext),
      literal(plural === null ? null : countName),
      values
    ])
    return new nodes.CallExtension(transExtension, "run", args, [])
  },

  run(
    context: TemplateContext,
    singular: string,
    plural: string | null,
    messageContext: string | null,
    countName: string | null,
    variables: Record<string, unknown>
  ): unknown {
    const catalog = context.env.jinja.catalog
    const values: Record<string, unknown> = messageContext === null ? { ...variables } : { context: messageContext, ...variables }
    if (plural === null) {
      const message = messageContext === null ? catalog.gettext(singular) : catalog.pgettext(messageContext, singular)
      return formatted(context, message, values)
    }
    const count = variables[countName!]
    const message = messageContext === null
      ? catalog.ngettext(singular, plural, count)
      : catalog.npgettext(messageContext, singular, plural, count)
    return formatted(context, message, { num: count, ...values })
  }
}
