/**
 * The live `EmailBuilder`: Zulip's `zerver.lib.send_email.build_email` (Zulip reference §1.2, §5).
 *
 * Both content forms go through the same header rules: a template triplet rendered in the recipient's language,
 * or a producer's pre-rendered subject/text/html (taken as final; only a missing text part is derived from the
 * HTML). Everything that ends up in a header is checked before anything is built: a control character or an
 * address that does not parse fails the whole event with `InvalidEvent` naming the field, so no half-built or
 * injected header can reach the transport.
 */
import { Clock, Config, Effect, Exit, Layer, Option, Schema } from "effect"
import { compile as compileHtmlToText } from "html-to-text"
import { randomBytes } from "node:crypto"
import {
  formatAddrSpec,
  formatAddressPair,
  formatMailbox,
  hostWithoutPort,
  limitedMailbox,
  type Mailbox,
  parseAddressField,
  parseMailbox,
  requireHeaderSafe
} from "../domain/addresses.ts"
import { type EmailEvent, type JsonObject, templateName } from "../domain/EmailEvent.ts"
import { InvalidEvent, TemplateError } from "../domain/errors.ts"
import { messageIdFor } from "../domain/MessageId.ts"
import type { OutgoingEmail } from "../domain/OutgoingEmail.ts"
import type { Realm, User } from "../domain/Realm.ts"
import { withEventSpan } from "../operations/eventSpan.ts"
import { type BuildRequest, EmailBuilder } from "./EmailBuilder.ts"
import { HttpUrlSetting } from "../config/connectionSettings.ts"
import type { Catalog } from "./jinja/environment.ts"
import { checkDirectories, directoriesOf } from "./templateDirectories.ts"
import { makeTemplateRenderer, type TemplateRenderer } from "./TemplateRenderer.ts"
import { makeStyleInliner } from "./styleInliner.ts"
import { type CatalogError, englishTranslations, type InvalidLanguage, makeCatalogs } from "./Translations.ts"

export { UnusableDirectory } from "./templateDirectories.ts"

/** Zulip's settings, under Zulip's names; every one has Zulip's default. */
export interface ZulipEmailBuilderOptions {
  /** `EXTERNAL_HOST` (default `localhost`): realm hosts, default addresses and Message-IDs derive from it */
  readonly externalHost?: string | undefined
  /** `NOREPLY_EMAIL_ADDRESS` (default `noreply@<EXTERNAL_HOST without port>`): also the envelope sender */
  readonly noreplyEmailAddress?: string | undefined
  /** `TOKENIZED_NOREPLY_EMAIL_ADDRESS` (default `noreply-{token}@<EXTERNAL_HOST without port>`) */
  readonly tokenizedNoreplyEmailAddress?: string | undefined
  /** `ADD_TOKENS_TO_NOREPLY_ADDRESS` (default true): false makes `TOKENIZED_NO_REPLY` plain no-reply */
  readonly addTokensToNoreplyAddress?: boolean | undefined
  /** `ZULIP_ADMINISTRATOR` (default `support@<EXTERNAL_HOST without port>`): `SUPPORT` and `support_email` */
  readonly zulipAdministrator?: string | undefined
  /** `PHYSICAL_ADDRESS` (default ""): the `physical_address` template variable */
  readonly physicalAddress?: string | undefined
  /** `EMAIL_IMAGES_BASE_URL` (default `https://<EXTERNAL_HOST>/static/images/emails`) */
  readonly emailImagesBaseUrl?: string | undefined
  /** `TEMPLATES_DIR` (default: this package's `templates/`) */
  readonly templatesDir?: string | undefined
  /** `TEMPLATES_RELOAD` (default false): re-read templates on every email, for template development */
  readonly templatesReload?: boolean | undefined
  /** `LOCALE_DIR` (default `<TEMPLATES_DIR>/../locale`, a Zulip deployment's layout): Django's gettext catalogs */
  readonly localeDir?: string | undefined
}

