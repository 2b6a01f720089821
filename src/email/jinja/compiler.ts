/**
 * nunjucks' compiler for Jinja2's statements, on the expressions of `expressionCompiler.ts`: what `{{ value }}` prints
 * (`None`, `True`, lists as Python writes them, markupsafe's escaping), `if` and loops by Python's truth and over dicts
 * and strings, `loop`'s extra fields, `with`, `autoescape`, `set`, `include`, macros, and `{% import %}` giving a
 * module that prints as the imported template's text. The emitted code calls the helpers in `python.ts` through
 * `env.jinja` (see `environment.ts`), so nothing in nunjucks' shared runtime is changed.
 */
import { ExpressionCompiler, quoted } from "./expressionCompiler.ts"
import { type Frame, Frame as RuntimeFrame, type Node, nodes, type Parser, transform } from "./nunjucksInternals.ts"
import { parseTemplate } from "./parser.ts"
import { COMMENT_TAG } from "./source.ts"

/** `node` wrapped in a call of one of the engine's private filters (a plain function call in the emitted code). */
const throughFilter = (filter: string, node: Node): Node =>
  new nodes.Filter(node.lineno, node.colno, new nodes.Symbol(node.lineno, node.colno, filter), new nodes.NodeList(node.lineno, node.colno, [node]))

/** The private filters `throughFilter` names, registered by the environment. */
export const TRUTH_FILTER = "__jinja_truth"
export const ITERATE_FILTER = "__jinja_iterate"
/** resolves `include ["a", "b"]` (and `extends`, `import`) to the first template that exists, as `select_template` */
export const TEMPLATE_FILTER = "__jinja_template"

type Children = Node & { readonly children: ReadonlyArray<Node> }

class JinjaCompiler extends ExpressionCompiler {
  compileOutput(node: Node, frame: Frame): void {
    for (const child of node["children"] as ReadonlyArray<Node>) {
      if (child.typename === "TemplateData") {
        if (child["value"]) {
          this._emit(`${this.buffer} += `)
          this.compile(child, frame)
          this._emitLine(";")
        }
      } else {
        this._emit(`${this.buffer} += env.jinja.output(`)
        this.compile(child, frame)
        this._emit(`, ${this.autoescape});\n`)
      }
    }
  }

  override compileIf(node: Node, frame: Frame, async?: boolean): void {
    node["cond"] = throughFilter(TRUTH_FILTER, node["cond"] as Node)
    super.compileIf(node, frame, async)
  }

  override compileFor(node: Node, frame: Frame): void {
    node["arr"] = throughFilter(ITERATE_FILTER, node["arr"] as Node)
    super.compileFor(node, frame)
  }

  /** Jinja2's `loop` beyond nunjucks' counters: `cycle`, `previtem`, `nextitem`, `changed`, `depth`. */
  override _emitLoopBindings(node: Node, array: string, index: string, length: string): void {
    super._emitLoopBindings(node, array, index, length)
    const changed = this._tmpid()
    this._emitLine(`frame.set("loop.cycle", env.jinja.cycle(${index}));`)
    this._emitLine(`frame.set("loop.previtem", ${index} > 0 ? ${array}[${index} - 1] : undefined);`)
    this._emitLine(`frame.set("loop.nextitem", ${index} < ${length} - 1 ? ${array}[${index} + 1] : undefined);`)
    this._emitLine(`var ${changed}; if (${index} === 0) ${changed} = env.jinja.changeTracker();`)
    this._emitLine(`frame.set("loop.changed", ${changed});`)
    this._emitLine("frame.set(\"loop.depth\", 1); frame.set(\"loop.depth0\", 0);")
  }

