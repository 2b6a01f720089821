/**
 * The template engine against Jinja2 itself: every case under test/fixtures/jinja (one Jinja2 behaviour each, its
 * expected output rendered by Jinja2 configured as Zulip configures it: scripts/jinja-fixtures.py) rendered by this
 * engine. An expected output must be matched byte for byte; an expected error must be an error here too.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { JinjaRenderError, makeJinjaEngine } from "../src/email/jinja/environment.ts"
import { englishTranslations, makeCatalogs } from "../src/email/Translations.ts"

const fixturesDir = path.join(import.meta.dirname, "fixtures", "jinja")

interface Case {
  readonly description: string
  readonly language: string | null
  readonly context: Record<string, unknown>
  readonly render: ReadonlyArray<string>
}

type Expected = { readonly output: string } | { readonly error: string; readonly message: string }

/**
 * Where this engine knowingly differs from Jinja2, and why. Each entry is still rendered, and must still differ:
 * a fix shows up as a failure here, and the entry goes.
 */
const integralFloat = "JavaScript has one number type: a Python float with an integral value (JSON's `1.0`, `4 / 2`, " +
  "the literal `1.0`) prints as an int (`1`)"
/** Jinja2's output with each integral float (`2.0`, `-0.0`, `1e+16`) written as the int JavaScript prints. */
const withoutIntegralFloats = (output: string): string => output.replace(/(-?\d+)\.0(?!\d)/g, (_, whole: string) => whole === "-0" ? "0" : whole)

/**
 * Integral floats with further consequences than their printing: measured (`1.0|string|length`), tested
 * (`1.0 is integer`), or printed in exponent form by Python (`1e+16`).
 */
const floatOnlyExceptions: ReadonlySet<string> = new Set(
  ["filter-int-float-string", "filter-pluralize", "operator-arithmetic", "print-floats", "tests-is"]
    .flatMap((name) => [`${name}/main.txt`, `${name}/main.html`])
)

const bothEnvironments = (name: string, reason: string) => ({ [`${name}/main.txt`]: reason, [`${name}/main.html`]: reason })

const knownDifferences: Record<string, string> = {
  ...bothEnvironments("logic-and-or-not", integralFloat),
  ...bothEnvironments("operator-arithmetic", integralFloat),
  ...bothEnvironments("operator-plus", integralFloat),
  ...bothEnvironments("operator-tilde", integralFloat),
  ...bothEnvironments("print-floats", integralFloat),
  ...bothEnvironments("print-list-dict-repr", integralFloat),
  ...bothEnvironments("i18n-trans-values-de", integralFloat),
  ...bothEnvironments("filter-display-list", integralFloat),
  ...bothEnvironments("filter-int-float-string", integralFloat),
  ...bothEnvironments("filter-join", integralFloat),
  ...bothEnvironments("filter-pluralize", integralFloat),
  ...bothEnvironments("filter-round-abs", integralFloat),
  ...bothEnvironments("filter-tojson", integralFloat),
  ...bothEnvironments("tests-is", integralFloat),
  "escape-markup-operations/main.html": "Jinja2 folds an expression of constants at compile time, and the folded " +
    "`\"<i>\" ~ (\"<b>\"|safe)` loses its Markup (so both sides are escaped); here it is Markup joined with text, " +
    "as the same expression with a variable is in Jinja2 too",
  "i18n-plural-count-types/float.txt": integralFloat,
  "i18n-plural-count-types-en/float.txt": integralFloat,
  ...bothEnvironments("print-integers", "JSON integers beyond 2^53 lose their last digits in JavaScript's numbers"),
  ...bothEnvironments(
    "print-python-objects",
    "dict views and ranges are lists here, so they print as lists (`['a']`, not `dict_keys(['a'])` or `range(0, 3)`)"
  )
}

const cases = readdirSync(fixturesDir).filter((name) => existsSync(path.join(fixturesDir, name, "case.json"))).sort()

const read = <A>(file: string): A => JSON.parse(readFileSync(file, "utf8")) as A

describe("Jinja2 fixtures", () => {
  for (const name of cases) {
    const dir = path.join(fixturesDir, name)
    const spec = read<Case>(path.join(dir, "case.json"))
    const expected = read<Record<string, Expected>>(path.join(dir, "expected.json"))
    for (const file of spec.render) {
      const key = `${name}/${file}`
      it.effect(`${key}: ${spec.description}`, () =>
        Effect.gen(function*() {
          const catalog = spec.language === null
            ? englishTranslations
            : yield* Effect.flatMap(makeCatalogs(path.join(dir, "locale")), (catalogs) => catalogs.forLanguage(spec.language!))
          const engine = makeJinjaEngine({
            templatesDir: path.join(dir, "templates"),
            reload: false,
            globals: { support_email: "support@zulip.example.com" }
          })
          const rendered = yield* Effect.try({
            try: () => engine.render(file, catalog, spec.context),
            catch: (error) => error
          }).pipe(Effect.result)
          const want = expected[file]!
          const matches = "output" in want
            ? rendered._tag === "Success" && rendered.success === want.output
            : rendered._tag === "Failure" && rendered.failure instanceof JinjaRenderError
          if (Object.hasOwn(knownDifferences, key)) {
            assert.isFalse(matches, `${key} now matches Jinja2: remove it from knownDifferences`)
            if (knownDifferences[key] === integralFloat && "output" in want && !floatOnlyExceptions.has(key)) {
              // the only difference: Jinja2's `2.0` is `2` here
              assert.strictEqual(rendered._tag === "Success" ? rendered.success : String(rendered.failure), withoutIntegralFloats(want.output))
            }
          } else if ("output" in want) {
            assert.strictEqual(rendered._tag === "Success" ? rendered.success : String(rendered.failure), want.output)
          } else {
            assert.isTrue(matches, `expected Jinja2's ${want.error} (${want.message}), got ${JSON.stringify(rendered)}`)
          }
        }))
    }
  }
})