interface BuilderSettings {
  readonly externalHost: string
  readonly messageIdHost: string
  readonly noreply: Mailbox
  /** the tokenized no-reply address with its `{token}` placeholder still in it */
  readonly tokenizedNoreply: Mailbox
  readonly addTokensToNoreplyAddress: boolean
  readonly support: Mailbox
  readonly physicalAddress: string
  readonly emailImagesBaseUrl: string
}

const TOKEN_PLACEHOLDER = "{token}"

/** An address setting, read like Zulip's `parseaddr(setting)[1]`; a bad one stops the worker at start-up. */
/** An address setting that is no email address; `message` names the setting and the value. */
export class InvalidAddressSetting extends Schema.TaggedError<InvalidAddressSetting>()("InvalidAddressSetting", {
  message: Schema.String,
  setting: Schema.String
}) {}

const addressSetting = (name: string, value: string): Effect.Effect<Mailbox, InvalidAddressSetting> => {
  const mailbox = parseMailbox(value)
  return mailbox === null
    ? Effect.fail(new InvalidAddressSetting({ message: `${name} ${JSON.stringify(value)} is not a valid email address`, setting: name }))
    : Effect.succeed(mailbox)
}

/** The address settings parsed (`check` runs this too); the builder stops at start on an invalid one. */
export const resolveSettings = Effect.fnUntraced(function*(options: ZulipEmailBuilderOptions) {
  const externalHost = options.externalHost ?? "localhost"
  const host = hostWithoutPort(externalHost)
  return {
    externalHost,
    messageIdHost: host,
    noreply: yield* addressSetting("NOREPLY_EMAIL_ADDRESS", options.noreplyEmailAddress ?? `noreply@${host}`),
    tokenizedNoreply: yield* addressSetting(
      "TOKENIZED_NOREPLY_EMAIL_ADDRESS",
      options.tokenizedNoreplyEmailAddress ?? `noreply-${TOKEN_PLACEHOLDER}@${host}`
    ),
    addTokensToNoreplyAddress: options.addTokensToNoreplyAddress ?? true,
    support: yield* addressSetting("ZULIP_ADMINISTRATOR", options.zulipAdministrator ?? `support@${host}`),
    physicalAddress: options.physicalAddress ?? "",
    emailImagesBaseUrl: options.emailImagesBaseUrl ?? `https://${externalHost}/static/images/emails`
  } satisfies BuilderSettings
})

/** Zulip's `tokenized_no_reply_address()`: the setting with a fresh random token in place of `{token}`. */
const withToken = (mailbox: Mailbox, token: string): Mailbox => {
  const local = mailbox.local.replaceAll(TOKEN_PLACEHOLDER, token)
  const domain = mailbox.domain.replaceAll(TOKEN_PLACEHOLDER, token)
  return { name: "", local, domain, address: formatAddrSpec(local, domain) }
}

/** Python's `email.utils.formatdate()`: RFC 2822 in UTC, written `-0000` as Zulip's emails carry it. */
const formatEmailDate = (epochMillis: number): string => new Date(epochMillis).toUTCString().replace("GMT", "-0000")

/** Python truthiness of a JSON value, for `context.get("remote_server_email", False)`. */
const isTruthy = (value: unknown): boolean => {
  if (Array.isArray(value)) return value.length > 0
  if (typeof value === "object" && value !== null) return Object.keys(value).length > 0
  return Boolean(value)
}

const htmlToText = compileHtmlToText({
  wordwrap: 78,
  selectors: [
    { selector: "img", format: "skip" },
    { selector: "a", options: { hideLinkHrefIfSameAsText: true } }
  ]
})

const nonEmpty = (value: string | null | undefined): string | null => value === undefined || value === "" ? null : value

const invalid = (field: string, message: string) => new InvalidEvent({ message: `invalid email event: ${message}`, field })

/**
 * An event without `realm_id` takes its realm from its users, so they must share one (Zulip asserts the same);
 * with an explicit `realm_id`, Zulip sends to whichever users are named, and so does this.
 */