  /** `for x in xs if cond`: the items the condition keeps, before the loop counts them. */
  compileJinjaLoopFilter(node: Node, frame: Frame): void {
    const [items, kept, index] = [this._tmpid(), this._tmpid(), this._tmpid()]
    this._emit(`(function(${items}) { var ${kept} = []; frame = frame.push(); `)
    this._emit(`for (var ${index} = 0; ${index} < ${items}.length; ${index}++) { `)
    const inner = frame.push()
    const target = node["name"] as Node
    const names = target.typename === "Symbol" ? [target] : (target as Children).children
    const values = names.length === 1 ? [`${items}[${index}]`] : names.map((_, i) => `env.jinja.unpack(${items}[${index}], ${names.length})[${i}]`)
    names.forEach((name, i) => {
      const id = this._tmpid()
      this._emit(`var ${id} = ${values[i]}; frame.set(${quoted(name["value"] as string)}, ${id}); `)
      inner.set(name["value"] as string, id)
    })
    this._emit("if (env.jinja.truthy(")
    this.compile(node["cond"] as Node, inner)
    this._emit(`)) ${kept}.push(${items}[${index}]); } frame = frame.pop(); return ${kept}; })(env.jinja.iterate(`)
    this.compile(node["arr"] as Node, frame)
    this._emit("))")
  }

  /** `{% with a = x %}`: the values computed where the tag is, the names bound only inside. */
  compileJinjaWith(node: Node, frame: Frame): void {
    const ids = (node["values"] as ReadonlyArray<Node>).map((value) => {
      const id = this._tmpid()
      this._emit(`var ${id} = `)
      this._compileExpression(value, frame)
      this._emitLine(";")
      return id
    })
    this._emitLine("frame = frame.push();")
    const inner = frame.push()
    ;(node["targets"] as ReadonlyArray<Node>).forEach((target, index) => {
      const name = target["value"] as string
      this._emitLine(`frame.set(${quoted(name)}, ${ids[index]});`)
      inner.set(name, ids[index])
    })
    this._withScopedSyntax(() => this.compile(node["body"] as Node, inner))
    this._emitLine("frame = frame.pop();")
  }

  /** `{% autoescape expr %}`: output inside escapes by `expr` rather than by the environment. */
  compileJinjaAutoescape(node: Node, frame: Frame): void {
    const id = this._tmpid()
    this._emit(`var ${id} = env.jinja.truthy(`)
    this._compileExpression(node["value"] as Node, frame)
    this._emitLine(");")
    const outer = this.autoescape
    this.autoescape = id
    this.compile(node["body"] as Node, frame)
    this.autoescape = outer
  }

  compileJinjaFilterBlock(node: Node, frame: Frame): void {
    this._emit(`${this.buffer} += env.jinja.written(`)
    this.compile(node["filtered"] as Node, frame)
    this._emitLine(");")
  }

  compileJinjaSetAttribute(node: Node, frame: Frame): void {
    const target = node["target"] as Node
    this._emit(`lineno = ${node.lineno}; colno = ${node.colno}; env.jinja.setAttribute(`)
    this._compileExpression(target["target"] as Node, frame)
    this._emit(", ")
    this._compileExpression(target["val"] as Node, frame)
    this._emit(", ")
    this._compileExpression(node["value"] as Node, frame)
    this._emitLine(");")
  }

  /**
   * `{% set %}` in Jinja2's scopes: a name set inside a loop, macro, block or `with` stays there (nunjucks writes it
   * to the outer scope that has the name), and `a, b = value` unpacks.
   */
  compileSet(node: Node, frame: Frame): void {
    const targets = node["targets"] as ReadonlyArray<Node>
    const value = this._tmpid()
    this._emit(`var ${value} = `)
    if (node["value"] !== null) this._compileExpression(node["value"] as Node, frame)
    else this.compile(node["body"] as Node, frame)
    this._emitLine(";")
    const values = targets.length === 1
      ? [value]
      : targets.map((_, index) => `env.jinja.unpack(${value}, ${targets.length})[${index}]`)
    targets.forEach((target, index) => {
      const name = target["value"] as string
      const local = frame.variables[name]
      const variable = typeof local === "string" && /^[A-Za-z_$][\w$]*$/.test(local) ? local : null
      if (variable !== null) {
        this._emitLine(`${variable} = ${values[index]};`)
      } else {
        // an outer scope's name (a loop variable, a macro argument) is now looked up at run time in this scope
        frame.set(name, `env.jinja.lookup(context, frame, ${quoted(name)})`)
      }
      this._emitLine(`frame.set(${quoted(name)}, ${variable ?? values[index]});`)
      this._emitLine(`if (frame.topLevel) { context.setVariable(${quoted(name)}, ${values[index]}); }`)
      if (!name.startsWith("_")) this._emitLine(`if (frame.topLevel) { context.addExport(${quoted(name)}); }`)
    })
  }

