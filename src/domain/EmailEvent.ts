/**
 * Zulip's `email_senders` event (see the Zulip reference, §1.2 and §1.3), decoded with Effect Schema.
 *
 * Decoding is strict like Zulip's `send_immediate_email(**event)`: an unknown key is an error, not silently
 * ignored. The decoded value keeps the event's original JSON object untouched, because requeues and failure
 * records must carry exactly what the producer sent (legacy keys included).
 */
import { Effect, Schema, SchemaIssue } from "effect"
import { InvalidEvent } from "./errors.ts"
import { DateValue, MessageIdValue, unsubscribeLinkCheck } from "./headerValues.ts"

export type JsonObject = { readonly [key: string]: unknown }

const optionalNullable = <S extends Schema.Top>(schema: S) => Schema.optionalKey(Schema.NullOr(schema))

const UserId = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/** The wire format, field by field. Cross-field rules are checked by `EmailEventWire` below. */
const EmailEventFields = Schema.Struct({
  template_prefix: Schema.optionalKey(Schema.NonEmptyString),
  to_user_ids: optionalNullable(Schema.Array(UserId)),
  to_emails: optionalNullable(Schema.Array(Schema.String)),
  /** legacy (pre-2018 producers), converted to `to_emails` */
  to_email: optionalNullable(Schema.String),
  /** legacy (pre-2018 producers), converted to `to_user_ids` */
  to_user_id: optionalNullable(UserId),
  from_name: optionalNullable(Schema.String),
  /** an address, or one of the placeholders `NO_REPLY`, `TOKENIZED_NO_REPLY`, `SUPPORT` */
  from_address: optionalNullable(Schema.String),
  reply_to_email: optionalNullable(Schema.String),
  language: optionalNullable(Schema.String),
  /** the `Date` header (RFC 2822), usually the enqueue time */
  date: optionalNullable(DateValue),
  context: optionalNullable(Schema.Record(Schema.String, Schema.Unknown).check(unsubscribeLinkCheck)),
  realm_id: optionalNullable(Schema.Int),
  failed_tries: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  /** take the recipients off the Amazon SES suppression list before sending (`SuppressionList`) */
  remove_suppressed_destination: optionalNullable(Schema.Boolean),
  /** beyond Zulip: a producer-chosen Message-ID, kept across redeliveries */
  message_id: optionalNullable(MessageIdValue),
  /** beyond Zulip: pre-rendered content instead of `template_prefix` */
  subject: Schema.optionalKey(Schema.String),
  text: Schema.optionalKey(Schema.String),
  html: Schema.optionalKey(Schema.String)
})
type EmailEventFields = typeof EmailEventFields.Type

const isSet = (value: unknown): boolean => value !== undefined && value !== null

/** `to_email` / `to_user_id` win over the plural keys, exactly as Zulip's `handle_send_email_format_changes`. */
const recipientsAfterLegacy = (fields: EmailEventFields) => ({
  to_emails: isSet(fields.to_email) ? [fields.to_email as string] : (fields.to_emails ?? null),
  to_user_ids: isSet(fields.to_user_id) ? [fields.to_user_id as number] : (fields.to_user_ids ?? null)
})

const EmailEventWire = EmailEventFields.check(
  Schema.makeFilter((fields) => {
    const issues: Array<Schema.FilterIssue> = []
    const { to_emails, to_user_ids } = recipientsAfterLegacy(fields)
    if ((to_emails === null) === (to_user_ids === null)) {
      issues.push({
        path: ["to_emails"],
        issue: to_emails === null
          ? "exactly one of to_emails / to_user_ids must be set; neither is"
          : "exactly one of to_emails / to_user_ids must be set; both are"
      })
    } else if ((to_emails ?? to_user_ids ?? []).length === 0) {
      issues.push({ path: [to_emails === null ? "to_user_ids" : "to_emails"], issue: "must list at least one recipient" })
    }
    const rendered = isSet(fields.subject) || isSet(fields.text) || isSet(fields.html)
    if (fields.template_prefix !== undefined && rendered) {
      issues.push({
        path: ["template_prefix"],
        issue: "give either template_prefix or pre-rendered subject/text/html, not both"
      })
    } else if (fields.template_prefix === undefined) {
      if (!rendered) {
        issues.push({ path: ["template_prefix"], issue: "is required (or pre-rendered subject with text and/or html)" })
      } else if (fields.subject === undefined) {
        issues.push({ path: ["subject"], issue: "is required for a pre-rendered email" })
      } else if (fields.text === undefined && fields.html === undefined) {
        issues.push({ path: ["text"], issue: "a pre-rendered email needs text and/or html" })
      }
    }
    return issues
  })
)

export type EmailContent =
  | { readonly _tag: "Template"; readonly templatePrefix: string }
  | { readonly _tag: "Rendered"; readonly subject: string; readonly text: string | null; readonly html: string | null }

