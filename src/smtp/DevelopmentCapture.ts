/**
 * Live `SmtpConnection` for development (used when `EMAIL_HOST` is unset, like Zulip's `EmailLogBackEnd`): every
 * email is written to `EMAIL_LOG_DIR` instead of being sent, as `<time>-<id>.eml` (the full RFC 822 message, the
 * same bytes the SMTP pool would stream) plus a `<time>-<id>.json` summary. Files are private to the user (0600).
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Array as Arr, Config, Context, DateTime, Effect, FileSystem, Layer, Option, Schema } from "effect"
import { join, resolve } from "node:path"
import { Unavailable } from "../domain/errors.ts"
import type { OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { SmtpConnection } from "./SmtpConnection.ts"
import { SmtpStatus } from "./SmtpStatus.ts"
import { messageBytes } from "./nodemailerMessage.ts"
import { EmailLogDirectorySetting } from "../config/settingValues.ts"

export interface DevelopmentCaptureOptions {
  /** created if missing */
  readonly directory: string
}

/** The `.json` summary written next to each captured message. */
export const CapturedEmail = Schema.Struct({
  /** ISO 8601 capture time */
  time: Schema.String,
  messageId: Schema.String,
  from: Schema.String,
  to: Schema.Array(Schema.String),
  subject: Schema.String,
  template: Schema.String,
  realm: Schema.NullOr(Schema.String),
  /** file names inside the capture directory */
  emlFile: Schema.String,
  summaryFile: Schema.String
})
export type CapturedEmail = typeof CapturedEmail.Type

const CapturedEmailJson = Schema.fromJsonString(CapturedEmail)

/** Only characters that are safe in a file name: no path separators, so an id cannot leave the directory. */
const fileSafe = (text: string): string => text.replace(/[^A-Za-z0-9.@_-]+/g, "_")

const make = Effect.fnUntraced(function*(options: DevelopmentCaptureOptions) {
  const fs = yield* FileSystem.FileSystem
  const directory = options.directory
  const startedAt = yield* DateTime.now

  const send = Effect.fn("DevelopmentCapture.send")(function*(email: OutgoingEmail) {
    const time = DateTime.formatIso(yield* DateTime.now)
    const base = `${fileSafe(time)}-${fileSafe(email.messageId.replace(/^<|>$/g, ""))}`
    const summary: CapturedEmail = {
      time,
      messageId: email.messageId,
      from: email.from,
      to: email.to,
      subject: email.subject,
      template: email.template,
      realm: email.realm,
      emlFile: `${base}.eml`,
      summaryFile: `${base}.json`
    }
    const message = yield* messageBytes(email)
    yield* fs.makeDirectory(directory, { recursive: true, mode: 0o700 })
    yield* fs.writeFile(join(directory, summary.emlFile), message, { mode: 0o600 })
    yield* fs.writeFileString(
      join(directory, summary.summaryFile),
      yield* Schema.encodeEffect(CapturedEmailJson)(summary),
      { mode: 0o600 }
    )
    yield* Effect.logInfo("Captured email instead of sending it").pipe(
      Effect.annotateLogs({ file: summary.emlFile, template: email.template })
    )
    return { accepted: email.envelope.to, rejected: [], response: `250 captured as ${summary.emlFile}` }
  }, Effect.mapError((error) =>
    new Unavailable({ message: `Cannot capture email in ${directory}: ${error.message}`, dependency: "smtp" })
  ))

  // no server to lose: healthy from the start
  const lastCheck = { ok: true, at: startedAt.epochMilliseconds }
  const snapshot = Effect.succeed({ capacity: 1, open: 0, busy: 0, waiting: 0, lastCheck })
  return Context.make(SmtpConnection, SmtpConnection.of({ send, healthCheck: Effect.void, close: Effect.void })).pipe(
    Context.add(SmtpStatus, SmtpStatus.of({ snapshot }))
  )
})

export const layer = (options: DevelopmentCaptureOptions): Layer.Layer<SmtpConnection | SmtpStatus> =>
  Layer.effectContext(make(options)).pipe(Layer.provide(NodeFileSystem.layer))

/** `EMAIL_LOG_DIR`, default `var/emails` under the working directory. */
export const layerConfig: Layer.Layer<SmtpConnection | SmtpStatus, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function*() {
    const directory = resolve(yield* EmailLogDirectorySetting)
    // a production install that forgot EMAIL_HOST must not look healthy while it sends nothing
    yield* Effect.logWarning(`EMAIL_HOST is not set: emails are captured to ${directory} and NOT sent`)
    return layer({ directory })
  })
)

/** The captured emails' summaries, newest first; a summary that does not read or decode is skipped with a warning. */
export const listCapturedEmails = Effect.fn("DevelopmentCapture.list")(function*(directory: string) {
  const fs = yield* FileSystem.FileSystem
  if (!(yield* fs.exists(directory))) return []
  const summaryFiles = (yield* fs.readDirectory(directory)).filter((name) => name.endsWith(".json")).sort().reverse()
  const summaries = yield* Effect.forEach(summaryFiles, (name) =>
    fs.readFileString(join(directory, name)).pipe(
      Effect.flatMap(Schema.decodeUnknownEffect(CapturedEmailJson)),
      Effect.map(Option.some),
      Effect.catch((error) =>
        Effect.logWarning("Skipping an unreadable captured email summary").pipe(
          Effect.annotateLogs({ file: name, reason: error.message }),
          Effect.as(Option.none<CapturedEmail>())
        )
      )
    ))
  return Arr.getSomes(summaries)
})
