/**
 * Django's gettext catalogs for the email templates, answered as `django.utils.translation` answers for an activated
 * language: `<localeDir>/<locale>/LC_MESSAGES/django.mo` (what `compilemessages` writes), or `django.po` read with
 * `msgfmt`'s rules (fuzzy, obsolete and untranslated entries left out) where there is no `.mo`.
 *
 * A language's catalog is the first found for its locale (`de_AT`) and then its language (`de`). A message missing
 * there comes from the default language's catalog (`en-us`: `en_US`, then `en`) when there is one, as Django falls
 * back to `LANGUAGE_CODE`, and is otherwise returned as it is. Each catalog chooses plural forms with its own
 * `Plural-Forms`. Django's own catalogs (`django/conf/locale`) are not part of the chain: the emails' msgids are
 * Zulip's.
 *
 * `Translations` are plain synchronous functions for use inside a render; `makeCatalogs` loads them from disk once
 * per language and shares them between fibers.
 */
import { Cache, Duration, Effect, Exit, Schema } from "effect"
import { type GetTextTranslations, mo, po } from "gettext-parser"
import { readFile } from "node:fs/promises"
import * as path from "node:path"
import {
  compilePluralForms,
  germanicPlural,
  PluralExpressionError,
  PluralFormError,
  type PluralFunction
} from "./pluralForms.ts"

export { PluralFormError }

/** One activated language, as Django's translation object for it. */
export interface Translations {
  /** the locale whose catalog answers first (e.g. "de", "pt_BR"), or null when no catalog does (English) */
  readonly locale: string | null
  readonly gettext: (message: string) => string
  /** throws `PluralFormError` when a catalog is asked with a count that is not a number (Python's TypeError) */
  readonly ngettext: (singular: string, plural: string, count: unknown) => string
  readonly pgettext: (context: string, message: string) => string
  /** throws `PluralFormError` as `ngettext` does */
  readonly npgettext: (context: string, singular: string, plural: string, count: unknown) => string
}

/** A catalog that exists but cannot be read or parsed; `line` is the `.po` line when the parser gives one. */
export class CatalogError extends Schema.TaggedError<CatalogError>()("CatalogError", {
  message: Schema.String,
  file: Schema.String,
  line: Schema.NullOr(Schema.Int)
}) {}

/** A language that is not a language code, so it names no catalog directory. */
export class InvalidLanguage extends Schema.TaggedError<InvalidLanguage>()("InvalidLanguage", {
  message: Schema.String,
  language: Schema.String
}) {}

/** One catalog file, as Python's `GNUTranslations` holds it. */
interface Catalog {
  readonly locale: string
  /** singular entries by msgid, or `msgctxt\x04msgid` */
  readonly messages: ReadonlyMap<string, string>
  /** plural entries' forms by msgid, or `msgctxt\x04msgid` */
  readonly plurals: ReadonlyMap<string, ReadonlyArray<string>>
  readonly plural: PluralFunction
}

/** How gettext joins a message's context and its msgid. */
const CONTEXT_SEPARATOR = "\x04"

/** Django's `LANGUAGE_CODE`, the language missing messages fall back to. */
const DEFAULT_LANGUAGE = "en-us"

/** Distinct locales (and catalog directories) kept; far more than there are languages. */
const CACHE_CAPACITY = 1024

/**
 * Django's `django.utils.translation.to_locale`: `pt-br` → `pt_BR`, `sr-latn` → `sr_Latn`, `de` → `de`; a code that
 * is already a locale (`pt_BR`) is kept.
 */
export const toLocale = (language: string): string => {
  const [lang, region] = partition(language.toLowerCase(), "-")
  if (region === "") {
    const characters = Array.from(language)
    return characters.slice(0, 3).join("").toLowerCase() + characters.slice(3).join("")
  }
  const [country, tail] = partition(region, "-")
  const casedCountry = Array.from(country).length > 2 ? titleCase(country) : country.toUpperCase()
  return `${lang}_${casedCountry}${tail === "" ? "" : `-${tail}`}`
}

