/**
 * nunjucks' parser, reading the parts of Jinja2's syntax it does not: chained inline `if`/`else`, `xs.0` and slices,
 * tuples, loop filters (`{% for x in xs if x %}`), `include … without context`, `{% with %}`, `{% autoescape %}`,
 * `{% set %}` of a namespace attribute, of several names at once or through a filter, and Python's string escapes.
 * Errors without a position of their own (an unclosed block at the end of the file) are placed on the line of the
 * innermost tag being parsed, as Jinja2 places them.
 */
import { lexer, type Node, nodes, NunjucksParser, type Token } from "./nunjucksInternals.ts"

const NodeBase = nodes.Node as unknown as new(lineno: number, colno: number, ...fields: ReadonlyArray<unknown>) => object

/** Declares a node type of this engine: `compile<name>` in the compiler emits its code. */
const nodeType = (name: string, fields: ReadonlyArray<string>) => {
  const type = class extends NodeBase {
    get typename(): string {
      return name
    }

    get fields(): ReadonlyArray<string> {
      return fields
    }
  }
  return type as unknown as new(lineno: number, colno: number, ...fields: ReadonlyArray<unknown>) => Node
}

/** `{% with a = x, b = y %}…{% endwith %}`: the values computed in the outer scope, the names bound in an inner one. */
export const WithNode = nodeType("JinjaWith", ["targets", "values", "body"])
/** `{% autoescape expr %}…{% endautoescape %}` */
export const AutoescapeNode = nodeType("JinjaAutoescape", ["value", "body"])
/** `a[start:stop:step]` */
export const SliceNode = nodeType("JinjaSlice", ["target", "start", "stop", "step"])
/** `(a, b)` or `a, b` where a tuple is allowed */
export const TupleNode = nodeType("JinjaTuple", ["children"])
/** The items a filtered `for` loop keeps: `for x in xs if cond` */
export const LoopFilterNode = nodeType("JinjaLoopFilter", ["name", "arr", "cond"])
/** `{% set ns.attr = value %}` */
export const SetAttributeNode = nodeType("JinjaSetAttribute", ["target", "value"])
/** `{% filter a|b %}…{% endfilter %}`: the filters' result written as it is, never escaped again (Jinja2's FilterBlock) */
export const FilterBlockNode = nodeType("JinjaFilterBlock", ["filtered"])

const PYTHON_ESCAPES: Record<string, string> = {
  "\\": "\\",
  "'": "'",
  "\"": "\"",
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\n": ""
}

/** A string literal's body with Python's escapes (`\u00e9`, `\x41`, `\101`, `\n`, …), as Jinja2 reads it. */
const pythonStringBody = (body: string): string =>
  body.replace(/\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[0-7]{1,3}|[\s\S])/g, (whole, escape: string) => {
    if (/^[uUx]/.test(escape)) return String.fromCodePoint(Number.parseInt(escape.slice(1), 16))
    if (/^[0-7]/.test(escape)) return String.fromCodePoint(Number.parseInt(escape, 8))
    return PYTHON_ESCAPES[escape] ?? whole
  })

interface Tokenizer {
  index: number
  str: string
  lineno: number
  colno: number
  in_code: boolean
  current(): string
  forward(): void
  isFinished(): boolean
  nextToken(): Token | null
  _parseString(delimiter: string): string
}

/** Python's number literals nunjucks' lexer does not read: `1e3`, `1.5e-10`, `1_000`. */
const PYTHON_NUMBER = /^(\d[\d_]*)(\.\d[\d_]*)?([eE][+-]?\d+)?(?![\w.])/

