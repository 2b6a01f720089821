import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { po } from "gettext-parser"
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { compilePluralForms, PluralExpressionError } from "../src/email/pluralForms.ts"
import {
  CatalogError,
  englishTranslations,
  makeCatalogs,
  PluralFormError,
  toLocale,
  type Translations
} from "../src/email/Translations.ts"
import { withCapturedLogs } from "./support/logCapture.ts"
import { rewriteTemplate, templateTree } from "./support/templateTree.ts"

// ---- helpers ----------------------------------------------------------------------------------------------------

const header = (pluralForms: string | null) =>
  [
    `msgid ""`,
    `msgstr ""`,
    `"Content-Type: text/plain; charset=UTF-8\\n"`,
    ...(pluralForms === null ? [] : [`"Plural-Forms: ${pluralForms}\\n"`]),
    ""
  ].join("\n")

const poFile = (locale: string) => `${locale}/LC_MESSAGES/django.po`
const moFile = (locale: string) => `${locale}/LC_MESSAGES/django.mo`

/** Compiles a `.po` of a tree into the `.mo` beside it (or at `mo`), as Django's compilemessages does. */
const msgfmt = (dir: string, poPath: string, moPath = poPath.replace(/\.po$/, ".mo")) =>
  Effect.sync(() => {
    mkdirSync(path.dirname(path.join(dir, moPath)), { recursive: true })
    execFileSync("msgfmt", ["--check-format", "-o", path.join(dir, moPath), path.join(dir, poPath)])
  })

const translationsIn = (dir: string, language: string) =>
  Effect.flatMap(makeCatalogs(dir), (catalogs) => catalogs.forLanguage(language))

/** A catalog with one plural entry whose forms are "form 0", "form 1", ...: ngettext shows the chosen index. */
const pluralCatalog = (pluralForms: string | null, forms: number) =>
  [
    header(pluralForms),
    `msgid "one apple"`,
    `msgid_plural "many apples"`,
    ...Array.from({ length: forms }, (_, index) => `msgstr[${index}] "form ${index}"`),
    ""
  ].join("\n")

const formsFor = (translations: Translations, counts: ReadonlyArray<number>) =>
  counts.map((count) => translations.ngettext("one apple", "many apples", count))

const GERMAN = `${header("nplurals=2; plural=(n != 1);")}
msgid "Hello"
msgstr "Hallo"

msgid "Tab\\there, \\"quoted\\"\\nnext line\\\\"
msgstr "Tab\\tda, \\"zitiert\\"\\nnächste Zeile\\\\"

msgid ""
"Concatenated "
"over lines"
msgstr ""
"Zusammen"
"gesetzt"

#, fuzzy
msgid "Fuzzy"
msgstr "Unscharf"

#, python-format, fuzzy
msgid "Fuzzy %(name)s"
msgstr "Unscharf %(name)s"

#~ msgid "Obsolete"
#~ msgstr "Veraltet"

msgid "Untranslated"
msgstr ""

msgid "May"
msgstr "Mai (ohne Kontext)"

msgctxt "month"
msgid "May"
msgstr "Mai"

msgctxt "verb"
msgid "May"
msgstr "Darf"

msgid "One file"
msgid_plural "%(count)s files"
msgstr[0] "Eine Datei"
msgstr[1] "%(count)s Dateien"

msgctxt "mail"
msgid "One message"
msgid_plural "%(count)s messages"
msgstr[0] "Eine Nachricht"
msgstr[1] "%(count)s Nachrichten"

msgid "One untranslated"
msgid_plural "Many untranslated"
msgstr[0] ""
msgstr[1] "Viele"

msgid "Line\\nbreak"
msgstr "Zeilen\\numbruch"
`

/** Every kind of call, answered the same way from a `.po` and from its `.mo`. */
const sampleCalls = (translations: Translations) => [
  translations.locale,
  ...["Hello", "Missing", "Tab\there, \"quoted\"\nnext line\\", "Concatenated over lines", "Fuzzy", "Obsolete",
    "Untranslated", "May", "One file", "", "Line\r\nbreak"].map(translations.gettext),
  translations.pgettext("month", "May"),
  translations.pgettext("verb", "May"),
  translations.pgettext("other", "May"),
  ...[0, 1, 2, 7].flatMap((count) => [
    translations.ngettext("One file", "%(count)s files", count),
    translations.ngettext("One untranslated", "Many untranslated", count),
    translations.npgettext("mail", "One message", "%(count)s messages", count),
    translations.npgettext("other", "One file", "%(count)s files", count)
  ])
]