  /** `extends`, `include` and `import` report their own line, and take the first existing of a list of names. */
  override _compileGetTemplate(node: Node, frame: Frame, eagerCompile: boolean, ignoreMissing: boolean): string {
    this._emitLine(`lineno = ${node.lineno}; colno = ${node.colno};`)
    ;(node as Record<string, unknown>)["template"] = throughFilter(TEMPLATE_FILTER, node["template"] as Node)
    return super._compileGetTemplate(node, frame, eagerCompile, ignoreMissing)
  }

  /** `{% include %}` with the context (and the names set around it), or `without context` with only the globals. */
  compileInclude(node: Node, frame: Frame): void {
    const variables = node["withContext"] === false ? "{}, new runtime.Frame()" : "context.getVariables(), frame"
    this._emitLine("var tasks = [];")
    this._emitLine("tasks.push(")
    this._emitLine("function(callback) {")
    const id = this._compileGetTemplate(node, frame, false, node["ignoreMissing"] === true)
    this._emitLine(`callback(null,${id});});`)
    this._emitLine("});")
    const result = this._tmpid()
    this._emitLine("tasks.push(")
    this._emitLine("function(template, callback){")
    this._emitLine(`template.render(${variables}, ${this._makeCallback(result)}`)
    this._emitLine(`callback(null,${result});});`)
    this._emitLine("});")
    this._emitLine("tasks.push(")
    this._emitLine("function(result, callback){")
    this._emitLine(`${this.buffer} += result;`)
    this._emitLine("callback(null);")
    this._emitLine("});")
    this._emitLine("env.waterfall(tasks, function(){")
    this._addScopeLevel()
  }

  /**
   * A macro with Jinja2's calling rules: missing arguments are Undefined or their default, extra ones go to
   * `varargs`/`kwargs` only when the body uses them (else a TypeError), and the output is Markup only where output
   * is escaped.
   */
  _compileMacro(node: Node, frame?: Frame): string {
    const signature = (node["args"] as Children).children
    const positional: Array<string> = []
    let defaults: ReadonlyArray<Node> = []
    signature.forEach((argument, index) => {
      if (index === signature.length - 1 && argument.typename === "KeywordArgs") defaults = (argument as Children).children
      else positional.push(argument["value"] as string)
    })
    const names = [...positional, ...defaults.map((pair) => (pair["key"] as Node)["value"] as string)]
    const used = new Set(
      (node["body"] as Node & { findAll(type: unknown): ReadonlyArray<Node> }).findAll(nodes.Symbol).map((symbol) => symbol["value"])
    )
    const id = `macro_${this._tmpid()}`
    const keepFrame = frame !== undefined
    const inner = keepFrame ? frame.push(true) : new RuntimeFrame()
    const macroName = node["name"] === null || node["name"] === undefined ? "caller" : (node["name"] as Node)["value"] as string
    const parameters = [...names.map((name) => `l_${name}`), "l_varargs", "l_kwargs", "l_caller"]
    this._emitLine(
      `var ${id} = env.jinja.makeMacro(${quoted(macroName)}, ${JSON.stringify(names)}, ${positional.length}, ` +
        `${used.has("varargs")}, ${used.has("kwargs")}, function (${parameters.join(", ")}) {`
    )
    this._emitLine("var callerFrame = frame;")
    this._emitLine(`frame = ${keepFrame ? "frame.push(true);" : "new runtime.Frame();"}`)
    this._emitLine("if (l_caller !== undefined) { frame.set(\"caller\", l_caller); }")
    positional.forEach((name) => {
      this._emitLine(`frame.set(${quoted(name)}, l_${name});`)
      inner.set(name, `l_${name}`)
    })
    for (const pair of defaults) {
      const name = (pair["key"] as Node)["value"] as string
      this._emit(`if (l_${name} === env.jinja.missing) { l_${name} = `)
      this._compileExpression(pair["value"] as Node, inner)
      this._emitLine(`; } frame.set(${quoted(name)}, l_${name});`)
      inner.set(name, `l_${name}`)
    }
    for (const special of ["varargs", "kwargs"]) {
      if (!used.has(special)) continue
      this._emitLine(`frame.set(${quoted(special)}, l_${special});`)
      inner.set(special, `l_${special}`)
    }
    const buffer = this._pushBuffer()
    this._withScopedSyntax(() => this.compile(node["body"] as Node, inner))
    this._emitLine(`frame = ${keepFrame ? "frame.pop();" : "callerFrame;"}`)
    this._emitLine(`return env.jinja.captured(${buffer}, env.opts.autoescape);`)
    this._emitLine("});")
    this._popBuffer()
    return id
  }