const checkImplicitRealm = (event: EmailEvent, users: ReadonlyArray<User>): Effect.Effect<void, InvalidEvent> => {
  const realmIds = [...new Set(users.map((user) => user.realmId))]
  return event.realmId === null && realmIds.length > 1
    ? Effect.fail(invalid("to_user_ids", `to_user_ids spans several realms (${realmIds.join(", ")}) and no realm_id says which one the email is from`))
    : Effect.void
}

interface Recipients {
  readonly to: ReadonlyArray<string>
  readonly envelope: ReadonlyArray<string>
}

// The checks below depend only on their arguments: evaluated eagerly, they give an `Exit` at once, without a trip
// through the fiber's run loop for every header of every email.

/** `to_emails` as given (validated), or each user as `"Full Name <delivery_email>"` under the 320 rule. */
const recipientsFor = Effect.fnUntracedEager(function*(event: EmailEvent, users: ReadonlyArray<User>) {
  const to: Array<string> = []
  const envelope: Array<string> = []
  if (event.recipients._tag === "Emails") {
    for (const [index, email] of event.recipients.emails.entries()) {
      const mailbox = yield* parseAddressField("to_emails", email, { withName: true, what: `to_emails[${index}]` })
      to.push(formatMailbox(mailbox.name, mailbox.address))
      envelope.push(mailbox.address)
    }
  } else {
    if (users.length === 0) return yield* invalid("to_user_ids", "no user was resolved for to_user_ids")
    for (const user of users) {
      const fullName = yield* requireHeaderSafe("to_user_ids", user.fullName, `the full name of user ${user.id}`)
      const mailbox = yield* parseAddressField("to_user_ids", user.deliveryEmail, {
        withName: false,
        what: `the delivery email of user ${user.id}`
      })
      to.push(limitedMailbox(fullName, mailbox))
      envelope.push(mailbox.address)
    }
  }
  return { to, envelope } satisfies Recipients
})

/** `List-Id`, `X-Auto-Response-Suppress` and the unsubscribe headers, in Zulip's order. */
const headersFor = Effect.fnUntracedEager(function*(settings: BuilderSettings, realm: Realm | null, context: JsonObject) {
  const headers: Array<readonly [string, string]> = []
  if (realm !== null) {
    const name = yield* requireHeaderSafe("realm_id", realm.name, `the name of realm ${realm.id}`)
    const host = realm.stringId === "" ? settings.externalHost : `${realm.stringId}.${settings.externalHost}`
    headers.push(["List-Id", formatAddressPair(name, host)])
  }
  headers.push(["X-Auto-Response-Suppress", "All"])
  // decoding checked that it is one http(s) or mailto URI (headerValues.ts)
  if (typeof context["unsubscribe_link"] === "string") {
    headers.push(["List-Unsubscribe", `<${context["unsubscribe_link"]}>`])
    if (!isTruthy(context["remote_server_email"])) {
      headers.push(["List-Unsubscribe-Post", "List-Unsubscribe=One-Click"])
    }
  }
  return headers
})

/** Zulip strips the rendered subject and removes its line breaks (templates end with a newline). */
const cleanRenderedSubject = (subject: string): string => subject.trim().replace(/\r\n|\r|\n/g, "")

/** `compute()`, or a `TemplateError` naming the template, its file and the `step` that threw. */
const templateStep = (
  template: string,
  file: string | null,
  step: string,
  compute: () => string
): Exit.Exit<string, TemplateError> => {
  try {
    return Exit.succeed(compute())
  } catch (error) {
    return Exit.fail(
      new TemplateError({ message: `template ${template}: ${step} failed: ${(error as Error).message}`, template, file, line: null })
    )
  }
}

const inliningFailed = (template: string, htmlFile: string | null) => (error: unknown) =>
  new TemplateError({
    message: `template ${template}: inlining the CSS of the HTML failed: ${error instanceof Error ? error.message : String(error)}`,
    template,
    file: htmlFile,
    line: null
  })

