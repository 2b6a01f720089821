import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import { checkTemplates, defaultTemplatesDir, makeTemplateRenderer } from "../src/email/TemplateRenderer.ts"
import { makeJinjaEngine } from "../src/email/jinja/environment.ts"
import { englishTranslations, makeCatalogs } from "../src/email/Translations.ts"
import { hasZulipReference, renderWithJinja } from "./support/zulipReference.ts"
import { rewriteTemplate, templateTree } from "./support/templateTree.ts"

const triplet = (prefix: string, subject: string, text: string, html: string) => ({
  [`${prefix}.subject.txt`]: subject,
  [`${prefix}.txt`]: text,
  [`${prefix}.html`]: html
})

const shippedLocaleDir = path.join(defaultTemplatesDir, "..", "locale")

describe("the shipped templates", () => {
  it.effect("compile cleanly", () =>
    Effect.gen(function*() {
      const problems = yield* checkTemplates(defaultTemplatesDir)
      assert.deepStrictEqual(problems.map((problem) => problem.message), [])
    }))

  it.effect("are Zulip's four triplets, with subject, text and HTML each, in English, German and French", () =>
    Effect.gen(function*() {
      const renderer = makeTemplateRenderer({ templatesDir: defaultTemplatesDir, reload: false })
      const catalogs = yield* makeCatalogs(shippedLocaleDir)
      const subjects = new Map<string, Set<string>>()
      for (const language of ["en", "de", "fr"]) {
        const catalog = language === "en" ? englishTranslations : yield* catalogs.forLanguage(language)
        for (const name of ["invitation", "confirm_new_email", "password_reset", "notify_new_login"]) {
          const rendered = yield* renderer.render(`zerver/emails/${name}`, catalog, {
            support_email: "support@zulip.example",
            realm_name: "Acme",
            referrer_full_name: "Iago"
          })
          assert.isAbove(rendered.subject.trim().length, 0, name)
          assert.notInclude(rendered.subject.trim(), "\n", name)
          assert.include(rendered.text, "support@zulip.example", name)
          assert.include(rendered.html, "support@zulip.example", name)
          // the stylesheet is an imported template printed into <style>, as Zulip's email.css is
          assert.match(rendered.html ?? "", /<style>\s*body \{/, name)
          subjects.set(name, (subjects.get(name) ?? new Set()).add(rendered.subject.trim()))
        }
      }
      // every subject is translated: three languages, three different subjects
      for (const [name, found] of subjects) assert.strictEqual(found.size, 3, name)
    }))

  it.effect("make a complete email from the README's quick-start event", () =>
    Effect.gen(function*() {
      const renderer = makeTemplateRenderer({ templatesDir: defaultTemplatesDir, reload: false })
      const rendered = yield* renderer.render("zerver/emails/password_reset", englishTranslations, {
        reset_url: "https://example.com/reset",
        support_email: "support@zulip.example"
      })
      assert.include(rendered.text, "https://example.com/reset")
      // no sentence is left with a hole where a missing value would go
      assert.notMatch(rendered.text ?? "", / [.,:]| $|\(\)/m)
      assert.notMatch(rendered.html ?? "", /<b>\s*<\/b>|href=""/)
    }))
})

describe.runIf(hasZulipReference)("the shipped templates, against Jinja2", () => {
  it.effect("render as Jinja2 configured as Zulip's renders them, in English, German and French", () =>
    Effect.gen(function*() {
      const context = (variant: number) => ({
        support_email: "support@zulip.example",
        email_images_base_url: "https://x.example/img",
        physical_address: variant % 2 === 0 ? "" : "1 Main St <b>",
        ...(variant % 3 === 0 ? {} : { realm_name: "Acme <Corp>", realm_url: "https://acme.example", email: "a&b@acme.example" }),
        reset_url: variant % 2 === 0 ? "https://acme.example/reset?a=1&b=2" : "",
        user_deactivated: variant === 3,
        active_accounts_in_other_realms: variant === 5 ? [{ realm: { url: "https://other.example" } }, { realm: { url: "https://b.example" } }] : [],
        referrer_full_name: "Iago \"the\" Admin",
        referrer_email: "iago@acme.example",
        referrer_realm_name: "Acme",
        activate_url: "https://acme.example/join/x",
        old_email: "old@acme.example",
        new_email: variant % 2 === 0 ? "new@acme.example" : "",
        user_name: variant % 2 === 0 ? "Hamlet" : "",
        login_time: "today",
        device_browser: "Firefox",
        device_os: variant % 2 === 0 ? "Linux" : "",
        device_ip: "203.0.113.7",
        unsubscribe_link: variant % 2 === 0 ? "https://acme.example/unsubscribe" : ""
      })
      const cases = ["invitation", "confirm_new_email", "password_reset", "notify_new_login"].flatMap((name) =>
        [null, "de", "fr"].flatMap((language) =>
          [0, 1, 3, 5].flatMap((variant) =>
            [".subject.txt", ".txt", ".html"].map((suffix) => ({ template: `zerver/emails/${name}${suffix}`, language, context: context(variant) }))
          )
        )
      )
      const expected = renderWithJinja(cases, defaultTemplatesDir, shippedLocaleDir)
      const engine = makeJinjaEngine({ templatesDir: defaultTemplatesDir, reload: false, globals: { support_email: "support@zulip.example" } })
      const catalogs = yield* makeCatalogs(shippedLocaleDir)
      for (const [index, testCase] of cases.entries()) {
        const catalog = testCase.language === null ? englishTranslations : yield* catalogs.forLanguage(testCase.language)
        const want = expected[index]!
        assert.isTrue("output" in want, `${testCase.template}: Jinja2 failed: ${JSON.stringify(want)}`)
        if ("output" in want) assert.strictEqual(engine.render(testCase.template, catalog, testCase.context), want.output, `${testCase.template} ${testCase.language}`)
      }
    }), { timeout: 60_000 })
})

describe("checkTemplates", () => {
  it.effect("reports each broken template with its file and line, in the environment its suffix selects", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "zerver/emails/base.html": "<main>{% block content %}{% endblock %}</main>",
        ...triplet("zerver/emails/fine", "Fine", "Fine {{ name }}", "{% extends 'zerver/emails/base.html' %}{% block content %}<p>Fine</p>{% endblock %}"),
        "zerver/emails/unclosed.subject.txt": "Unclosed",
        "zerver/emails/unclosed.html": "<p>one</p>\n<p>two</p>\n{% if name %}\n<p>never closed</p>\n",
        "zerver/emails/filter.subject.txt": "Filter",
        "zerver/emails/filter.txt": "Hello\n{{ name | no_such_filter }}\n",
        "zerver/emails/layout.subject.txt": "Layout",
        "zerver/emails/layout.html": "\n{% extends \"zerver/emails/no_such_base.html\" %}x",
        "zerver/emails/trans.subject.txt": "Trans",
        "zerver/emails/trans.txt": "ok\nok\n{% trans %}Hello {{ user.name }}{% endtrans %}\n",
        "zerver/emails/lonely.subject.txt": "No body"
      })
      const problems = yield* checkTemplates(dir)
      const found = problems.map((problem) => [path.relative(dir, problem.file ?? ""), problem.line])
      assert.sameDeepMembers(found, [
        // Jinja2 places an unclosed block on the line of its tag
        ["zerver/emails/unclosed.html", 3],
        ["zerver/emails/filter.txt", 2],
        ["zerver/emails/layout.html", 2],
        ["zerver/emails/trans.txt", 3],
        ["zerver/emails/lonely.html", null]
      ])
      assert.include(problems.find((problem) => problem.file?.endsWith("filter.txt"))!.message, "no_such_filter")
      assert.include(problems.find((problem) => problem.file?.endsWith("layout.html"))!.message, "no_such_base.html")
    }))

  it.effect("reports a templates directory that does not exist", () =>
    Effect.gen(function*() {
      const problems = yield* checkTemplates(path.join(defaultTemplatesDir, "no-such-directory"))
      assert.lengthOf(problems, 1)
      assert.include(problems[0]!.message, "no-such-directory")
    }))
})

