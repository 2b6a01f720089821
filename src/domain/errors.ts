/**
 * The one error vocabulary of the pipeline. Every failure an event can meet is one of these tags, so the
 * consume program can decide by tag alone whether to retry, requeue or record it.
 */
import { Schema } from "effect"

// ---- transient: retried by the send schedule, then requeued ------------------------------------------------------

/** The SMTP host (or another name the send needs) could not be resolved. */
export class DnsError extends Schema.TaggedError<DnsError>()("DnsError", {
  message: Schema.String,
  host: Schema.String,
  code: Schema.String
}) {}

/**
 * A step took too long: a socket read during a transaction, or the whole attempt (`MAX_CONSUME_SECONDS`). A timeout
 * while opening a connection is an outage (`Unavailable`).
 * Effect's own `Cause.TimeoutError` shares this tag; it is always mapped into this class (see `pipeline/retryPolicy.ts`)
 * so exactly one `TimeoutError` type flows through the pipeline.
 */
export class TimeoutError extends Schema.TaggedError<TimeoutError>()("TimeoutError", {
  message: Schema.String,
  stage: Schema.Literals(["socket", "attempt"]),
  timeoutMillis: Schema.Number
}) {}

/** The server did not take the message this time: a 4xx reply, a dropped connection, or no recipient accepted. */
export class NotDelivered extends Schema.TaggedError<NotDelivered>()("NotDelivered", {
  message: Schema.String,
  smtpCode: Schema.NullOr(Schema.Int),
  response: Schema.NullOr(Schema.String)
}) {}

// ---- permanent: recorded in the FailureStore at once ---------------------------------------------------------------

/** The server refused the message for good (5xx). */
export class Rejected extends Schema.TaggedError<Rejected>()("Rejected", {
  message: Schema.String,
  smtpCode: Schema.Int,
  response: Schema.String,
  recipients: Schema.Array(Schema.String)
}) {}

/** The event is not a valid `email_senders` event; `field` names the offending key when there is one. */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>()("InvalidEvent", {
  message: Schema.String,
  field: Schema.NullOr(Schema.String)
}) {}

export class RealmNotFound extends Schema.TaggedError<RealmNotFound>()("RealmNotFound", {
  message: Schema.String,
  realmId: Schema.Int
}) {}

export class UserNotFound extends Schema.TaggedError<UserNotFound>()("UserNotFound", {
  message: Schema.String,
  userIds: Schema.Array(Schema.Int)
}) {}

/** A template is missing or does not render; `file` and `line` point at the problem when known. */
export class TemplateError extends Schema.TaggedError<TemplateError>()("TemplateError", {
  message: Schema.String,
  template: Schema.String,
  file: Schema.NullOr(Schema.String),
  line: Schema.NullOr(Schema.Int)
}) {}

// ---- outages: not the event's fault; the event waits instead of spending attempts -------------------------------

/**
 * A dependency as a whole is down (SMTP server unreachable or refusing login, database down, Redis down with `REDIS_OUTAGE=stop`). The pipeline waits
 * and tries again with backoff without counting an attempt, so an outage never turns into failed events.
 */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  message: Schema.String,
  dependency: Schema.Literals(["smtp", "database", "redis"]),
  /**
   * Set when the dependency refuses this configuration (a login refused): the setting to fix and its answer. Such a
   * refusal is logged at ERROR once where it is met (`operations/refusals.ts`), so the waits on it log at DEBUG.
   */
  refusal: Schema.optionalKey(Schema.Struct({ setting: Schema.String, reason: Schema.String }))
}) {}

// ---- infrastructure around the pipeline -----------------------------------------------------------------------------

/** A broker operation (ack, publish, consume) failed. */
export class QueueError extends Schema.TaggedError<QueueError>()("QueueError", {
  message: Schema.String,
  operation: Schema.String
}) {}

/** Writing the stats file or the failure record failed. */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  message: Schema.String,
  path: Schema.String
}) {}

export type TransientError = DnsError | TimeoutError | NotDelivered
export type PermanentError = Rejected | InvalidEvent | RealmNotFound | UserNotFound | TemplateError
/** Exactly what `sendEmail` can fail with. */
export type SendEmailError = TransientError | PermanentError

const transientTags: ReadonlySet<string> = new Set(["DnsError", "TimeoutError", "NotDelivered"])

export const isTransient = (error: { readonly _tag: string }): error is TransientError => transientTags.has(error._tag)

/** The SMTP reply code an error carries, if any (for failure records and metrics). */
export const smtpCodeOf = (error: SendEmailError | Unavailable): number | null =>
  error._tag === "Rejected" || error._tag === "NotDelivered" ? error.smtpCode : null