/** nunjucks' tokenizer for one template, with Python's string and number literals (only this instance is changed). */
const jinjaTokens = (source: string, options: object): Tokenizer => {
  const tokens = lexer.lex(source, options) as Tokenizer
  const nunjucksToken = tokens.nextToken.bind(tokens)
  // brackets open in the current tag: as in Jinja2, a `}}` while a `{` is open closes that `{` first
  let open = 0
  const counted = (token: Token | null): Token | null => {
    if (token === null) return token
    if (token.type === lexer.TOKEN_VARIABLE_START || token.type === lexer.TOKEN_BLOCK_START) open = 0
    else if (token.type === lexer.TOKEN_LEFT_CURLY || token.type === lexer.TOKEN_LEFT_BRACKET || token.type === lexer.TOKEN_LEFT_PAREN) open++
    else if (token.type === lexer.TOKEN_RIGHT_CURLY || token.type === lexer.TOKEN_RIGHT_BRACKET || token.type === lexer.TOKEN_RIGHT_PAREN) open--
    return token
  }
  tokens.nextToken = function(this: Tokenizer) {
    if (this.in_code && open > 0 && this.str.startsWith("}}", this.index)) {
      const [lineno, colno] = [this.lineno, this.colno]
      this.forward()
      return counted({ type: lexer.TOKEN_RIGHT_CURLY, value: "}", lineno, colno })
    }
    const number = this.in_code ? PYTHON_NUMBER.exec(this.str.slice(this.index)) : null
    if (number === null || (number[3] === undefined && !number[0].includes("_"))) return counted(nunjucksToken())
    const [lineno, colno] = [this.lineno, this.colno]
    for (let consumed = 0; consumed < number[0].length; consumed++) this.forward()
    const value = number[0].replaceAll("_", "")
    return { type: number[2] === undefined && number[3] === undefined ? lexer.TOKEN_INT : lexer.TOKEN_FLOAT, value, lineno, colno }
  }
  tokens._parseString = function(this: Tokenizer, delimiter: string) {
    this.forward()
    let body = ""
    while (!this.isFinished() && this.current() !== delimiter) {
      if (this.current() === "\\") {
        body += this.current()
        this.forward()
      }
      body += this.current()
      this.forward()
    }
    this.forward()
    return pythonStringBody(body)
  }
  return tokens
}

class JinjaParser extends (NunjucksParser as unknown as new(tokens: Tokenizer) => ParserBase) {
  /** the tags being parsed, innermost last, to place errors that come without a position */
  private readonly open: Array<Token> = []

  override parseStatement(): Node | null {
    const token = this.peekToken()
    if (token !== null) this.open.push(token)
    try {
      switch (token?.value) {
        case "with":
          return this.parseWith()
        case "autoescape":
          return this.parseAutoescape()
        case "set":
          return this.parseJinjaSet()
        default:
          return super.parseStatement()
      }
    } catch (error) {
      const located = error as { lineno?: number; colno?: number }
      if (located.lineno === undefined && token !== null) {
        located.lineno = token.lineno + 1
        located.colno = token.colno + 1
      }
      throw error
    } finally {
      if (token !== null) this.open.pop()
    }
  }

  /** Jinja2's `a if b else c if d else e`, and `a if b` alone. */
  override parseInlineIf(): Node {
    const body = this.parseOr()
    if (!this.skipSymbol("if")) return body
    const cond = this.parseOr()
    const else_ = this.skipSymbol("else") ? this.parseInlineIf() : null
    const node = new nodes.InlineIf(body.lineno, body.colno) as Node & Record<string, unknown>
    node["body"] = body
    node["cond"] = cond
    node["else_"] = else_
    return node
  }

  /** `x.0` (an index written as an attribute) and `x[a:b:c]` beside nunjucks' lookups and calls. */
  override parsePostfix(target: Node): Node {
    let node = target
    for (;;) {
      const token = this.peekToken()
      if (token?.type === lexer.TOKEN_OPERATOR && token.value === ".") {
        this.nextToken()
        const name = this.nextToken()!
        if (name.type !== lexer.TOKEN_SYMBOL && name.type !== lexer.TOKEN_INT) {
          this.fail(`expected name as lookup value, got ${name.value}`, name.lineno, name.colno)
        }
        const key = name.type === lexer.TOKEN_INT ? Number(name.value) : name.value
        const lookup = new nodes.LookupVal(token.lineno, token.colno, node, new nodes.Literal(name.lineno, name.colno, key))
        // `x.name` looks for an attribute before an item; `x.0` is an item, as in Jinja2
        ;(lookup as Record<string, unknown>)["attribute"] = name.type === lexer.TOKEN_SYMBOL
        node = lookup
      } else if (token?.type === lexer.TOKEN_LEFT_BRACKET) {
        this.nextToken()
        node = this.parseSubscript(node, token)
      } else if (token?.type === lexer.TOKEN_LEFT_PAREN) {
        node = new nodes.FunCall(token.lineno, token.colno, node, this.parseSignature())
      } else {
        return node
      }
    }
  }

