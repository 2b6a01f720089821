import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import { defaultTemplatesDir, makeTemplateRenderer } from "../src/layers/TemplateRenderer.ts"
import { checkTemplates } from "../src/layers/TemplateRenderer.ts"
import { rewriteTemplate, templateTree } from "./support/templateTree.ts"

const triplet = (prefix: string, subject: string, text: string, html: string) => ({
  [`${prefix}.subject.txt`]: subject,
  [`${prefix}.txt`]: text,
  [`${prefix}.html`]: html
})

const languages = {
  "zerver/emails/base.html": "<main>{% block content %}{% endblock %}</main>",
  ...triplet("zerver/emails/hello", "Hello {{ name }}", "Hello {{ name }}", "<p>Hello {{ name }}</p>"),
  "de/zerver/emails/hello.subject.txt": "Hallo {{ name }}",
  "de/zerver/emails/hello.html": "{% layout \"zerver/emails/base.html\" %}{% block content %}Hallo {{ name }}{% endblock %}",
  ...triplet("pt/zerver/emails/hello", "Olá {{ name }}", "Olá {{ name }}", "<p>Olá {{ name }}</p>"),
  // a language directory without this template: the default one is used
  ...triplet("fr/zerver/emails/other", "Autre", "Autre", "<p>Autre</p>")
}

describe("the shipped templates", () => {
  it.effect("compile and render cleanly", () =>
    Effect.gen(function*() {
      const problems = yield* checkTemplates(defaultTemplatesDir)
      assert.deepStrictEqual(problems.map((problem) => problem.message), [])
    }))

  it.effect("are Zulip's four triplets, with subject, text and HTML each", () =>
    Effect.gen(function*() {
      const renderer = makeTemplateRenderer({ templatesDir: defaultTemplatesDir, reload: false })
      for (const name of ["invitation", "confirm_new_email", "password_reset", "notify_new_login"]) {
        const rendered = yield* renderer.render(`zerver/emails/${name}`, null, { support_email: "support@zulip.example" })
        assert.isAbove(rendered.subject.trim().length, 0, name)
        assert.include(rendered.text, "support@zulip.example", name)
        assert.include(rendered.html, "support@zulip.example", name)
        assert.include(rendered.html, "<style>", name)
      }
    }))
})

