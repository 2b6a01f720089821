/**
 * The expressions of nunjucks' compiler as Jinja2 evaluates them, where nunjucks follows JavaScript: truth (`[]` and
 * `{}` are false), `and`/`or`, comparisons, `==`, `+`, `~`, arithmetic, `in`, attribute lookups, slices and tuples.
 * The emitted code calls the helpers in `python.ts` through `env.jinja` (see `environment.ts`). The statements are
 * `compiler.ts`'s, on top of this.
 */
import { Compiler, type Frame, type Node } from "./nunjucksInternals.ts"

export const quoted = (text: string): string => JSON.stringify(text)

/** Node types this engine adds (see `parser.ts`); nunjucks' type checks do not know them. */
const jinjaNodeTypes: ReadonlySet<string> = new Set([
  "JinjaWith",
  "JinjaAutoescape",
  "JinjaSlice",
  "JinjaTuple",
  "JinjaLoopFilter",
  "JinjaSetAttribute",
  "JinjaFilterBlock"
])

const arithmeticOperators: Record<string, string> = {
  Sub: "-",
  Mul: "*",
  Div: "/",
  FloorDiv: "//",
  Mod: "%",
  Pow: "**"
}

export class ExpressionCompiler extends Compiler {
  /** The code that says whether output is escaped here: the environment's setting, or an `{% autoescape %}` block's. */
  protected autoescape = "env.opts.autoescape"

  override _compileExpression(node: Node, frame: Frame): void {
    if (jinjaNodeTypes.has(node.typename)) this.compile(node, frame)
    else super._compileExpression(node, frame)
  }

  /**
   * `env.jinja.<helper>(…)` at `node`'s line (for errors): each argument compiled when it is a node, written as it is
   * when it is code, `null` when absent.
   */
  protected helper(node: Node, helper: string, args: ReadonlyArray<Node | string | null>, frame: Frame): void {
    this._emit(`(lineno = ${node.lineno}, colno = ${node.colno}, env.jinja.${helper}(`)
    args.forEach((argument, index) => {
      if (index > 0) this._emit(", ")
      if (argument === null) this._emit("null")
      else if (typeof argument === "string") this._emit(argument)
      else this.compile(argument, frame)
    })
    this._emit("))")
  }

  compileSymbol(node: Node, frame: Frame): void {
    const name = node["value"] as string
    const local = frame.lookup(name)
    if (typeof local === "string") this._emit(local)
    else this._emit(`env.jinja.lookup(context, frame, ${quoted(name)})`)
  }

  compileLookupVal(node: Node, frame: Frame): void {
    const target = node["target"] as Node
    const what = quoted(this._getNodeName(target))
    this.helper(node, "getAttribute", [target, node["val"] as Node, what, String(node["attribute"] === true)], frame)
  }

  compileInlineIf(node: Node, frame: Frame): void {
    this._emit("(env.jinja.truthy(")
    this.compile(node["cond"] as Node, frame)
    this._emit(") ? ")
    this.compile(node["body"] as Node, frame)
    this._emit(" : ")
    if (node["else_"] === null) this._emit("undefined")
    else this.compile(node["else_"] as Node, frame)
    this._emit(")")
  }

  compileNot(node: Node, frame: Frame): void {
    this._emit("!env.jinja.truthy(")
    this.compile(node["target"] as Node, frame)
    this._emit(")")
  }

  /** Python's `and`/`or` give one of their operands, and evaluate the right one only when needed. */
  private logical(node: Node, frame: Frame, or: boolean): void {
    const left = this._tmpid()
    this._emit(`(function(${left}) { return env.jinja.truthy(${left}) ? `)
    if (or) this._emit(left)
    else this.compile(node["right"] as Node, frame)
    this._emit(" : ")
    if (or) this.compile(node["right"] as Node, frame)
    else this._emit(left)
    this._emit("; })(")
    this.compile(node["left"] as Node, frame)
    this._emit(")")
  }

  compileOr(node: Node, frame: Frame): void {
    this.logical(node, frame, true)
  }

  compileAnd(node: Node, frame: Frame): void {
    this.logical(node, frame, false)
  }

  /** `a < b <= c` as Python chains it: each operand evaluated once, every comparison true. */
  compileCompare(node: Node, frame: Frame): void {
    const operands = node["ops"] as ReadonlyArray<Node>
    for (const operand of operands) {
      // nunjucks reads JavaScript's `===` and `!==`; Jinja2 has no such operators
      if (operand["type"] === "===" || operand["type"] === "!==") this.fail("unexpected '='", operand.lineno, operand.colno)
    }
    const values = [this._tmpid(), ...operands.map(() => this._tmpid())]
    this._emit(`(lineno = ${node.lineno}, colno = ${node.colno}, `)
    this._emit(`(function(${values.join(", ")}) { return `)
    this._emit(operands.map((operand, index) =>
      `env.jinja.compare(${values[index]}, ${quoted(operand["type"] as string)}, ${values[index + 1]})`
    ).join(" && "))
    this._emit("; })(")
    this.compile(node["expr"] as Node, frame)
    for (const operand of operands) {
      this._emit(", ")
      this.compile(operand["expr"] as Node, frame)
    }
    this._emit("))")
  }

  compileIn(node: Node, frame: Frame): void {
    this.helper(node, "contains", [node["right"] as Node, node["left"] as Node], frame)
  }

  compileAdd(node: Node, frame: Frame): void {
    this.helper(node, "add", [node["left"] as Node, node["right"] as Node], frame)
  }

  /** `~` escapes only in an autoescaping scope (Jinja2's `markup_join` there, `str_join` elsewhere). */
  compileConcat(node: Node, frame: Frame): void {
    this.helper(node, "concat", [node["left"] as Node, node["right"] as Node, this.autoescape], frame)
  }

  private arithmetic(node: Node, frame: Frame): void {
    const operator = quoted(arithmeticOperators[node.typename]!)
    this.helper(node, "arithmetic", [operator, node["left"] as Node, node["right"] as Node], frame)
  }

  compileSub(node: Node, frame: Frame): void {
    this.arithmetic(node, frame)
  }

  compileMul(node: Node, frame: Frame): void {
    this.arithmetic(node, frame)
  }

  compileDiv(node: Node, frame: Frame): void {
    this.arithmetic(node, frame)
  }

  compileFloorDiv(node: Node, frame: Frame): void {
    this.arithmetic(node, frame)
  }

  compileMod(node: Node, frame: Frame): void {
    this.arithmetic(node, frame)
  }

  compilePow(node: Node, frame: Frame): void {
    this.arithmetic(node, frame)
  }

  private unary(node: Node, frame: Frame, operator: string): void {
    this.helper(node, "unary", [quoted(operator), node["target"] as Node], frame)
  }

  compileNeg(node: Node, frame: Frame): void {
    this.unary(node, frame, "-")
  }

  compilePos(node: Node, frame: Frame): void {
    this.unary(node, frame, "+")
  }

  compileJinjaSlice(node: Node, frame: Frame): void {
    const parts = ["target", "start", "stop", "step"].map((part) => node[part] as Node | null)
    this.helper(node, "slice", parts, frame)
  }

  compileJinjaTuple(node: Node, frame: Frame): void {
    this._emit("env.jinja.tuple([")
    ;(node["children"] as ReadonlyArray<Node>).forEach((child, index) => {
      if (index > 0) this._emit(", ")
      this.compile(child, frame)
    })
    this._emit("])")
  }
}