// ---- Django's to_locale ---------------------------------------------------------------------------------------

describe("toLocale", () => {
  it("is Django's to_locale", () => {
    const table: Array<[string, string]> = [
      ["de", "de"],
      ["DE", "de"],
      ["pt-br", "pt_BR"],
      ["pt-BR", "pt_BR"],
      ["en-us", "en_US"],
      ["zh-hans", "zh_Hans"],
      ["zh-Hant", "zh_Hant"],
      ["sr-latn", "sr_Latn"],
      ["sr-latn-rs", "sr_Latn-rs"],
      ["es-419", "es_419"],
      ["pt_BR", "pt_BR"],
      ["zh_Hans", "zh_Hans"],
      ["PT_br", "pt_br"]
    ]
    assert.deepStrictEqual(table.map(([language]): [string, string] => [language, toLocale(language)]), table)
  })
})

// ---- .po semantics --------------------------------------------------------------------------------------------

describe("a .po catalog", () => {
  it.effect("answers gettext as msgfmt and Python's gettext would", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({ [poFile("de")]: GERMAN })
      const de = yield* translationsIn(dir, "de")
      assert.strictEqual(de.locale, "de")
      assert.strictEqual(de.gettext("Hello"), "Hallo")
      assert.strictEqual(de.gettext("Missing"), "Missing")
      // escapes and strings continued over lines
      assert.strictEqual(de.gettext("Tab\there, \"quoted\"\nnext line\\"), "Tab\tda, \"zitiert\"\nnächste Zeile\\")
      assert.strictEqual(de.gettext("Concatenated over lines"), "Zusammengesetzt")
      // fuzzy, obsolete and untranslated entries are not in the catalog
      assert.strictEqual(de.gettext("Fuzzy"), "Fuzzy")
      assert.strictEqual(de.gettext("Fuzzy %(name)s"), "Fuzzy %(name)s")
      assert.strictEqual(de.gettext("Obsolete"), "Obsolete")
      assert.strictEqual(de.gettext("Untranslated"), "Untranslated")
      // Django's gettext: "" is "" (not the header) and line ends are normalised before the lookup
      assert.strictEqual(de.gettext(""), "")
      assert.strictEqual(de.gettext("Line\r\nbreak"), "Zeilen\numbruch")
      assert.strictEqual(de.gettext("Line\rbreak"), "Zeilen\numbruch")
      assert.strictEqual(de.gettext("Not\r\nthere"), "Not\nthere")
      // Python's gettext answers a plural entry's msgid with its form for 1
      assert.strictEqual(de.gettext("One file"), "Eine Datei")
    }))

  it.effect("answers pgettext and npgettext by context, as Django does", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({ [poFile("de")]: GERMAN })
      const de = yield* translationsIn(dir, "de")
      assert.strictEqual(de.pgettext("month", "May"), "Mai")
      assert.strictEqual(de.pgettext("verb", "May"), "Darf")
      assert.strictEqual(de.gettext("May"), "Mai (ohne Kontext)")
      // pgettext without a translation in its context is the message itself...
      assert.strictEqual(de.pgettext("other", "May"), "May")
      assert.deepStrictEqual(
        [1, 2].map((count) => de.npgettext("mail", "One message", "%(count)s messages", count)),
        ["Eine Nachricht", "%(count)s Nachrichten"]
      )
      // ...but Django's npgettext falls back to the translation without a context
      assert.deepStrictEqual(
        [1, 2].map((count) => de.npgettext("other", "One file", "%(count)s files", count)),
        ["Eine Datei", "%(count)s Dateien"]
      )
      assert.deepStrictEqual(
        [1, 2].map((count) => de.npgettext("other", "One thing", "%(count)s things", count)),
        ["One thing", "%(count)s things"]
      )
    }))

  it.effect("leaves out a plural entry whose first form is empty, as msgfmt does", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({ [poFile("de")]: GERMAN })
      const de = yield* translationsIn(dir, "de")
      assert.deepStrictEqual(
        [1, 2].map((count) => de.ngettext("One untranslated", "Many untranslated", count)),
        ["One untranslated", "Many untranslated"]
      )
    }))

  it.effect("keeps a plural entry with a later form empty, and falls back for a form it lacks, as Python does", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        [poFile("pl")]: `${header("nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);")}
msgid "one apple"
msgid_plural "many apples"
msgstr[0] "jabłko"
msgstr[1] ""
msgstr[2] "jabłek"

msgid "one pear"
msgid_plural "many pears"
msgstr[0] "gruszka"
msgstr[1] "gruszki"
`
      })
      const pl = yield* translationsIn(dir, "pl")
      assert.deepStrictEqual(formsFor(pl, [1, 2, 5]), ["jabłko", "", "jabłek"])
      assert.deepStrictEqual(
        [1, 2, 5].map((count) => pl.ngettext("one pear", "many pears", count)),
        ["gruszka", "gruszki", "many pears"]
      )
    }))
})