/** Python's `str.partition`. */
const partition = (text: string, separator: string): [string, string] => {
  const at = text.indexOf(separator)
  return at < 0 ? [text, ""] : [text.slice(0, at), text.slice(at + separator.length)]
}

/** Python's `str.title`: each run of cased letters capitalised. */
const titleCase = (text: string): string =>
  text.replace(/\p{Cased}+/gu, (word) => word.charAt(0).toUpperCase() + word.slice(1).toLowerCase())

/** Django's `language_code_re`, also allowing `_` (locale spelling): nothing that could leave the locale directory. */
const LANGUAGE_CODE = /^[a-z]{1,8}(?:[-_][a-z0-9]{1,8})*(?:@[a-z0-9]{1,20})?$/i

/** Where a locale's catalog may be: the locale itself, then its language alone (`de_AT` → `de`). */
const catalogDirectoriesFor = (locale: string): ReadonlyArray<string> => {
  const language = locale.split(/[_@]/)[0]!
  return language === locale ? [locale] : [locale, language]
}

const pythonTypeOf = (value: unknown): string =>
  value === null ? "NoneType" : typeof value === "string" ? "str" : Array.isArray(value) ? "list" : typeof value

/**
 * The count as Python's plural functions take it (`gettext._as_int`): a number (a fraction only warns in Python, and
 * is computed with here too) or a boolean; anything else is Python's TypeError. Only a catalog's plural function
 * looks at it: English without a catalog compares it with 1.
 */
const pluralCount = (count: unknown): number => {
  if (typeof count === "number" || typeof count === "boolean") return Number(count)
  throw new PluralFormError({ message: `Plural value must be an integer, got ${pythonTypeOf(count)}` })
}

/** Django's `n == 1` when no catalog has the message: Python's equality, so `1.0` and `True` count as one. */
const isOne = (count: unknown): boolean => (typeof count === "number" || typeof count === "boolean") && Number(count) === 1

/** The translation functions over a chain of catalogs, the language's own first: Django's gettext and its fallback. */
const translationsFrom = (chain: ReadonlyArray<Catalog>): Translations => {
  const translate = (message: string): string => {
    for (const catalog of chain) {
      // Python's GNUTranslations.gettext also answers a plural entry's msgid with its form for 1
      const found = catalog.messages.get(message) ?? catalog.plurals.get(message)?.[catalog.plural(1)]
      if (found !== undefined) return found
    }
    return message
  }
  const translatePlural = (singular: string, plural: string, count: unknown): string => {
    for (const catalog of chain) {
      // Python computes the form before it looks the message up, so a bad count fails whenever there is a catalog
      const form = catalog.plural(pluralCount(count))
      const found = catalog.plurals.get(singular)?.[form]
      if (found !== undefined) return found
    }
    return isOne(count) ? singular : plural
  }
  // Django's gettext normalises line ends before the lookup
  const gettext = (message: string): string =>
    translate(message.includes("\r") ? message.replace(/\r\n?/g, "\n") : message)
  const ngettext = (singular: string, plural: string, count: unknown): string => translatePlural(singular, plural, count)
  return {
    locale: chain[0]?.locale ?? null,
    gettext,
    ngettext,
    pgettext: (context, message) => {
      const translated = gettext(`${context}${CONTEXT_SEPARATOR}${message}`)
      return translated.includes(CONTEXT_SEPARATOR) ? message : translated
    },
    // Django's npgettext: without a translation in the context, the message's translation without a context
    npgettext: (context, singular, plural, count) => {
      const inContext = (message: string) => `${context}${CONTEXT_SEPARATOR}${message}`
      const translated = ngettext(inContext(singular), inContext(plural), count)
      return translated.includes(CONTEXT_SEPARATOR) ? ngettext(singular, plural, count) : translated
    }
  }
}

