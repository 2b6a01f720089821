/**
 * Python's view of template values, as Jinja2 sees them when it renders Zulip's templates: what a value prints as,
 * whether it is true, how `==`, `+`, `%` and attribute lookups behave. Context values arrive as JSON, so the values
 * met here are `undefined` (Jinja2's `Undefined`), `null` (None), booleans, numbers, strings, arrays (lists), plain
 * objects (dicts) and, from the engine, `SafeString` (Markup), macros and imported template modules.
 *
 * Attribute lookups read a dict's own keys and a short list of Python methods, never JavaScript's prototype chain:
 * context values are data, and a template cannot reach `constructor` or `__proto__` through them.
 *
 * Each idea lives in its own module; this one gathers them for the engine.
 */
export { add, arithmetic, concat, unary } from "./arithmetic.ts"
export {
  formatSpec,
  getAttribute,
  iterate,
  setAttribute,
  slice,
  stripCharacters,
  TemplateModule,
  titleCase,
  unpack
} from "./attributes.ts"
export { fixed, roundDecimal } from "./decimal.ts"
export { percentFormat } from "./percentFormat.ts"
export { escapeHtml, escapeText, output, pythonRepr, pythonStr } from "./printing.ts"
export { compare, contains, equals, truthy } from "./truth.ts"
export {
  isDict,
  isMarkup,
  markup,
  type Markup,
  namedTuple,
  Namespace,
  PythonError,
  pythonTypeName,
  PyTuple,
  tuple
} from "./values.ts"