describe("TemplateRenderer", () => {
  it.effect("fails a render error with the template, file and line", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree(
        triplet("zerver/emails/broken", "Broken", "ok", "<p>ok</p>\n<p>{% include \"zerver/emails/missing.html\" %}</p>")
      )
      const renderer = makeTemplateRenderer({ templatesDir: dir, reload: false })
      const error = yield* Effect.flip(renderer.render("zerver/emails/broken", englishTranslations, {}))
      assert.strictEqual(error._tag, "TemplateError")
      if (error._tag !== "TemplateError") return
      assert.strictEqual(error.template, "zerver/emails/broken")
      assert.strictEqual(error.file, path.join(dir, "zerver/emails/broken.html"))
      assert.strictEqual(error.line, 2)
      assert.include(error.message, "zerver/emails/missing.html")
    }))

  it.effect("fails as Jinja2 does on a value it cannot use, naming the template and line", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree(triplet("zerver/emails/sum", "Sum", "a\n{{ realm_url + \"/help\" }}", "<p>ok</p>"))
      const renderer = makeTemplateRenderer({ templatesDir: dir, reload: false })
      const error = yield* Effect.flip(renderer.render("zerver/emails/sum", englishTranslations, {}))
      assert.strictEqual(error._tag, "TemplateError")
      assert.include(error.message, "UndefinedError")
      assert.strictEqual(error._tag === "TemplateError" ? error.line : null, 2)
    }))

  it.effect("fails naming the template and file when the subject or both bodies are missing", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "zerver/emails/no_subject.txt": "text",
        "zerver/emails/no_body.subject.txt": "subject"
      })
      const renderer = makeTemplateRenderer({ templatesDir: dir, reload: false })
      const noSubject = yield* Effect.flip(renderer.render("zerver/emails/no_subject", englishTranslations, {}))
      assert.strictEqual(noSubject._tag, "TemplateError")
      assert.include(noSubject.message, path.join(dir, "zerver/emails/no_subject.subject.txt"))
      const noBody = yield* Effect.flip(renderer.render("zerver/emails/no_body", englishTranslations, {}))
      assert.strictEqual(noBody._tag, "TemplateError")
      assert.include(noBody.message, "zerver/emails/no_body")
      assert.include(noBody.message, path.join(dir, "zerver/emails/no_body.html"))
    }))

  it.effect("renders in the catalog's language, {% trans %} blocks and _() alike", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        ...triplet(
          "zerver/emails/hello",
          "{% trans %}Hello {{ name }}{% endtrans %}",
          "{{ _(\"Welcome\") }}",
          "<p>{% trans count=n %}{{ count }} message{% pluralize %}{{ count }} messages{% endtrans %}</p>"
        ),
        "locale/de/LC_MESSAGES/django.po": [
          "msgid \"\"",
          "msgstr \"Content-Type: text/plain; charset=UTF-8\\nPlural-Forms: nplurals=2; plural=(n != 1);\\n\"",
          "",
          "msgid \"Hello %(name)s\"",
          "msgstr \"Hallo %(name)s\"",
          "",
          "msgid \"Welcome\"",
          "msgstr \"Willkommen\"",
          "",
          "msgid \"%(count)s message\"",
          "msgid_plural \"%(count)s messages\"",
          "msgstr[0] \"%(count)s Nachricht\"",
          "msgstr[1] \"%(count)s Nachrichten\""
        ].join("\n")
      })
      const renderer = makeTemplateRenderer({ templatesDir: path.join(dir, "zerver", ".."), reload: false })
      const catalogs = yield* makeCatalogs(path.join(dir, "locale"))
      const german = yield* renderer.render("zerver/emails/hello", yield* catalogs.forLanguage("de"), { name: "Hamlet", n: 2 })
      assert.deepStrictEqual([german.subject, german.text, german.html], ["Hallo Hamlet", "Willkommen", "<p>2 Nachrichten</p>"])
      const english = yield* renderer.render("zerver/emails/hello", englishTranslations, { name: "Hamlet", n: 1 })
      assert.deepStrictEqual([english.subject, english.text, english.html], ["Hello Hamlet", "Welcome", "<p>1 message</p>"])
    }))

  it.effect("escapes context values in HTML only, markupsafe's way, in output and in translations", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree(
        triplet("zerver/emails/escape", "{{ name }}", "{{ name }}", "<p>{{ name }}</p><p>{% trans %}By {{ name }}{% endtrans %}</p>")
      )
      const renderer = makeTemplateRenderer({ templatesDir: dir, reload: false })
      const rendered = yield* renderer.render("zerver/emails/escape", englishTranslations, { name: "<script>alert(\"x\")</script> & co" })
      const escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co"
      assert.strictEqual(rendered.html, `<p>${escaped}</p><p>By ${escaped}</p>`)
      assert.strictEqual(rendered.text, "<script>alert(\"x\")</script> & co")
      assert.strictEqual(rendered.subject, "<script>alert(\"x\")</script> & co")
    }))

  it.effect("never runs a context value as template code", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree(triplet("zerver/emails/data", "{{ name }}", "{{ name }}|{% trans %}{{ name }}{% endtrans %}", "{{ name }}"))
      const renderer = makeTemplateRenderer({ templatesDir: dir, reload: false })
      const payload = "{{ 7 * 7 }}{% for x in range(3) %}x{% endfor %}%(name)s"
      const rendered = yield* renderer.render("zerver/emails/data", englishTranslations, { name: payload })
      assert.strictEqual(rendered.text, `${payload}|${payload}`)
    }))

  it.effect("refuses a control character that a value would write into the subject", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree(triplet("zerver/emails/subject", "Hi {{ name }}\n", "x", "x"))
      const renderer = makeTemplateRenderer({ templatesDir: dir, reload: false })
      const error = yield* Effect.flip(renderer.render("zerver/emails/subject", englishTranslations, { name: "a\r\nBcc: evil@example.com" }))
      assert.strictEqual(error._tag, "InvalidEvent")
      assert.strictEqual(error._tag === "InvalidEvent" ? error.field : null, "subject")
      assert.include(error.message, "U+000D")
    }))

  it.effect("keeps templates inside their directory and away from JavaScript internals", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        ...triplet(
          "zerver/emails/internals",
          "x",
          "{{ name.constructor }}|{{ name.__proto__ }}|{{ list.constructor }}|{{ constructor }}|{{ toString }}|{{ dict.hasOwnProperty }}",
          "x"
        ),
        ...triplet("zerver/emails/outside", "x", "{% include \"../../outside.txt\" %}", "x")
      })
      const renderer = makeTemplateRenderer({ templatesDir: path.join(dir, "zerver"), reload: false })
      yield* rewriteTemplate(dir, "outside.txt", "secret")
      const rendered = yield* renderer.render("emails/internals", englishTranslations, { name: "Hamlet", list: [1], dict: {} })
      assert.strictEqual(rendered.text, "|||||")
      const outside = yield* Effect.flip(renderer.render("emails/outside", englishTranslations, {}))
      assert.strictEqual(outside._tag, "TemplateError")
      const traversal = yield* Effect.flip(renderer.render("../outside", englishTranslations, {}))
      assert.strictEqual(traversal._tag, "InvalidEvent")
      assert.strictEqual(traversal._tag === "InvalidEvent" ? traversal.field : null, "template_prefix")
    }))

  it.effect("compiles once, and picks up a changed file when reloading", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree(triplet("zerver/emails/hello", "Hello", "first", "<p>x</p>"))
      const cached = makeTemplateRenderer({ templatesDir: dir, reload: false })
      const reloading = makeTemplateRenderer({ templatesDir: dir, reload: true })
      assert.strictEqual((yield* cached.render("zerver/emails/hello", englishTranslations, {})).text, "first")
      assert.strictEqual((yield* reloading.render("zerver/emails/hello", englishTranslations, {})).text, "first")
      yield* rewriteTemplate(dir, "zerver/emails/hello.txt", "second")
      assert.strictEqual((yield* cached.render("zerver/emails/hello", englishTranslations, {})).text, "first")
      assert.strictEqual((yield* reloading.render("zerver/emails/hello", englishTranslations, {})).text, "second")
    }))
})
