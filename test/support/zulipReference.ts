/**
 * Zulip's own templates, catalogs and events (../shared/zulip, Zulip 2024-06, Apache-2.0), and Jinja2 configured as
 * Zulip configures it (../shared/zulip/reference/render_jinja.py), for the tests that compare this worker's emails
 * with Zulip's. Present beside the checkout on the CI machines (`ZULIP_REFERENCE_DIR` points elsewhere); the tests that
 * need it run only where it is, and `.ci/run` says which.
 */
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import * as path from "node:path"

export const zulipDir = path.resolve(
  process.env["ZULIP_REFERENCE_DIR"] ?? path.join(import.meta.dirname, "..", "..", "..", "shared", "zulip")
)
export const zulipTemplatesDir = path.join(zulipDir, "templates")
export const zulipLocaleDir = path.join(zulipDir, "locale")
export const zulipEventsDir = path.join(zulipDir, "events")
export const renderJinjaScript = path.join(zulipDir, "reference", "render_jinja.py")

export const hasZulipReference = existsSync(renderJinjaScript)

/** A Python that has Jinja2: the one on PATH, else Debian's (`.ci/run` installs `python3-jinja2` when neither has it). */
export const pythonWithJinja = (): string => {
  for (const python of ["python3", "/usr/bin/python3"]) {
    try {
      execFileSync(python, ["-c", "import jinja2"], { stdio: "ignore" })
      return python
    } catch {
      // not this one
    }
  }
  throw new Error("no python3 with Jinja2 (install Debian's python3-jinja2)")
}

export interface ReferenceCase {
  readonly template: string
  readonly language: string | null
  readonly context: Readonly<Record<string, unknown>>
}

export type ReferenceResult = { readonly output: string } | { readonly error: string; readonly message: string }

/**
 * Renders many cases at once with Jinja2 as Zulip configures it (test/support/jinjaReference.py), from Zulip's
 * templates and catalogs unless others are given.
 */
export const renderWithJinja = (
  cases: ReadonlyArray<ReferenceCase>,
  templatesDir = zulipTemplatesDir,
  localeDir = zulipLocaleDir
): ReadonlyArray<ReferenceResult> =>
  JSON.parse(
    execFileSync(
      pythonWithJinja(),
      [path.join(import.meta.dirname, "jinjaReference.py"), renderJinjaScript, templatesDir, localeDir],
      { input: JSON.stringify(cases), maxBuffer: 1 << 28 }
    ).toString()
  ) as ReadonlyArray<ReferenceResult>

export interface ParsedEmail {
  readonly subject: string
  readonly text: string
  readonly html: string
}

/**
 * Each raw message's decoded subject, text part and HTML part (lines ending in `\n`), read by Python's `email`
 * package (which, unlike postal-mime, keeps the line break before a MIME boundary out of the part, as RFC 2046 says).
 */
export const parseEmails = (raws: ReadonlyArray<string>): ReadonlyArray<ParsedEmail> =>
  JSON.parse(
    execFileSync(pythonWithJinja(), ["-c", `
import email, email.policy, json, sys
parsed = []
for raw in json.load(sys.stdin):
    message = email.message_from_bytes(raw.encode("utf-8"), policy=email.policy.default)
    # SMTP carries lines ending in CRLF; the rendered text has LF, as Zulip's templates do
    parts = {part.get_content_type(): part.get_content().replace("\\r\\n", "\\n") for part in message.walk() if not part.is_multipart()}
    parsed.append({"subject": str(message["subject"]), "text": parts.get("text/plain"), "html": parts.get("text/html")})
json.dump(parsed, sys.stdout)
`], { input: JSON.stringify(raws), maxBuffer: 1 << 28 }).toString()
  ) as ReadonlyArray<ParsedEmail>