  private parseSubscript(target: Node, open: Token): Node {
    const part = (): Node | null => {
      const next = this.peekToken()!
      return next.type === lexer.TOKEN_COLON || next.type === lexer.TOKEN_RIGHT_BRACKET ? null : this.parseExpression()
    }
    const start = part()
    if (!this.skip(lexer.TOKEN_COLON)) {
      if (!this.skip(lexer.TOKEN_RIGHT_BRACKET)) this.fail("expected ']' after the index", open.lineno, open.colno)
      return new nodes.LookupVal(open.lineno, open.colno, target, start)
    }
    const stop = part()
    const step = this.skip(lexer.TOKEN_COLON) ? part() : null
    if (!this.skip(lexer.TOKEN_RIGHT_BRACKET)) this.fail("expected ']' after the slice", open.lineno, open.colno)
    return new SliceNode(open.lineno, open.colno, target, start, stop, step)
  }

  /** `(a, b)` and `(a,)` are tuples; `(a)` is `a`. */
  override parseAggregate(): Node | null {
    const open = this.peekToken()
    if (open?.type !== lexer.TOKEN_LEFT_PAREN) return super.parseAggregate()
    this.nextToken()
    const items: Array<Node> = []
    let trailingComma = false
    while (!this.skip(lexer.TOKEN_RIGHT_PAREN)) {
      if (items.length > 0 && !this.skip(lexer.TOKEN_COMMA)) this.fail("expected ',' or ')'", open.lineno, open.colno)
      if (this.skip(lexer.TOKEN_RIGHT_PAREN)) {
        trailingComma = true
        break
      }
      items.push(this.parseExpression())
    }
    if (items.length === 1 && !trailingComma) return new nodes.Group(open.lineno, open.colno, items)
    return new TupleNode(open.lineno, open.colno, items)
  }

  /** An expression, or several separated by commas (a tuple), as in `{% set a, b = 1, 2 %}`. */
  private parseTupleOrExpression(): Node {
    const first = this.parseExpression()
    if (this.peekToken()?.type !== lexer.TOKEN_COMMA) return first
    const items = [first]
    while (this.skip(lexer.TOKEN_COMMA)) {
      if (this.peekToken()?.type === lexer.TOKEN_BLOCK_END) break
      items.push(this.parseExpression())
    }
    return new TupleNode(first.lineno, first.colno, items)
  }

  /** nunjucks' `for`, plus Jinja2's loop filter: `{% for x in xs if cond %}`. */
  override parseFor(): Node {
    const forToken = this.peekToken()!
    this.skipSymbol("for")
    const names: Array<Node> = [this.parsePrimary()]
    while (this.skip(lexer.TOKEN_COMMA)) names.push(this.parsePrimary())
    if (names.some((name) => name.typename !== "Symbol")) this.fail("variable name expected for loop", forToken.lineno, forToken.colno)
    if (!this.skipSymbol("in")) this.fail("expected \"in\" keyword for loop", forToken.lineno, forToken.colno)
    const name = names.length === 1 ? names[0]! : new nodes.Array(forToken.lineno, forToken.colno, names)
    let arr = this.parseOr()
    if (this.skipSymbol("if")) arr = new LoopFilterNode(arr.lineno, arr.colno, name, arr, this.parseExpression())
    this.advanceAfterBlockEnd(forToken.value)
    const node = new nodes.For(forToken.lineno, forToken.colno, arr, name) as Node & Record<string, unknown>
    node["body"] = this.parseUntilBlocks("endfor", "else")
    if (this.skipSymbol("else")) {
      this.advanceAfterBlockEnd("else")
      node["else_"] = this.parseUntilBlocks("endfor")
    }
    this.advanceAfterBlockEnd()
    return node
  }