/** The text part as given, else derived from the HTML (Zulip always ships a `.txt`; we do not require one). */
const textPart = (
  template: string,
  file: string | null,
  text: string | null,
  html: string | null
): Exit.Exit<string, TemplateError> =>
  templateStep(template, file, "deriving the text part from the HTML", () => text ?? htmlToText(html ?? ""))

interface Content {
  readonly subject: string
  readonly text: string
  readonly html: string | null
}

/** A catalog that cannot be read fails the email as its template would; a language that is no code is the event's fault. */
const catalogFailure = (error: CatalogError | InvalidLanguage): TemplateError | InvalidEvent =>
  error._tag === "InvalidLanguage"
    ? invalid("language", `language ${error.message}`)
    : new TemplateError({ message: `translations: ${error.message}`, template: "", file: error.file, line: error.line })

export const make = Effect.fnUntraced(function*(options: ZulipEmailBuilderOptions = {}) {
  const settings = yield* Effect.orDie(resolveSettings(options))
  const directories = directoriesOf(options)
  const { localeDir, templatesDir } = directories
  yield* checkDirectories(directories).pipe(Effect.catchTag("UnusableDirectory", (error) => Effect.die(new Error(error.message))))
  const renderer: TemplateRenderer = makeTemplateRenderer({
    templatesDir,
    reload: options.templatesReload ?? false,
    // Zulip's environments have `support_email` as a global, so macros imported without context see it too
    globals: { support_email: settings.support.address }
  })
  const catalogs = yield* makeCatalogs(localeDir)
  const styles = yield* makeStyleInliner()

  /** The catalog of `language` (Django's `override_language`), or English with Zulip's warning when there is none. */
  const catalogFor = (templatePrefix: string, language: string | null): Effect.Effect<Catalog, TemplateError | InvalidEvent> =>
    language === null
      ? Effect.as(Effect.logWarning(`Missing language for email template '${templatePrefix}'`), englishTranslations)
      : Effect.mapError(catalogs.forLanguage(language), catalogFailure)

  /** `from_address` and its placeholders, as Zulip's `FromAddress` resolves them. */
  const fromAddressFor = (fromAddress: string | null): Effect.Effect<Mailbox, InvalidEvent> => {
    switch (fromAddress) {
      case null:
      case "NO_REPLY":
        return Effect.succeed(settings.noreply)
      case "SUPPORT":
        return Effect.succeed(settings.support)
      case "TOKENIZED_NO_REPLY":
        return settings.addTokensToNoreplyAddress
          ? Effect.sync(() => withToken(settings.tokenizedNoreply, randomBytes(12).toString("hex")))
          : Effect.succeed(settings.noreply)
      default:
        return parseAddressField("from_address", fromAddress, { withName: false })
    }
  }

  /** A producer's pre-rendered content, taken as final: only a missing text part is derived from the HTML. */
  const renderedContent = Effect.fnUntracedEager(function*(
    template: string,
    content: Extract<EmailEvent["content"], { _tag: "Rendered" }>
  ) {
    const subject = yield* requireHeaderSafe("subject", content.subject)
    const text = yield* textPart(template, null, content.text, content.html)
    return { subject: subject.trim(), text, html: content.html } satisfies Content
  })

  const renderTemplate = Effect.fnUntraced(function*(
    template: string,
    templatePrefix: string,
    language: string | null,
    context: JsonObject
  ) {
    const catalog = yield* catalogFor(templatePrefix, language)
    const rendered = yield* renderer.render(templatePrefix, catalog, context)
    const subject = yield* requireHeaderSafe(
      "subject",
      cleanRenderedSubject(rendered.subject),
      `the rendered subject of template ${template}`
    )
    const html = rendered.html === null
      ? null
      : yield* Effect.mapError(styles.inline(rendered.html, rendered.htmlSkeleton), inliningFailed(template, rendered.htmlFile))
    const text = yield* textPart(template, rendered.htmlFile, rendered.text, html)
    return { subject, text, html } satisfies Content
  }, (effect, template) => Effect.annotateLogs(effect, { template }), withEventSpan("EmailBuilder.renderTemplate"))

  // decoding checked the producer's date (headerValues.ts)
  const dateFor = (date: string | null): Effect.Effect<string> =>
    date === null ? Effect.map(Clock.currentTimeMillis, formatEmailDate) : Effect.succeed(date)

  const build = Effect.fnUntraced(function*({ event, realm, users }: BuildRequest) {
    const template = templateName(event)
    yield* checkImplicitRealm(event, users)
    const fromName = yield* requireHeaderSafe("from_name", event.fromName ?? "Zulip")
    const fromAddress = yield* fromAddressFor(event.fromAddress)
    const replyTo = event.replyToEmail !== null
      ? [yield* parseAddressField("reply_to_email", event.replyToEmail, { withName: true })].map((mailbox) =>
        formatMailbox(mailbox.name, mailbox.address)
      )
      : fromAddress.address === settings.noreply.address
      ? [settings.noreply.address]
      : []
    const recipients = yield* recipientsFor(event, users)
    const date = yield* dateFor(event.date)
    const headers = yield* headersFor(settings, realm, event.context)
    const language = nonEmpty(event.language) ??
      (event.recipients._tag === "UserIds" ? nonEmpty(users[0]?.defaultLanguage) : null)
    const content = event.content._tag === "Rendered"
      ? yield* renderedContent(template, event.content)
      : yield* renderTemplate(template, event.content.templatePrefix, language, {
        ...event.context,
        support_email: settings.support.address,
        email_images_base_url: settings.emailImagesBaseUrl,
        physical_address: settings.physicalAddress
      })
    return {
      messageId: messageIdFor(event, settings.messageIdHost),
      envelope: { from: settings.noreply.address, to: recipients.envelope },
      from: limitedMailbox(fromName, fromAddress),
      to: recipients.to,
      replyTo,
      subject: content.subject,
      text: content.text,
      html: content.html,
      date,
      headers,
      template,
      realm: realm?.stringId ?? null
    } satisfies OutgoingEmail
  })

  return EmailBuilder.of({ build })
})

