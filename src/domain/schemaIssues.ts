/** Schema issues as reasons: each problem with its path, read from the structured issue, not from printed text. */
import { SchemaIssue } from "effect"

export interface Problem {
  /** `from_name`, `context.user.name`, `to_emails[1]`; empty for the value itself */
  readonly path: string
  /** the first key of the path, when it is a name (a field, a setting) */
  readonly key: string | null
  readonly message: string
}

/** An excess key reads as "unknown key". */
const standardIssues = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => issue._tag === "UnexpectedKey" ? "unknown key" : SchemaIssue.defaultLeafHook(issue)
})

const keyOf = (segment: PropertyKey | { readonly key: PropertyKey }): PropertyKey =>
  typeof segment === "object" ? segment.key : segment

const pathText = (keys: ReadonlyArray<PropertyKey>): string =>
  keys.reduce<string>(
    (text, key, index) =>
      typeof key === "number" ? `${text}[${key}]` : index === 0 ? String(key) : `${text}.${String(key)}`,
    ""
  )

export const problemsOf = (issue: SchemaIssue.Issue): ReadonlyArray<Problem> =>
  standardIssues(issue).issues.map(({ message, path }) => {
    const keys = (path ?? []).map(keyOf)
    return { path: pathText(keys), key: typeof keys[0] === "string" ? keys[0] : null, message }
  })

/** `from_name: Expected string; zz: unknown key` */
export const problemsText = (problems: ReadonlyArray<Problem>): string =>
  problems.map(({ message, path }) => path === "" ? message : `${path}: ${message}`).join("; ")