  /** A `{% set %}…{% endset %}` or `{% filter %}` body is Markup in an autoescaping environment, as in Jinja2. */
  compileCapture(node: Node, frame: Frame): void {
    const buffer = this.buffer
    this.buffer = "output"
    this._emitLine("(function() {")
    this._emitLine("var output = \"\";")
    this._withScopedSyntax(() => this.compile(node["body"] as Node, frame))
    this._emitLine(`return env.jinja.captured(output, ${this.autoescape});`)
    this._emitLine("})()")
    this.buffer = buffer
  }

  /** `{% import 'x' as y %}`: a module holding x's exported macros that prints as x's output. */
  compileImport(node: Node, frame: Frame): void {
    const target = (node["target"] as Node)["value"] as string
    const id = this._compileGetTemplate(node, frame, false, false)
    this._addScopeLevel()
    const variables = node["withContext"] ? "context.getVariables(), frame" : "null, null"
    this._emitLine(`env.jinja.importModule(context, ${id}, ${variables}, ${this._makeCallback(id)}`)
    this._addScopeLevel()
    if (frame.parent) this._emitLine(`frame.set(${quoted(target)}, ${id});`)
    else this._emitLine(`context.setVariable(${quoted(target)}, ${id});`)
    frame.set(target, id)
  }

  /** Every compiled function reports an error with its own template's name and the line reached. */
  _emitFuncEnd(noReturn?: boolean): void {
    if (!noReturn) this._emitLine(`cb(null, ${this.buffer});`)
    this._closeScopeLevels()
    this._emitLine("} catch (e) {")
    this._emitLine(`  cb(env.jinja.locate(e, lineno, colno, ${quoted(this.templateName ?? "")}));`)
    this._emitLine("}")
    this._emitLine("}")
    ;(this as { buffer: string | null }).buffer = null
  }
}

/** `{# comment #}`, which `source.ts` turns into a tag: it outputs nothing. */
export const commentExtension = {
  tags: [COMMENT_TAG],
  parse(parser: Parser): Node {
    const tag = parser.nextToken()!
    parser.advanceAfterBlockEnd(tag.value)
    return new nodes.NodeList(tag.lineno, tag.colno, [])
  }
}

export interface CompiledTemplate {
  readonly root: Function
  readonly [block: string]: Function
}

/**
 * Compiles Jinja2 source into nunjucks' template properties (`root` and one function per block). The result does not
 * depend on an environment, so every language's environment of one kind shares it.
 */
export const compileTemplate = (source: string, name: string, extensions: ReadonlyArray<object>): CompiledTemplate => {
  const compiler = new (JinjaCompiler as unknown as new(name: string, throwOnUndefined: boolean) => JinjaCompiler)(name, false)
  compiler.compile(transform(parseTemplate(source, extensions, {}), name))
  // the code nunjucks generates is a function body returning the template's functions
  return new Function(compiler.getCode())() as CompiledTemplate
}