describe("checkTemplates", () => {
  it.effect("reports each broken template with its file and line", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "zerver/emails/base.html": "<main>{% block content %}{% endblock %}</main>",
        ...triplet("zerver/emails/fine", "Fine", "Fine {{ name }}", "<p>Fine</p>"),
        "zerver/emails/unclosed.subject.txt": "Unclosed",
        "zerver/emails/unclosed.html": "<p>one</p>\n<p>two</p>\n{% if name %}\n<p>never closed</p>\n",
        "zerver/emails/filter.subject.txt": "Filter",
        "zerver/emails/filter.txt": "Hello\n{{ name | no_such_filter }}\n",
        "zerver/emails/layout.subject.txt": "Layout",
        "zerver/emails/layout.html": "\n{% layout \"zerver/emails/no_such_base.html\" %}x",
        "zerver/emails/lonely.subject.txt": "No body",
        // a language directory's template finds the default layout
        "de/zerver/emails/fine.subject.txt": "Gut",
        "de/zerver/emails/fine.html": "{% layout \"zerver/emails/base.html\" %}{% block content %}Gut{% endblock %}"
      })
      const problems = yield* checkTemplates(dir)
      const found = problems.map((problem) => [path.relative(dir, problem.file ?? ""), problem.line])
      assert.sameDeepMembers(found, [
        ["zerver/emails/unclosed.html", 3],
        ["zerver/emails/filter.txt", 2],
        ["zerver/emails/layout.html", 2],
        ["zerver/emails/lonely.html", null]
      ])
      assert.include(problems.find((problem) => problem.file?.endsWith("filter.txt"))!.message, "no_such_filter")
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
      const error = yield* Effect.flip(renderer.render("zerver/emails/broken", "en", {}))
      assert.strictEqual(error._tag, "TemplateError")
      if (error._tag !== "TemplateError") return
      assert.strictEqual(error.template, "zerver/emails/broken")
      assert.strictEqual(error.file, path.join(dir, "zerver/emails/broken.html"))
      assert.strictEqual(error.line, 2)
    }))

  it.effect("fails naming the template and file when the subject or both bodies are missing", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "zerver/emails/no_subject.txt": "text",
        "zerver/emails/no_body.subject.txt": "subject"
      })
      const renderer = makeTemplateRenderer({ templatesDir: dir, reload: false })
      const noSubject = yield* Effect.flip(renderer.render("zerver/emails/no_subject", "en", {}))
      assert.strictEqual(noSubject._tag, "TemplateError")
      assert.include(noSubject.message, path.join(dir, "zerver/emails/no_subject.subject.txt"))
      const noBody = yield* Effect.flip(renderer.render("zerver/emails/no_body", "en", {}))
      assert.strictEqual(noBody._tag, "TemplateError")
      assert.include(noBody.message, "zerver/emails/no_body")
      assert.include(noBody.message, path.join(dir, "zerver/emails/no_body.html"))
    }))

  it.effect("uses the language directory when it has the template, else its primary language, else the default", () =>
    Effect.gen(function*() {
      const renderer = makeTemplateRenderer({ templatesDir: yield* templateTree(languages), reload: false })
      const context = { name: "Hamlet" }
      const german = yield* renderer.render("zerver/emails/hello", "de", context)
      assert.strictEqual(german.subject, "Hallo Hamlet")
      assert.strictEqual(german.language, "de")
      // the German override has no .txt and takes its layout from the default directory
      assert.isNull(german.text)
      assert.strictEqual(german.html, "<main>Hallo Hamlet</main>")
      const brazilian = yield* renderer.render("zerver/emails/hello", "pt-br", context)
      assert.strictEqual(brazilian.subject, "Olá Hamlet")
      assert.strictEqual(brazilian.language, "pt")
      const french = yield* renderer.render("zerver/emails/hello", "fr", context)
      assert.strictEqual(french.subject, "Hello Hamlet")
      assert.isNull(french.language)
      const unknown = yield* renderer.render("zerver/emails/hello", null, context)
      assert.strictEqual(unknown.text, "Hello Hamlet")
    }))

  it.effect("escapes context values in HTML only", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree(triplet("zerver/emails/escape", "{{ name }}", "{{ name }}", "<p>{{ name }}</p>"))
      const renderer = makeTemplateRenderer({ templatesDir: dir, reload: false })
      const rendered = yield* renderer.render("zerver/emails/escape", "en", { name: "<script>alert(\"x\")</script> & co" })
      assert.strictEqual(rendered.html, "<p>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co</p>")
      assert.strictEqual(rendered.text, "<script>alert(\"x\")</script> & co")
      assert.strictEqual(rendered.subject, "<script>alert(\"x\")</script> & co")
    }))

  it.effect("keeps templates inside their directory and away from JavaScript internals", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        ...triplet("zerver/emails/escape", "x", "{{ name.constructor }}|{{ name.__proto__ }}|{{ list.constructor.name }}", "x"),
        ...triplet("zerver/emails/outside", "x", "{% include \"../../outside.txt\" %}", "x")
      })
      const renderer = makeTemplateRenderer({ templatesDir: path.join(dir, "zerver"), reload: false })
      yield* rewriteTemplate(dir, "outside.txt", "secret")
      const rendered = yield* renderer.render("emails/escape", "en", { name: "Hamlet", list: [1] })
      assert.strictEqual(rendered.text, "||")
      const outside = yield* Effect.flip(renderer.render("emails/outside", "en", {}))
      assert.strictEqual(outside._tag, "TemplateError")
      const traversal = yield* Effect.flip(renderer.render("../outside", "en", {}))
      assert.strictEqual(traversal._tag, "InvalidEvent")
      assert.strictEqual(traversal._tag === "InvalidEvent" ? traversal.field : null, "template_prefix")
      const language = yield* Effect.flip(renderer.render("emails/escape", "../..", {}))
      assert.strictEqual(language._tag === "InvalidEvent" ? language.field : null, "language")
    }))

  it.effect("compiles once, and picks up a changed file when reloading", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree(triplet("zerver/emails/hello", "Hello", "first", "<p>x</p>"))
      const cached = makeTemplateRenderer({ templatesDir: dir, reload: false })
      const reloading = makeTemplateRenderer({ templatesDir: dir, reload: true })
      assert.strictEqual((yield* cached.render("zerver/emails/hello", "en", {})).text, "first")
      assert.strictEqual((yield* reloading.render("zerver/emails/hello", "en", {})).text, "first")
      yield* rewriteTemplate(dir, "zerver/emails/hello.txt", "second")
      assert.strictEqual((yield* cached.render("zerver/emails/hello", "en", {})).text, "first")
      assert.strictEqual((yield* reloading.render("zerver/emails/hello", "en", {})).text, "second")
    }))
})