describe("plural forms", () => {
  const cases: ReadonlyArray<{
    readonly name: string
    readonly pluralForms: string | null
    readonly forms: number
    readonly expected: ReadonlyArray<readonly [number, number]>
  }> = [
    { name: "German", pluralForms: "nplurals=2; plural=(n != 1);", forms: 2, expected: [[0, 1], [1, 0], [2, 1], [21, 1]] },
    { name: "French", pluralForms: "nplurals=2; plural=(n > 1);", forms: 2, expected: [[0, 0], [1, 0], [2, 1], [21, 1]] },
    {
      name: "Polish",
      pluralForms: "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
      forms: 3,
      expected: [[0, 2], [1, 0], [2, 1], [4, 1], [5, 2], [12, 2], [21, 2], [22, 1], [112, 2], [122, 1]]
    },
    { name: "Japanese", pluralForms: "nplurals=1; plural=0;", forms: 1, expected: [[0, 0], [1, 0], [2, 0], [100, 0]] },
    {
      name: "Romanian (Transifex)",
      pluralForms: "nplurals=3; plural=(n==1?0:(((n%100>19)||((n%100==0)&&(n!=0)))?2:1));",
      forms: 3,
      expected: [[0, 1], [1, 0], [2, 1], [19, 1], [20, 2], [100, 2], [101, 1], [120, 2]]
    },
    { name: "no header (Germanic default)", pluralForms: null, forms: 2, expected: [[0, 1], [1, 0], [2, 1]] }
  ]
  for (const { expected, forms, name, pluralForms } of cases) {
    it.effect(`${name}: the header's rule chooses the form`, () =>
      Effect.gen(function*() {
        const dir = yield* templateTree({ [poFile("xx")]: pluralCatalog(pluralForms, forms) })
        const translations = yield* translationsIn(dir, "xx")
        assert.deepStrictEqual(
          formsFor(translations, expected.map(([count]) => count)),
          expected.map(([, form]) => `form ${form}`)
        )
      }))
  }

  it.effect("a count is taken as Python's gettext takes it: any number with a catalog, compared with 1 without one", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({ [poFile("de")]: GERMAN })
      const de = yield* translationsIn(dir, "de")
      // Python computes the plural form of a fraction (with a DeprecationWarning), and counts True as 1
      assert.strictEqual(de.ngettext("One file", "%(count)s files", 2.5), de.ngettext("One file", "%(count)s files", 2))
      assert.strictEqual(de.ngettext("One file", "%(count)s files", true), de.ngettext("One file", "%(count)s files", 1))
      // with a catalog, a count that is not a number is Python's TypeError, found or not
      for (const count of ["3", null, [1]]) {
        const error = assert.throws(() => de.ngettext("One file", "%(count)s files", count))
        assert.instanceOf(error, PluralFormError)
        assert.include(error.message, "Plural value must be an integer")
        assert.throws(() => de.ngettext("Not in the catalog", "Not in it either", count), PluralFormError)
        assert.throws(() => de.npgettext("mail", "One message", "%(count)s messages", count), PluralFormError)
      }
      // English has no plural function: Django's `n == 1` decides, with Python's equality
      for (const [count, form] of [[1, "One file"], [1.0, "One file"], [true, "One file"], ["1", "%(count)s files"], [null, "%(count)s files"], [2.5, "%(count)s files"]] as const) {
        assert.strictEqual(englishTranslations.ngettext("One file", "%(count)s files", count), form, String(count))
      }
    }))
})