export type EventRecipients =
  | { readonly _tag: "Emails"; readonly emails: ReadonlyArray<string> }
  | { readonly _tag: "UserIds"; readonly userIds: ReadonlyArray<number> }

/** A decoded, normalised event. */
export interface EmailEvent {
  readonly content: EmailContent
  readonly recipients: EventRecipients
  readonly fromName: string | null
  readonly fromAddress: string | null
  readonly replyToEmail: string | null
  readonly language: string | null
  readonly date: string | null
  readonly context: JsonObject
  readonly realmId: number | null
  /** how many times the queue has already retried this event (Zulip's `failed_tries`) */
  readonly failedTries: number
  readonly messageId: string | null
  /** `remove_suppressed_destination`: unset or null is false */
  readonly removeSuppressedDestination: boolean
  /** the event exactly as received, for requeues and failure records */
  readonly original: JsonObject
}

const toEmailEvent = (fields: EmailEventFields, original: JsonObject): EmailEvent => {
  const { to_emails, to_user_ids } = recipientsAfterLegacy(fields)
  return {
    content: fields.template_prefix !== undefined
      ? { _tag: "Template", templatePrefix: fields.template_prefix }
      : { _tag: "Rendered", subject: fields.subject ?? "", text: fields.text ?? null, html: fields.html ?? null },
    recipients: to_emails !== null ? { _tag: "Emails", emails: to_emails } : { _tag: "UserIds", userIds: to_user_ids ?? [] },
    fromName: fields.from_name ?? null,
    fromAddress: fields.from_address ?? null,
    replyToEmail: fields.reply_to_email ?? null,
    language: fields.language ?? null,
    date: fields.date ?? null,
    context: fields.context ?? {},
    realmId: fields.realm_id ?? null,
    failedTries: fields.failed_tries ?? 0,
    messageId: fields.message_id ?? null,
    removeSuppressedDestination: fields.remove_suppressed_destination ?? false,
    original
  }
}

const decodeFields = Schema.decodeUnknownEffect(EmailEventWire, { onExcessProperty: "error", errors: "all" })

/** Each problem with its path, from the structured issue: an excess key reads as "unknown key". */
const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => issue._tag === "UnexpectedKey" ? "unknown key" : SchemaIssue.defaultLeafHook(issue)
})

/** A path as written in a reason: `from_name`, `context.user.name`, `to_emails[1]`. */
const pathText = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }>): string =>
  path.map((segment) => typeof segment === "object" ? segment.key : segment).reduce<string>(
    (text, key, index) =>
      typeof key === "number" ? `${text}[${key}]` : index === 0 ? String(key) : `${text}.${String(key)}`,
    ""
  )

/** `from_name: Expected string; zz: unknown key`, naming the first problem's top-level field. */
const describeIssues = (issue: SchemaIssue.Issue): { readonly message: string; readonly field: string | null } => {
  const problems = formatIssue(issue).issues
  const first = problems[0]?.path?.[0]
  const firstKey = typeof first === "object" ? first.key : first
  return {
    message: `invalid email event: ${
      problems.map(({ message, path }) => path === undefined || path.length === 0 ? message : `${pathText(path)}: ${message}`)
        .join("; ")
    }`,
    field: typeof firstKey === "string" ? firstKey : null
  }
}

export const isJsonObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Decode an already-parsed JSON value into an `EmailEvent`, or fail with an `InvalidEvent` naming the field. */
export const decodeEmailEvent = (input: unknown): Effect.Effect<EmailEvent, InvalidEvent> =>
  isJsonObject(input)
    ? decodeFields(input).pipe(
      Effect.map((fields) => toEmailEvent(fields, input)),
      Effect.mapError((error) => new InvalidEvent(describeIssues(error.issue)))
    )
    : Effect.fail(
      new InvalidEvent({
        message: `invalid email event: expected a JSON object, got ${input === null ? "null" : Array.isArray(input) ? "an array" : typeof input}`,
        field: null
      })
    )

/** Parse a queue message body (JSON text) into a JSON value. */
export const parseJsonBody = (body: string): Effect.Effect<unknown, InvalidEvent> =>
  Effect.try({
    try: () => JSON.parse(body) as unknown,
    catch: (error) =>
      new InvalidEvent({ message: `invalid email event: body is not JSON (${(error as Error).message})`, field: null })
  })

/** The event as it goes back on the queue for another try: the original JSON with `failed_tries` set. */
export const withFailedTries = (event: EmailEvent, failedTries: number): JsonObject => ({
  ...event.original,
  failed_tries: failedTries
})

/** The template's short name used in log lines (Zulip logs the last `/` segment). */
export const templateName = (event: EmailEvent): string =>
  event.content._tag === "Template" ? event.content.templatePrefix.split("/").at(-1)! : "(pre-rendered)"