/** No catalog: every message as it is; ngettext picks the singular for exactly 1. */
export const englishTranslations: Translations = translationsFrom([])

// ---- reading catalog files --------------------------------------------------------------------------------------

/** A problem with a catalog's content, raised while parsing it and reported as a `CatalogError`. */
class MalformedCatalog extends Error {}

const parseMo = (content: Buffer): GetTextTranslations => {
  const table = mo.parse(content)
  if (table === false) throw new MalformedCatalog("not a .mo file (no .mo magic number)")
  return table
}

/**
 * Validated as `msgfmt` validates (duplicate msgids, a line break inside a string, a missing msgstr), except that
 * `msgfmt` (as `compilemessages` runs it) accepts a plural entry whose form count differs from `nplurals`: Python
 * then falls back for the forms that are missing.
 */
const parsePo = (content: Buffer): GetTextTranslations => {
  try {
    return po.parse(content, { validation: true })
  } catch (error) {
    if (error instanceof RangeError && error.message.startsWith("Plural forms range error")) return po.parse(content)
    throw error
  }
}

const isFuzzy = (entry: { readonly comments?: { readonly flag?: string } }): boolean =>
  entry.comments?.flag?.split(/[\s,]+/).includes("fuzzy") ?? false

/**
 * The plural function of a catalog header, found as Python's `GNUTranslations._parse` finds it: on the last
 * `Plural-Forms:` line, the text after `plural=` in its second `;`-separated part.
 */
const pluralFunctionOf = (header: string): PluralFunction => {
  let expression: string | null = null
  for (const line of header.split("\n")) {
    const [key, value] = partition(line.trim(), ":")
    if (key.trim().toLowerCase() !== "plural-forms") continue
    const rule = value.trim().split(";")[1]?.split("plural=")[1]
    if (rule === undefined) throw new MalformedCatalog(`the header's Plural-Forms "${value.trim()}" has no "; plural="`)
    expression = rule
  }
  if (expression === null) return germanicPlural
  try {
    return compilePluralForms(expression)
  } catch (error) {
    if (error instanceof PluralExpressionError) {
      throw new MalformedCatalog(`the header's Plural-Forms expression "${expression}": ${error.message}`)
    }
    throw error
  }
}

/** The catalog in a parsed file; for a `.po`, only what `msgfmt` would have written to the `.mo`. */
const catalogFrom = (locale: string, table: GetTextTranslations, fromPo: boolean): Catalog => {
  const messages = new Map<string, string>()
  const plurals = new Map<string, ReadonlyArray<string>>()
  for (const entries of Object.values(table.translations)) {
    for (const entry of Object.values(entries)) {
      const key = entry.msgctxt === undefined ? entry.msgid : `${entry.msgctxt}${CONTEXT_SEPARATOR}${entry.msgid}`
      // the header, which Python's catalog keeps under "": Django's gettext("") answers "" instead
      if (key === "") continue
      const forms = entry.msgstr
      if (forms === undefined) throw new MalformedCatalog(`msgid "${entry.msgid}" has no msgstr`)
      // msgfmt leaves out fuzzy entries and untranslated ones: those whose first msgstr is empty
      if (fromPo && (isFuzzy(entry) || forms[0] === "")) continue
      if (entry.msgid_plural === undefined) messages.set(key, forms[0]!)
      else plurals.set(key, forms)
    }
  }
  const header = table.translations[""]?.[""]?.msgstr?.[0] ?? ""
  return { locale, messages, plurals, plural: pluralFunctionOf(header) }
}

const reasonOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

const catalogError = (file: string) => (error: unknown): CatalogError => {
  const line = (error as { lineNumber?: unknown } | null)?.lineNumber
  const lineNumber = typeof line === "number" ? line : null
  return new CatalogError({
    message: `translation catalog ${file}${lineNumber === null ? "" : `, line ${lineNumber}`}: ${reasonOf(error)}`,
    file,
    line: lineNumber
  })
}