export const layer = (options: ZulipEmailBuilderOptions = {}): Layer.Layer<EmailBuilder> =>
  Layer.effect(EmailBuilder, make(options))

const optionalString = (name: string) => Config.String(name).pipe(Config.option, Config.map(Option.getOrUndefined))

/** The environment variables named in `ZulipEmailBuilderOptions`. */
export const optionsConfig: Config.Config<ZulipEmailBuilderOptions> = Config.all({
  externalHost: Config.String("EXTERNAL_HOST").pipe(Config.withDefault("localhost")),
  noreplyEmailAddress: optionalString("NOREPLY_EMAIL_ADDRESS"),
  tokenizedNoreplyEmailAddress: optionalString("TOKENIZED_NOREPLY_EMAIL_ADDRESS"),
  addTokensToNoreplyAddress: Config.Boolean("ADD_TOKENS_TO_NOREPLY_ADDRESS").pipe(Config.withDefault(true)),
  zulipAdministrator: optionalString("ZULIP_ADMINISTRATOR"),
  physicalAddress: Config.String("PHYSICAL_ADDRESS").pipe(Config.withDefault("")),
  emailImagesBaseUrl: Config.option(HttpUrlSetting("EMAIL_IMAGES_BASE_URL")).pipe(Config.map(Option.getOrUndefined)),
  templatesDir: optionalString("TEMPLATES_DIR"),
  templatesReload: Config.Boolean("TEMPLATES_RELOAD").pipe(Config.withDefault(false)),
  localeDir: optionalString("LOCALE_DIR")
})

/** The same layer, configured from the environment (`optionsConfig`). */
export const layerConfig: Layer.Layer<EmailBuilder, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function*() {
    return layer(yield* optionsConfig)
  })
)