// ---- .mo files --------------------------------------------------------------------------------------------------

describe("a .mo catalog", () => {
  it.effect("is preferred to the .po beside it", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "source.po": `${header(null)}\nmsgid "Hello"\nmsgstr "Hallo aus der .mo"\n`,
        [poFile("de")]: `${header(null)}\nmsgid "Hello"\nmsgstr "Hallo aus der .po"\n`
      })
      yield* msgfmt(dir, "source.po", moFile("de"))
      const de = yield* translationsIn(dir, "de")
      assert.strictEqual(de.gettext("Hello"), "Hallo aus der .mo")
    }))

  it.effect("answers exactly as the .po it was compiled from", () =>
    Effect.gen(function*() {
      const poDir = yield* templateTree({ [poFile("de")]: GERMAN })
      const moDir = yield* templateTree({ [poFile("source")]: GERMAN })
      yield* msgfmt(moDir, poFile("source"), moFile("de"))
      const fromPo = yield* translationsIn(poDir, "de")
      const fromMo = yield* translationsIn(moDir, "de")
      assert.deepStrictEqual(sampleCalls(fromMo), sampleCalls(fromPo))
      // and the .mo's plural rule is its header's
      const frDir = yield* templateTree({ [poFile("source")]: pluralCatalog("nplurals=2; plural=(n > 1);", 2) })
      yield* msgfmt(frDir, poFile("source"), moFile("fr"))
      assert.deepStrictEqual(formsFor(yield* translationsIn(frDir, "fr"), [0, 1, 2]), ["form 0", "form 0", "form 1"])
    }))
})

// ---- where catalogs are found ---------------------------------------------------------------------------------

