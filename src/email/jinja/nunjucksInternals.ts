/**
 * The parts of nunjucks 3.2.4 that are not in its public API but that Jinja2's semantics need: the compiler class (to
 * emit Python semantics for operators, lookups and output), the parser and transformer (to compile with that
 * compiler), the AST node classes (for the `trans` tag) and the runtime's `Frame`. They are typed here, in one place,
 * and pinned by the exact nunjucks version in package.json; test/jinja.test.ts renders every construct through them.
 */
import nunjucks from "nunjucks"
// @ts-expect-error nunjucks ships no types for its internal modules
import transformerModule from "nunjucks/src/transformer.js"

export interface Token {
  readonly type: string
  readonly value: string
  readonly lineno: number
  readonly colno: number
}

export interface Node {
  readonly typename: string
  readonly lineno: number
  readonly colno: number
  [field: string]: unknown
}

export interface Frame {
  readonly variables: Record<string, unknown>
  lookup(name: string): unknown
  set(name: string, value: unknown): void
  push(isolateWrites?: boolean): Frame
  parent: Frame | null
  topLevel: boolean
}

export interface Parser {
  nextToken(withWhitespace?: boolean): Token | null
  peekToken(): Token | null
  pushToken(token: Token): void
  expect(type: string): Token
  skip(type: string): boolean
  skipValue(type: string, value: string): boolean
  skipSymbol(value: string): boolean
  fail(message: string, lineno?: number, colno?: number): never
  parseExpression(): Node
  parseUntilBlocks(...names: ReadonlyArray<string>): Node & { readonly children: ReadonlyArray<Node> }
  advanceAfterBlockEnd(name?: string): Token
}

type NodeClass = new(lineno: number, colno: number, ...fields: ReadonlyArray<unknown>) => Node

export interface Nodes {
  readonly Node: NodeClass
  readonly NodeList: NodeClass
  readonly InlineIf: NodeClass
  readonly LookupVal: NodeClass
  readonly FunCall: NodeClass
  readonly Group: NodeClass
  readonly Array: NodeClass
  readonly For: NodeClass
  readonly Set: NodeClass
  readonly Capture: NodeClass
  readonly Literal: NodeClass
  readonly Symbol: NodeClass
  readonly Dict: NodeClass
  readonly Pair: NodeClass
  readonly Filter: NodeClass
  readonly CallExtension: new(extension: object, method: string, args: Node, contentArgs: ReadonlyArray<Node>) => Node
  readonly Output: NodeClass
  readonly TemplateData: NodeClass
  readonly Extends: NodeClass
  readonly Include: NodeClass
  readonly Import: NodeClass
  readonly FromImport: NodeClass
  readonly Is: NodeClass
  readonly Not: NodeClass
}

export interface Lexer {
  lex(source: string, options: object): unknown
  readonly TOKEN_STRING: string
  readonly TOKEN_SYMBOL: string
  readonly TOKEN_INT: string
  readonly TOKEN_FLOAT: string
  readonly TOKEN_COMMA: string
  readonly TOKEN_OPERATOR: string
  readonly TOKEN_COLON: string
  readonly TOKEN_BLOCK_END: string
  readonly TOKEN_LEFT_PAREN: string
  readonly TOKEN_RIGHT_PAREN: string
  readonly TOKEN_LEFT_BRACKET: string
  readonly TOKEN_RIGHT_BRACKET: string
  readonly TOKEN_LEFT_CURLY: string
  readonly TOKEN_RIGHT_CURLY: string
  readonly TOKEN_NONE: string
  readonly TOKEN_BOOLEAN: string
  readonly TOKEN_VARIABLE_START: string
  readonly TOKEN_BLOCK_START: string
}

/** The compiler's protected members a subclass uses. */
export interface CompilerBase {
  templateName: string | null
  buffer: string
  _emit(code: string): void
  _emitLine(code: string): void
  _tmpid(): string
  _addScopeLevel(): void
  _closeScopeLevels(): void
  _withScopedSyntax(body: () => void): void
  _makeCallback(result?: string): string
  _compileGetTemplate(node: Node, frame: Frame, eagerCompile: boolean, ignoreMissing: boolean): string
  _compileExpression(node: Node, frame: Frame): void
  _getNodeName(node: Node): string
  fail(message: string, lineno?: number, colno?: number): never
  _pushBuffer(): string
  _popBuffer(): void
  _emitLoopBindings(node: Node, array: string, index: string, length: string): void
  compile(node: Node, frame?: Frame): void
  compileIf(node: Node, frame: Frame, async?: boolean): void
  compileFor(node: Node, frame: Frame): void
  getCode(): string
}

export type CompilerClass = new(templateName: string, throwOnUndefined: boolean) => CompilerBase

interface Internals {
  readonly compiler: { readonly Compiler: CompilerClass }
  readonly parser: { readonly Parser: unknown }
  readonly nodes: Nodes
  readonly lexer: Lexer
  readonly runtime: { readonly Frame: new() => Frame }
}

const internals = nunjucks as unknown as Internals

export const { Compiler } = internals.compiler
export const NunjucksParser = internals.parser.Parser
export const { nodes, lexer } = internals
export const { Frame } = internals.runtime

/** nunjucks' AST pass that lifts `super()` calls and handles asynchronous filters (there are none here). */
export const transform = (root: Node, name: string): Node =>
  (transformerModule as { transform(root: Node, asyncFilters: ReadonlyArray<string>, name: string): Node }).transform(root, [], name)
