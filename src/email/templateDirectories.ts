/**
 * The template and catalog directories a builder reads: where they are (`TEMPLATES_DIR`, `LOCALE_DIR`, defaulting to
 * `<TEMPLATES_DIR>/../locale`), and the start-up check that they exist, can be read and hold templates.
 */
import { Effect, Schema } from "effect"
import { readdir } from "node:fs/promises"
import * as path from "node:path"
import { defaultTemplatesDir } from "./TemplateRenderer.ts"
import type { ZulipEmailBuilderOptions } from "./ZulipEmailBuilder.ts"

/** `TEMPLATES_DIR` or `LOCALE_DIR` cannot serve; `message` names the setting and the path. */
export class UnusableDirectory extends Schema.TaggedError<UnusableDirectory>()("UnusableDirectory", {
  message: Schema.String,
  setting: Schema.Literals(["TEMPLATES_DIR", "LOCALE_DIR"])
}) {}

const entriesOf = (directory: string, options: { readonly recursive: boolean }) =>
  Effect.promise(() => readdir(directory, options).then((names) => names, (error: NodeJS.ErrnoException) => error))

/** The template and catalog directories as the builder resolves them. */
export interface Directories {
  readonly templatesDir: string
  readonly localeDir: string
  readonly localeDirGiven: boolean
}

export const directoriesOf = (options: Pick<ZulipEmailBuilderOptions, "templatesDir" | "localeDir">): Directories => {
  const templatesDir = options.templatesDir ?? defaultTemplatesDir
  return {
    templatesDir,
    localeDir: options.localeDir ?? path.join(templatesDir, "..", "locale"),
    localeDirGiven: options.localeDir !== undefined
  }
}

/** `TEMPLATES_DIR` must be a readable directory holding templates. */
export const checkTemplatesDirectory = Effect.fnUntraced(function*(templatesDir: string) {
  const files = yield* entriesOf(templatesDir, { recursive: true })
  const unusable = (problem: string) => new UnusableDirectory({ message: `TEMPLATES_DIR ${templatesDir} ${problem}`, setting: "TEMPLATES_DIR" })
  if (files instanceof Error) return yield* unusable(`cannot be read (${files.code ?? files.message})`)
  if (!files.some((name) => name.endsWith(".subject.txt"))) {
    return yield* unusable("holds no email templates (no <name>.subject.txt in it)")
  }
})

/**
 * A `LOCALE_DIR` given must be a readable directory; gives its entries (the catalog directories), or null when it
 * was not given and there is no `locale/` beside the templates: then every email is in English.
 */
export const checkLocaleDirectory = Effect.fnUntraced(function*({ localeDir, localeDirGiven }: Directories) {
  const catalogs = yield* entriesOf(localeDir, { recursive: false })
  if (!(catalogs instanceof Error)) return catalogs
  if (localeDirGiven || catalogs.code !== "ENOENT") {
    return yield* new UnusableDirectory({
      message: `LOCALE_DIR ${localeDir} cannot be read (${catalogs.code ?? catalogs.message})`,
      setting: "LOCALE_DIR"
    })
  }
  return null
})

/**
 * Checked at start, so that a wrong path stops the worker naming it instead of failing every email. Without a
 * catalog directory every email is in English, which is said once.
 */
export const checkDirectories = Effect.fnUntraced(function*(directories: Directories) {
  yield* checkTemplatesDirectory(directories.templatesDir)
  if ((yield* checkLocaleDirectory(directories)) === null) {
    yield* Effect.logWarning(`no translations: ${directories.localeDir} (LOCALE_DIR) does not exist, so every email is in English`)
  }
})