describe("finding a language's catalog", () => {
  const hello = (greeting: string) => `${header(null)}\nmsgid "Hello"\nmsgstr "${greeting}"\n`

  it.effect("maps Django language codes to locale directories, falling back to the language alone", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        [poFile("pt_BR")]: hello("Olá"),
        [poFile("zh_Hans")]: hello("你好"),
        [poFile("sr_Latn")]: hello("Zdravo"),
        [poFile("de")]: hello("Hallo"),
        [poFile("en")]: hello("Hi")
      })
      const catalogs = yield* makeCatalogs(dir)
      const found = []
      for (const language of ["pt-br", "pt_BR", "zh-hans", "sr-latn", "de", "de-at", "DE", "en-us", "en"]) {
        const translations = yield* catalogs.forLanguage(language)
        found.push([language, translations.locale, translations.gettext("Hello")])
      }
      assert.deepStrictEqual(found, [
        ["pt-br", "pt_BR", "Olá"],
        ["pt_BR", "pt_BR", "Olá"],
        ["zh-hans", "zh_Hans", "你好"],
        ["sr-latn", "sr_Latn", "Zdravo"],
        ["de", "de", "Hallo"],
        ["de-at", "de", "Hallo"],
        ["DE", "de", "Hallo"],
        ["en-us", "en", "Hi"],
        ["en", "en", "Hi"]
      ])
    }))

  it.effect("a message missing in the language comes from the en catalog, chosen with the en catalog's own rule", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        [poFile("fr")]: `${header("nplurals=2; plural=(n > 1);")}
msgid "Hello"
msgstr "Bonjour"

msgid "one apple"
msgid_plural "many apples"
msgstr[0] "une pomme"
msgstr[1] "des pommes"
`,
        [poFile("en")]: `${header("nplurals=2; plural=(n != 1);")}
msgid "Hello"
msgstr "Hi"

msgid "Bye"
msgstr "Goodbye"

msgid "one pear"
msgid_plural "many pears"
msgstr[0] "a pear"
msgstr[1] "some pears"
`
      })
      const catalogs = yield* makeCatalogs(dir)
      const fr = yield* catalogs.forLanguage("fr")
      assert.strictEqual(fr.locale, "fr")
      assert.deepStrictEqual([fr.gettext("Hello"), fr.gettext("Bye"), fr.gettext("Nowhere")], ["Bonjour", "Goodbye", "Nowhere"])
      // French says 0 is singular; English, answering for the pear, says plural
      assert.deepStrictEqual(formsFor(fr, [0, 1, 2]), ["une pomme", "une pomme", "des pommes"])
      assert.deepStrictEqual(
        [0, 1, 2].map((count) => fr.ngettext("one pear", "many pears", count)),
        ["some pears", "a pear", "some pears"]
      )
      // a language without a catalog is answered by the en catalog
      const xx = yield* catalogs.forLanguage("xx")
      assert.deepStrictEqual([xx.locale, xx.gettext("Hello"), xx.gettext("Nowhere")], ["en", "Hi", "Nowhere"])
    }))

  it.effect("a language without any catalog is English, with one warning however many ask at once", () =>
    withCapturedLogs((lines) =>
      Effect.gen(function*() {
        const dir = yield* templateTree({ [poFile("de")]: GERMAN })
        const catalogs = yield* makeCatalogs(dir)
        const answers = yield* Effect.all(Array.from({ length: 20 }, () => catalogs.forLanguage("xx")), {
          concurrency: "unbounded"
        })
        yield* catalogs.forLanguage("xx")
        assert.isTrue(answers.every((translations) => translations === englishTranslations))
        assert.strictEqual(englishTranslations.locale, null)
        assert.deepStrictEqual(
          [englishTranslations.gettext("Hello"), ...[0, 1, 2].map((n) => englishTranslations.ngettext("one", "many", n))],
          ["Hello", "many", "one", "many"]
        )
        // English itself needs no catalog
        assert.strictEqual(yield* catalogs.forLanguage("en"), englishTranslations)
        assert.strictEqual(yield* catalogs.forLanguage("en-us"), englishTranslations)
        const warnings = lines.filter((line) => line.level === "Warn").map((line) => line.message)
        assert.strictEqual(warnings.length, 1)
        assert.include(warnings[0], "'xx'")
        assert.include(warnings[0], dir)
      })))

  it.effect("a catalog is loaded once and shared by everyone asking for it", () =>
    withCapturedLogs((lines) =>
      Effect.gen(function*() {
        const dir = yield* templateTree({ [poFile("de")]: GERMAN })
        const catalogs = yield* makeCatalogs(dir)
        const answers = yield* Effect.all(Array.from({ length: 20 }, () => catalogs.forLanguage("de")), {
          concurrency: "unbounded"
        })
        assert.isTrue(answers.every((translations) => translations === answers[0]))
        yield* rewriteTemplate(dir, poFile("de"), `${header(null)}\nmsgid "Hello"\nmsgstr "Servus"\n`)
        assert.strictEqual((yield* catalogs.forLanguage("de")).gettext("Hello"), "Hallo")
        // de-at is found in the same directory, which is not read again
        assert.strictEqual((yield* catalogs.forLanguage("de-at")).gettext("Hello"), "Hallo")
        assert.lengthOf(lines.filter((line) => line.message === "translation catalog loaded"), 1)
      })))

  it.effect("a language that is not a language code is refused", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({ [poFile("de")]: GERMAN })
      const catalogs = yield* makeCatalogs(dir)
      for (const language of ["../de", "de/../../etc", "", "de de"]) {
        const error = yield* Effect.flip(catalogs.forLanguage(language))
        assert.strictEqual(error._tag, "InvalidLanguage")
      }
    }))
})

// ---- broken catalogs --------------------------------------------------------------------------------------------

