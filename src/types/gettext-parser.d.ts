/** What this package uses of gettext-parser 10 (which ships no types). */
declare module "gettext-parser" {
  export interface GetTextComment {
    readonly translator?: string
    readonly extracted?: string
    readonly reference?: string
    /** the `#,` lines, joined with "\n" */
    readonly flag?: string
    readonly previous?: string
  }

  export interface GetTextTranslation {
    /** absent without a context (an empty `msgctxt ""` is read as no context) */
    readonly msgctxt?: string
    readonly msgid: string
    readonly msgid_plural?: string
    /** absent when a `.po` entry has no msgstr and validation is off */
    readonly msgstr?: ReadonlyArray<string>
    readonly comments?: GetTextComment
  }

  export interface GetTextTranslations {
    readonly charset: string
    readonly headers: Readonly<Record<string, string>> | undefined
    /** context ("" for none) → msgid → entry; the header is the entry with context "" and msgid "" */
    readonly translations: Readonly<Record<string, Readonly<Record<string, GetTextTranslation>>>>
    /** the `#~` entries of a `.po` */
    readonly obsolete?: Readonly<Record<string, Readonly<Record<string, GetTextTranslation>>>>
  }

  export interface PoParseOptions {
    readonly defaultCharset?: string
    /** refuse duplicate msgids, a line break inside a string, and plural entries whose form count is not nplurals */
    readonly validation?: boolean
  }

  export const po: {
    /** throws a SyntaxError (with `lineNumber` for lexical errors) or a RangeError for a malformed file */
    readonly parse: (input: string | Buffer, options?: PoParseOptions) => GetTextTranslations
  }

  export const mo: {
    /** false when the buffer does not start with the .mo magic number */
    readonly parse: (input: Buffer, defaultCharset?: string) => GetTextTranslations | false
  }
}