  /**
   * `x is test`, `x is test(args)` and Jinja2's `x is test arg` (one argument without parentheses); `none`, `true`
   * and `false` name tests there, as in Jinja2.
   */
  override parseIs(): Node {
    const node = this.parseCompare()
    const isToken = this.peekToken()
    if (!this.skipSymbol("is")) return node
    const negated = this.skipSymbol("not")
    const nameToken = this.nextToken()!
    if (![lexer.TOKEN_SYMBOL, lexer.TOKEN_NONE, lexer.TOKEN_BOOLEAN].includes(nameToken.type)) {
      this.fail(`expected a test name after 'is', got ${nameToken.value}`, nameToken.lineno, nameToken.colno)
    }
    const name = new nodes.Symbol(nameToken.lineno, nameToken.colno, nameToken.value)
    const next = this.peekToken()
    let test: Node = name
    if (next?.type === lexer.TOKEN_LEFT_PAREN) {
      test = new nodes.FunCall(next.lineno, next.colno, name, this.parseSignature())
    } else if (next !== null && TEST_ARGUMENT_START.has(next.type) && !["else", "or", "and", "if", "is", "not", "in"].includes(next.value)) {
      test = new nodes.FunCall(next.lineno, next.colno, name, new nodes.NodeList(next.lineno, next.colno, [this.parsePostfix(this.parsePrimary(true))]))
    }
    const is = new nodes.Is(isToken!.lineno, isToken!.colno, node, test)
    return negated ? new nodes.Not(isToken!.lineno, isToken!.colno, is) : is
  }

  /** `{% filter a(x)|b %}…{% endfilter %}`, several filters chained as in Jinja2. */
  override parseFilterStatement(): Node {
    const tag = this.nextToken()!
    const placeholder = new nodes.Symbol(tag.lineno, tag.colno, CAPTURED)
    const name = this.parseFilterName()
    const first = new nodes.Filter(name.lineno, name.colno, name, new nodes.NodeList(name.lineno, name.colno, [placeholder, ...this.parseFilterArgs(name)]))
    const filtered = this.parseFilter(first)
    this.advanceAfterBlockEnd(tag.value)
    const capture = new nodes.Capture(tag.lineno, tag.colno, this.parseUntilBlocks("endfilter"))
    this.advanceAfterBlockEnd()
    return new FilterBlockNode(tag.lineno, tag.colno, replacePlaceholder(filtered, capture))
  }

  /** `{% include x [ignore missing] [with|without context] %}` */
  override parseInclude(): Node {
    const tag = this.nextToken()!
    const node = new nodes.Include(tag.lineno, tag.colno) as Node & Record<string, unknown>
    node["template"] = this.parseExpression()
    if (this.skipSymbol("ignore")) {
      if (!this.skipSymbol("missing")) this.fail("expected 'missing' after 'ignore'", tag.lineno, tag.colno)
      node["ignoreMissing"] = true
    }
    node["withContext"] = this.parseWithContext() ?? true
    this.advanceAfterBlockEnd(tag.value)
    return node
  }

  private parseWith(): Node {
    const tag = this.nextToken()!
    const targets: Array<Node> = []
    const values: Array<Node> = []
    while (this.peekToken()?.type !== lexer.TOKEN_BLOCK_END) {
      if (targets.length > 0 && !this.skip(lexer.TOKEN_COMMA)) this.fail("expected ',' between with assignments", tag.lineno, tag.colno)
      targets.push(this.parsePrimary())
      if (!this.skipValue(lexer.TOKEN_OPERATOR, "=")) this.fail("expected '=' in with", tag.lineno, tag.colno)
      values.push(this.parseExpression())
    }
    this.advanceAfterBlockEnd(tag.value)
    const body = this.parseUntilBlocks("endwith")
    this.advanceAfterBlockEnd()
    return new WithNode(tag.lineno, tag.colno, targets, values, body)
  }

  private parseAutoescape(): Node {
    const tag = this.nextToken()!
    const value = this.parseExpression()
    this.advanceAfterBlockEnd(tag.value)
    const body = this.parseUntilBlocks("endautoescape")
    this.advanceAfterBlockEnd()
    return new AutoescapeNode(tag.lineno, tag.colno, value, body)
  }