describe("a catalog that cannot be read", () => {
  const failureFor = (files: Record<string, string>, language: string) =>
    Effect.gen(function*() {
      const dir = yield* templateTree(files)
      const error = yield* Effect.flip(translationsIn(dir, language))
      assert.instanceOf(error, CatalogError)
      return { dir, error: error as CatalogError }
    })

  it.effect("a .po syntax error names the file and the line", () =>
    Effect.gen(function*() {
      const { dir, error } = yield* failureFor({
        [poFile("de")]: `${header(null)}\nmsgid "Hello"\nmsgstr "Hallo "Welt""\n`
      }, "de")
      assert.strictEqual(error.file, path.join(dir, poFile("de")))
      assert.strictEqual(error.line, 6)
      assert.include(error.message, path.join(dir, poFile("de")))
      assert.include(error.message, "line 6")
    }))

  it.effect("a line break inside a string, a duplicate msgid and a missing msgstr are refused, as msgfmt refuses them", () =>
    Effect.gen(function*() {
      const broken = [
        [`msgid "Hello"\nmsgstr "Hal\nlo"\n`, "End-of-line within string"],
        [`msgid "Hello"\nmsgstr "Hallo"\n\nmsgid "Hello"\nmsgstr "Servus"\n`, "Duplicate msgid"],
        [`msgid "Hello"\n`, "msgstr"],
        [`msgid "One file"\nmsgid_plural "%(count)s files"\n`, `msgid "One file" has no msgstr`]
      ]
      for (const [content, problem] of broken) {
        const { dir, error } = yield* failureFor({ [poFile("de")]: `${header(null)}\n${content}` }, "de")
        assert.strictEqual(error.file, path.join(dir, poFile("de")), content)
        assert.include(error.message, problem)
      }
    }))

  it.effect("a Plural-Forms that Python's gettext cannot read is refused", () =>
    Effect.gen(function*() {
      for (const pluralForms of ["nplurals=2; plural=n >;", "nplurals=2", "nplurals=2; plural=(n != 1;"]) {
        const { error } = yield* failureFor({ [poFile("de")]: pluralCatalog(pluralForms, 2) }, "de")
        assert.include(error.message, "Plural-Forms", pluralForms)
      }
    }))

  it.effect("a .mo that is not one names the file", () =>
    Effect.gen(function*() {
      const { dir, error } = yield* failureFor({ [moFile("de")]: "this is not a catalog at all" }, "de")
      assert.strictEqual(error.file, path.join(dir, moFile("de")))
      assert.include(error.message, "magic number")
    }))

  it.effect("a failed load is not kept: the fixed file is read by the next request", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({ [poFile("de")]: `${header(null)}\nmsgid "Hello"\nmsgstr "Hallo "Welt""\n` })
      const catalogs = yield* makeCatalogs(dir)
      assert.isTrue(Exit.isFailure(yield* Effect.exit(catalogs.forLanguage("de"))))
      yield* rewriteTemplate(dir, poFile("de"), GERMAN)
      assert.strictEqual((yield* catalogs.forLanguage("de")).gettext("Hello"), "Hallo")
    }))
})

// ---- parity with Python ---------------------------------------------------------------------------------------

const python = (script: string, args: ReadonlyArray<string>, input: unknown): unknown =>
  JSON.parse(execFileSync("python3", ["-c", script, ...args], {
    input: JSON.stringify(input),
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024
  }))

const PLURAL_EXPRESSIONS_SCRIPT = `
import gettext, json, sys
answers = []
for expression in json.load(sys.stdin):
    try:
        plural = gettext.c2py(expression)
        answers.append([plural(n) for n in range(-30, 231)])
    except ValueError as error:
        answers.append(str(error))
json.dump(answers, sys.stdout)
`

describe("plural expressions, against Python's gettext.c2py", () => {
  it("evaluate as Python does for counts -30..230, and are refused with Python's message", () => {
    const expressions = [
      "0",
      "(n != 1)",
      "(n > 1)",
      "n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2",
      "(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2)",
      "(n==1) ? 0 : (n>=2 && n<=4) ? 1 : 2",
      "(n==1?0:(((n%100>19)||((n%100==0)&&(n!=0)))?2:1))",
      "(n%10==1 && n%100!=11 ? 0 : n != 0 ? 1 : 2)",
      "(n%100==1 ? 0 : n%100==2 ? 1 : n%100==3 || n%100==4 ? 2 : 3)",
      "n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : n%100>=11 && n%100<=99 ? 4 : 5",
      "n==1 ? 0 : n==2 ? 1 : (n>2 && n<7) ? 2 :(n>6 && n<11) ? 3 : 4",
      "(n%10!=1 || n%100==11)",
      "(n==1 ? 1 : 0) + 1",
      "n==5 ? (n>=2 ? 1 : 2) : 3",
      "n/10 + n%7 - 2*n",
      "n && 2 || 3",
      "!n",
      "!(n == 1) && !(n % 2)",
      "1 < 2 == 1",
      // refused by Python
      "n ==",
      "(n != 1",
      "n != 1)",
      "x > 1",
      "n > 1 ?",
      "n ? 1",
      "-1",
      "n = 1",
      "2n"
    ]
    const expected = python(PLURAL_EXPRESSIONS_SCRIPT, [], expressions) as ReadonlyArray<ReadonlyArray<number> | string>
    const actual = expressions.map((expression) => {
      try {
        const plural = compilePluralForms(expression)
        return Array.from({ length: 261 }, (_, index) => plural(index - 30))
      } catch (error) {
        assert.instanceOf(error, PluralExpressionError)
        return (error as Error).message
      }
    })
    assert.deepStrictEqual(actual, expected)
  })

  it("refuses a '!' that Python would read differently from C, and a division by zero at evaluation", () => {
    for (const expression of ["!n == 1", "!n + 1 > 2", "n == !n"]) {
      assert.throws(() => compilePluralForms(expression), PluralExpressionError)
    }
    assert.throws(() => compilePluralForms("n % (n - 1)")(1), PluralFormError)
  })
})

