/**
 * Zulip's real email templates and catalogs, rendered by this engine and by Jinja2 configured as Zulip configures it,
 * compared byte for byte: every email, in English, German, French and a language without a catalog, with contexts
 * generated to reach every branch (values of every JSON type, markup-hostile strings, nested lists and dicts). An
 * error in Jinja2 must be an error here too.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { JinjaRenderError, makeJinjaEngine } from "../src/email/jinja/environment.ts"
import { inlineDocument, makeStyleInliner } from "../src/email/styleInliner.ts"
import { checkTemplates } from "../src/email/TemplateRenderer.ts"
import { englishTranslations, makeCatalogs } from "../src/email/Translations.ts"
import {
  hasZulipReference,
  type ReferenceCase,
  renderWithJinja,
  zulipLocaleDir,
  zulipTemplatesDir
} from "./support/zulipReference.ts"

const emailsDir = path.join(zulipTemplatesDir, "zerver", "emails")

/** Every name Zulip's email templates read from their context. */
const contextNames = (): ReadonlyArray<string> => {
  const names = new Set<string>()
  for (const file of readdirSync(emailsDir).filter((name) => /\.(txt|html)$/.test(name))) {
    const source = readFileSync(path.join(emailsDir, file), "utf8")
    for (const match of source.matchAll(/\b([a-z_][a-z0-9_]*)\b/g)) names.add(match[1]!)
  }
  return [...names]
}

const leaf = fc.oneof(
  fc.constantFrom("", "0", "Acme <b>&\"'", "https://x.example/a?b=1&c=2", "Zoë 😀", "business", "invoice_overdue"),
  fc.string({ maxLength: 8 }),
  fc.constantFrom(0, 1, 2, 5, 100, -1, 1.5),
  fc.boolean(),
  fc.constant(null)
)
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    leaf,
    leaf,
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(
      fc.constantFrom("html", "url", "realm", "senders", "content", "header", "count", "participants", "first_few_messages", "name"),
      tie("value"),
      { maxKeys: 4 }
    )
  )
})).value

describe.runIf(hasZulipReference)("Zulip's email templates", () => {
  it.effect("pass templates check", () =>
    Effect.gen(function*() {
      const problems = yield* checkTemplates(zulipTemplatesDir)
      assert.deepStrictEqual(problems.map((problem) => problem.message), [])
    }))

  it.effect("render as Jinja2 renders them, in every language, for generated contexts", () =>
    Effect.gen(function*() {
      const names = contextNames()
      const contexts = fc.sample(fc.dictionary(fc.constantFrom(...names), value, { maxKeys: 60 }), { numRuns: 8, seed: 4242 })
      const prefixes = readdirSync(emailsDir).filter((name) => name.endsWith(".subject.txt")).map((name) => name.replace(".subject.txt", ""))
      const languages = [null, "de", "fr", "pt-br"] as const
      const cases: Array<ReferenceCase> = []
      for (const prefix of prefixes) {
        for (const language of languages) {
          for (const context of contexts) {
            for (const suffix of [".subject.txt", ".txt", ".html"]) {
              cases.push({
                template: `zerver/emails/${prefix}${suffix}`,
                language,
                context: { ...context, support_email: "support@zulip.example.com", email_images_base_url: "https://x.example/static/images/emails", physical_address: "1 Main St <b>" }
              })
            }
          }
        }
      }
      const expected = renderWithJinja(cases)
      const catalogs = yield* makeCatalogs(zulipLocaleDir)
      const engine = makeJinjaEngine({ templatesDir: zulipTemplatesDir, reload: false, globals: { support_email: "support@zulip.example.com" } })
      const differences: Array<string> = []
      for (const [index, testCase] of cases.entries()) {
        const catalog = testCase.language === null ? englishTranslations : yield* catalogs.forLanguage(testCase.language)
        const want = expected[index]!
        let got: string | JinjaRenderError
        try {
          got = engine.render(testCase.template, catalog, testCase.context)
        } catch (error) {
          got = error as JinjaRenderError
        }
        const same = "output" in want ? got === want.output : got instanceof JinjaRenderError
        if (!same) {
          differences.push(`${testCase.template} (${testCase.language}): Jinja2 ${JSON.stringify(want).slice(0, 300)}, here ${JSON.stringify(String(got)).slice(0, 300)}`)
        }
      }
      assert.isAbove(expected.filter((result) => "output" in result).length, cases.length / 2)
      assert.deepStrictEqual(differences.slice(0, 5), [])
    }), { timeout: 120_000 })

  it.effect("inline their CSS from reused skeletons exactly as inlining each email", () =>
    Effect.gen(function*() {
      const names = contextNames()
      const contexts = fc.sample(fc.dictionary(fc.constantFrom(...names), value, { maxKeys: 60 }), { numRuns: 12, seed: 99 })
      const catalogs = yield* makeCatalogs(zulipLocaleDir)
      const engine = makeJinjaEngine({ templatesDir: zulipTemplatesDir, reload: false, globals: { support_email: "support@zulip.example.com" } })
      let inlined = 0
      const styles = yield* makeStyleInliner((html) => {
        inlined++
        return inlineDocument(html)
      })
      const templates = readdirSync(emailsDir).filter((name) => name.endsWith(".html") && readFileSync(path.join(emailsDir, name), "utf8").includes("extends"))
      let emails = 0
      for (const language of ["de", "fr"]) {
        const catalog = yield* catalogs.forLanguage(language)
        for (const template of templates) {
          for (const context of contexts) {
            const full = { ...context, support_email: "support@zulip.example.com", email_images_base_url: "https://x.example/img", physical_address: "" }
            let html: string
            try {
              html = engine.render(`zerver/emails/${template}`, catalog, full)
            } catch {
              continue
            }
            const expected = yield* Effect.try(() => inlineDocument(html)).pipe(Effect.result)
            if (expected._tag === "Failure") continue
            emails++
            const got = yield* styles.inline(html, engine.renderSkeleton(`zerver/emails/${template}`, catalog, full))
            assert.strictEqual(got, expected.success, `${template} ${language} ${JSON.stringify(context).slice(0, 500)}`)
          }
        }
      }
      // skeletons were reused for a good part of the emails
      assert.isAbove(emails, 100)
      assert.isBelow(inlined, emails)
    }), { timeout: 120_000 })
})