/** The file's content, or null when it does not exist. */
const readIfPresent = (file: string): Effect.Effect<Buffer | null, CatalogError> =>
  Effect.tryPromise({
    try: () =>
      readFile(file).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT" || error.code === "ENOTDIR") return null
        throw error
      }),
    catch: catalogError(file)
  })

const CATALOG_FILES = [{ name: "django.mo", fromPo: false }, { name: "django.po", fromPo: true }] as const

/** The catalog in `<localeDir>/<directory>/LC_MESSAGES`, its `.mo` preferred; null when there is neither file. */
const loadCatalog = (localeDir: string) =>
  Effect.fn("Translations.loadCatalog")(function*(directory: string) {
    for (const { name, fromPo } of CATALOG_FILES) {
      const file = path.join(localeDir, directory, "LC_MESSAGES", name)
      const content = yield* readIfPresent(file)
      if (content === null) continue
      const catalog = yield* Effect.try({
        try: () => catalogFrom(directory, fromPo ? parsePo(content) : parseMo(content), fromPo),
        catch: catalogError(file)
      })
      yield* Effect.logInfo("translation catalog loaded").pipe(
        Effect.annotateLogs({ file, messages: catalog.messages.size + catalog.plurals.size })
      )
      return catalog
    }
    return null
  })

// ---- the catalogs of one locale directory -----------------------------------------------------------------------

export interface Catalogs {
  /**
   * The translations for a Django language code (`de`, `pt-br`, `zh-hans`) or a locale (`pt_BR`), loaded on first
   * use. A language without a catalog is answered by the default language's catalog, or unchanged (English).
   */
  readonly forLanguage: (language: string) => Effect.Effect<Translations, CatalogError | InvalidLanguage>
}

/** A failed load is not kept, so a catalog fixed on disk is read again by the next request. */
const keepSuccesses = {
  capacity: CACHE_CAPACITY,
  timeToLive: (exit: Exit.Exit<unknown, unknown>) => Exit.isSuccess(exit) ? Duration.infinity : Duration.zero
}

/**
 * The catalogs under `localeDir` (Django's `LOCALE_PATHS` entry), each file loaded once however many fibers ask at
 * once, and one warning per language that has no catalog.
 */
export const makeCatalogs = Effect.fnUntraced(function*(localeDir: string) {
  const directory = path.resolve(localeDir)
  const files = yield* Cache.makeWith(loadCatalog(directory), keepSuccesses)

  const firstCatalog = Effect.fnUntraced(function*(locale: string) {
    for (const candidate of catalogDirectoriesFor(locale)) {
      const catalog = yield* Cache.get(files, candidate)
      if (catalog !== null) return catalog
    }
    return null
  })

  const translationsFor = Effect.fnUntraced(function*(locale: string) {
    const own = yield* firstCatalog(locale)
    // as Django: no fallback for the default language or any English variant, and English needs no catalog
    const english = locale.startsWith("en")
    const fallback = english ? null : yield* firstCatalog(toLocale(DEFAULT_LANGUAGE))
    if (own === null && !english) {
      yield* Effect.logWarning(`no translations for language '${locale}' under ${directory}: its emails are in English`)
    }
    const chain = [own, fallback].filter((catalog) => catalog !== null)
    return chain.length === 0 ? englishTranslations : translationsFrom(chain)
  })
  const translations = yield* Cache.makeWith(translationsFor, keepSuccesses)

  const catalogs: Catalogs = {
    forLanguage: (language) =>
      LANGUAGE_CODE.test(language)
        ? Cache.get(translations, toLocale(language))
        : Effect.fail(
          new InvalidLanguage({
            message: `${JSON.stringify(language)} is not a language code (such as de, pt-br or zh-hans)`,
            language
          })
        )
  }
  return catalogs
})