const ZULIP_LOCALE = "/work/shared/zulip/locale"
const COUNTS = [0, 1, 2, 5, 21]

/** Django's gettext functions over Python's GNUTranslations of the .mo, one answer per query. */
const DJANGO_SCRIPT = `
import gettext, json, sys
t = gettext.GNUTranslations(open(sys.argv[1], "rb"))
COUNTS = ${JSON.stringify(COUNTS)}
def dj_gettext(message):
    message = message.replace("\\r\\n", "\\n").replace("\\r", "\\n")
    return t.gettext(message) if message else ""
def dj_pgettext(context, message):
    result = dj_gettext(context + "\\x04" + message)
    return message if "\\x04" in result else result
def dj_npgettext(context, singular, plural, n):
    result = t.ngettext(context + "\\x04" + singular, context + "\\x04" + plural, n)
    return t.ngettext(singular, plural, n) if "\\x04" in result else result
answers = []
for q in json.load(sys.stdin):
    context, msgid, plural = q["context"], q["msgid"], q["plural"]
    answer = {"singular": dj_gettext(msgid) if context is None else dj_pgettext(context, msgid)}
    if plural is not None:
        answer["plural"] = [t.ngettext(msgid, plural, n) if context is None else dj_npgettext(context, msgid, plural, n) for n in COUNTS]
    answers.append(answer)
json.dump(answers, sys.stdout)
`

interface Query {
  readonly context: string | null
  readonly msgid: string
  readonly plural: string | null
}

const answer = (translations: Translations, { context, msgid, plural }: Query) => ({
  singular: context === null ? translations.gettext(msgid) : translations.pgettext(context, msgid),
  ...(plural === null ? {} : {
    plural: COUNTS.map((count) =>
      context === null
        ? translations.ngettext(msgid, plural, count)
        : translations.npgettext(context, msgid, plural, count)
    )
  })
})

describe.runIf(existsSync(ZULIP_LOCALE))("Zulip's catalogs, against Django's logic over Python's gettext", () => {
  for (const locale of ["de", "fr"]) {
    it.effect(`${locale}: every msgid of the .po, and some that are not in it, from the .po and from the .mo`, () =>
      Effect.gen(function*() {
        const source = readFileSync(path.join(ZULIP_LOCALE, poFile(locale)), "utf8")
        const poDir = yield* templateTree({ [poFile(locale)]: source })
        const moDir = yield* templateTree({ [poFile("source")]: source })
        yield* msgfmt(moDir, poFile("source"), moFile(locale))
        const queries: Array<Query> = Object.entries(po.parse(source).translations).flatMap(([context, entries]) =>
          Object.values(entries).map((entry) => ({
            context: context === "" ? null : context,
            msgid: entry.msgid,
            plural: entry.msgid_plural ?? null
          }))
        )
        queries.push(
          { context: null, msgid: "Not a Zulip message", plural: null },
          { context: null, msgid: "One thing", plural: "%(count)s things" },
          { context: "some context", msgid: queries[1]!.msgid, plural: null }
        )
        assert.isAbove(queries.length, 1000)
        const expected = python(DJANGO_SCRIPT, [path.join(moDir, moFile(locale))], queries)
        const fromPo = yield* translationsIn(poDir, locale)
        const fromMo = yield* translationsIn(moDir, locale)
        assert.deepStrictEqual(queries.map((query) => answer(fromPo, query)), expected)
        assert.deepStrictEqual(queries.map((query) => answer(fromMo, query)), expected)
        // the comparison is not vacuous: most msgids are translated
        const translated = queries.filter((query) => fromMo.gettext(query.msgid) !== query.msgid)
        assert.isAbove(translated.length, queries.length / 2)
      }))
  }
})