  /**
   * `{% set x = v %}`, `{% set a, b = v %}` (unpacked), `{% set ns.attr = v %}`, and the block form
   * `{% set x [| filter …] %}…{% endset %}`.
   */
  private parseJinjaSet(): Node {
    const tag = this.nextToken()!
    const targets: Array<Node> = [this.parsePrimary()]
    while (this.skip(lexer.TOKEN_COMMA)) targets.push(this.parsePrimary())
    if (targets.length === 1 && targets[0]!.typename === "LookupVal") {
      if (!this.skipValue(lexer.TOKEN_OPERATOR, "=")) this.fail("expected '=' after a namespace attribute", tag.lineno, tag.colno)
      const value = this.parseExpression()
      this.advanceAfterBlockEnd(tag.value)
      return new SetAttributeNode(tag.lineno, tag.colno, targets[0], value)
    }
    if (targets.some((target) => target.typename !== "Symbol")) this.fail("can't assign to this expression", tag.lineno, tag.colno)
    const node = new nodes.Set(tag.lineno, tag.colno, targets) as Node & Record<string, unknown>
    if (this.skipValue(lexer.TOKEN_OPERATOR, "=")) {
      node["value"] = this.parseTupleOrExpression()
      this.advanceAfterBlockEnd(tag.value)
      return node
    }
    // a block set, optionally through filters: the filters take the captured text as their first argument
    const placeholder = new nodes.Symbol(tag.lineno, tag.colno, CAPTURED)
    const filtered = this.parseFilter(placeholder)
    this.advanceAfterBlockEnd(tag.value)
    const capture = new nodes.Capture(tag.lineno, tag.colno, this.parseUntilBlocks("endset"))
    this.advanceAfterBlockEnd()
    node["value"] = null
    node["body"] = filtered === placeholder ? capture : replacePlaceholder(filtered, capture)
    return node
  }
}

/** Tokens that can start the one argument of a test written without parentheses (`x is divisibleby 3`). */
const TEST_ARGUMENT_START: ReadonlySet<string> = new Set([
  lexer.TOKEN_SYMBOL,
  lexer.TOKEN_STRING,
  lexer.TOKEN_INT,
  lexer.TOKEN_FLOAT,
  lexer.TOKEN_NONE,
  lexer.TOKEN_BOOLEAN,
  lexer.TOKEN_LEFT_BRACKET,
  lexer.TOKEN_LEFT_CURLY
])

/** The name standing for a block's captured text until the filters around it are built. */
const CAPTURED = "__jinja_captured__"

const replacePlaceholder = (filter: Node, capture: Node): Node => {
  const args = filter["args"] as Node & { children: Array<Node> }
  const first = args.children[0]!
  args.children[0] = first.typename === "Symbol" && first["value"] === CAPTURED ? capture : replacePlaceholder(first, capture)
  return filter
}

/** The protected members of nunjucks' parser that `JinjaParser` uses. */
interface ParserBase {
  peekToken(): Token | null
  nextToken(withWhitespace?: boolean): Token | null
  skip(type: string): boolean
  skipSymbol(value: string): boolean
  skipValue(type: string, value: string): boolean
  fail(message: string, lineno?: number, colno?: number): never
  advanceAfterBlockEnd(name?: string): Token
  parseUntilBlocks(...names: ReadonlyArray<string>): Node
  parseStatement(): Node | null
  parseExpression(): Node
  parseInlineIf(): Node
  parseOr(): Node
  parsePrimary(noPostfix?: boolean): Node
  parsePostfix(node: Node): Node
  parseSignature(tolerant?: boolean, noParens?: boolean): Node
  parseAggregate(): Node | null
  parseFilter(node: Node): Node
  parseFilterName(): Node
  parseFilterArgs(node: Node): ReadonlyArray<Node>
  parseCompare(): Node
  parseIs(): Node
  parseFilterStatement(): Node
  parseFor(): Node
  parseInclude(): Node
  parseWithContext(): boolean | null
  parseAsRoot(): Node
  extensions: ReadonlyArray<object>
}

/** The template's syntax tree, as `nunjucks.parser.parse` gives it, read with Jinja2's syntax. */
export const parseTemplate = (source: string, extensions: ReadonlyArray<object>, options: object): Node => {
  const parser = new JinjaParser(jinjaTokens(source, options))
  parser.extensions = extensions
  return parser.parseAsRoot()
}
