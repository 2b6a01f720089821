/**
 * CSS inlining reused across the emails of one template (styleInliner.ts): always exactly what inlining each email
 * gives, and reused only where that is safe.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { makeJinjaEngine } from "../src/email/jinja/environment.ts"
import { inlineDocument, makeStyleInliner } from "../src/email/styleInliner.ts"
import { defaultTemplatesDir } from "../src/email/TemplateRenderer.ts"
import { englishTranslations, makeCatalogs } from "../src/email/Translations.ts"
import { templateTree } from "./support/templateTree.ts"
import * as path from "node:path"

const page = (style: string, body: string) =>
  `<!DOCTYPE html><html><head><style>${style}</style></head><body>${body}</body></html>`

/** A templates tree of one `main.html`, and an inliner counting the library's calls. */
const setup = (template: string) =>
  Effect.gen(function*() {
    const dir = yield* templateTree({ "main.html": template })
    const engine = makeJinjaEngine({ templatesDir: dir, reload: false })
    let calls = 0
    const styles = yield* makeStyleInliner((html) => {
      calls++
      return inlineDocument(html)
    })
    /** the email for `context`, checked against inlining it directly */
    const email = (context: Record<string, unknown>) =>
      Effect.gen(function*() {
        const html = engine.render("main.html", englishTranslations, context)
        const inlined = yield* styles.inline(html, engine.renderSkeleton("main.html", englishTranslations, context))
        assert.strictEqual(inlined, inlineDocument(html), JSON.stringify(context))
        return inlined
      })
    return { email, calls: () => calls }
  })

const awkward = [
  "Tom & Jerry",
  "<script>alert(1)</script>",
  "\"quoted\" 'single'",
  "no\u00a0break",
  "tab\tand\nnewline",
  "   ",
  "",
  "carriage\rreturn",
  "emoji 😀 and é",
  "&amp; already &lt;escaped&gt;",
  "x".repeat(500)
]

describe("CSS inlining from a template's skeleton", () => {
  it.effect("inlines once for the emails of one template, whatever their values, and equals inlining each", () =>
    Effect.gen(function*() {
      const { email, calls } = yield* setup(page(
        "p { color: red } a { color: blue } td.name { font-weight: bold }",
        "<table><tr><td class=\"name\">{{ name }}</td></tr></table><p>Hi {{ name }}, <a href=\"{{ url }}\" title=\"{{ name }}\">{{ url }}</a></p>"
      ))
      for (const [index, name] of awkward.filter((value) => /\S/.test(value) && !value.includes("\r")).entries()) {
        yield* email({ name, url: `https://example.com/${index}?a=1&b="2"` })
      }
      // the first email's skeleton was inlined; every other email reused it
      assert.strictEqual(calls(), 1)
    }))

  it.effect("still equals inlining each email for blank values, control characters and branches taken differently", () =>
    Effect.gen(function*() {
      const { email, calls } = yield* setup(page(
        "p { color: red } p:empty { display: none } li:first-child { color: green }",
        "<p>{{ name }}</p>{% if items %}<ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>{% endif %}"
      ))
      for (const name of awkward) {
        yield* email({ name, items: [] })
        yield* email({ name, items: ["a", name] })
      }
      // one skeleton per shape of the document (blank and CR values are written as they are, so they make their own)
      assert.isBelow(calls(), awkward.length * 2)
    }))

  it.effect("is not reused where a value could change what the rules match or how the page parses", () =>
    Effect.gen(function*() {
      const cases = [
        // a value in a class, id or style attribute selects rules
        page(".x { color: red }", "<p class=\"{{ name }}\">a</p>"),
        page("#x { color: red }", "<p id=\"{{ name }}\">a</p>"),
        page("p { color: red }", "<p style=\"{{ name }}\">a</p>"),
        // any attribute, when the rules select on attributes
        page("a[href^=\"mailto:\"] { color: red }", "<a href=\"{{ name }}\">a</a>"),
        // in a style block, a comment or a title
        page("p { {{ name }} }", "<p>a</p>"),
        page("p { color: red }", "<!-- {{ name }} --><p>a</p>"),
        // a value captured and then computed with
        page("p { color: red }", "{% set block %}<b>{{ name }}</b>{% endset %}<p>{{ block|upper }}</p>"),
        page("p { color: red }", "{% macro m(x) %}<i>{{ x }}</i>{% endmacro %}<p>{{ m(name)|length }}</p>")
      ]
      for (const template of cases) {
        const { email, calls } = yield* setup(template)
        // values a style attribute or rule can hold as well as a class or a text
        yield* email({ name: "color: red" })
        yield* email({ name: "color: blue" })
        const before = calls()
        // each email is inlined on its own
        yield* email({ name: "color: green" })
        assert.strictEqual(calls() - before, 1, template)
      }
    }))

  it.effect("gives the shipped templates' emails exactly as inlining each one, in every language", () =>
    Effect.gen(function*() {
      const engine = makeJinjaEngine({ templatesDir: defaultTemplatesDir, reload: false, globals: { support_email: "support@zulip.example" } })
      const catalogs = yield* makeCatalogs(path.join(defaultTemplatesDir, "..", "locale"))
      const styles = yield* makeStyleInliner()
      const value = fc.oneof(fc.constantFrom(...awkward), fc.string({ maxLength: 12 }), fc.constant(null), fc.boolean(), fc.integer())
      const context = fc.record({
        email: value, realm_name: value, realm_url: value, reset_url: value, referrer_full_name: value,
        referrer_email: value, referrer_realm_name: value, activate_url: value, user_name: value, old_email: value,
        new_email: value, login_time: value, device_browser: value, device_os: value, device_ip: value,
        unsubscribe_link: value, active_accounts_in_other_realms: fc.array(fc.record({ realm: fc.record({ url: value }) }), { maxLength: 2 })
      }, { requiredKeys: [] })
      for (const sample of fc.sample(context, { numRuns: 40, seed: 7 })) {
        for (const language of ["en", "de", "fr"]) {
          const catalog = language === "en" ? englishTranslations : yield* catalogs.forLanguage(language)
          for (const name of ["invitation", "confirm_new_email", "password_reset", "notify_new_login"]) {
            const full = { ...sample, support_email: "support@zulip.example", email_images_base_url: "https://x/img", physical_address: "1 Main St" }
            const html = engine.render(`zerver/emails/${name}.html`, catalog, full)
            const inlined = yield* styles.inline(html, engine.renderSkeleton(`zerver/emails/${name}.html`, catalog, full))
            assert.strictEqual(inlined, inlineDocument(html), `${name} ${language} ${JSON.stringify(sample)}`)
          }
        }
      }
    }), { timeout: 60_000 })
})
