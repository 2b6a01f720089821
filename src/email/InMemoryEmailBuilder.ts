/**
 * A minimal email builder for tests and embedding apps: pre-rendered content as given, templates looked up in a
 * map (no rendering engine; the live builder is `ZulipEmailBuilder`). Headers are reduced to what a test needs.
 */
import { Clock, DateTime, Effect, Layer } from "effect"
import { templateName } from "../domain/EmailEvent.ts"
import { InvalidEvent, TemplateError } from "../domain/errors.ts"
import { messageIdFor } from "../domain/MessageId.ts"
import { EmailBuilder } from "./EmailBuilder.ts"

export interface InMemoryTemplate {
  readonly subject: string
  readonly text: string
  readonly html?: string
}

const NOREPLY = "noreply@example.test"

export const layer = (templates: Readonly<Record<string, InMemoryTemplate>> = {}): Layer.Layer<EmailBuilder> =>
  Layer.succeed(
    EmailBuilder,
    EmailBuilder.of({
      build: ({ event, realm, users }) =>
        Effect.gen(function*() {
          const content = event.content._tag === "Rendered"
            ? { subject: event.content.subject, text: event.content.text ?? "", html: event.content.html }
            : templates[event.content.templatePrefix]
          if (content === undefined) {
            const template = event.content._tag === "Template" ? event.content.templatePrefix : ""
            return yield* new TemplateError({ message: `template ${template} does not exist`, template, file: null, line: null })
          }
          const to = event.recipients._tag === "Emails" ? event.recipients.emails : users.map((user) => user.deliveryEmail)
          if (to.some((address) => !address.includes("@"))) {
            return yield* new InvalidEvent({ message: `invalid recipient address in ${to.join(", ")}`, field: "to_emails" })
          }
          const now = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
          return {
            messageId: messageIdFor(event, "example.test"),
            envelope: { from: NOREPLY, to },
            from: `${event.fromName ?? "Zulip"} <${NOREPLY}>`,
            to,
            replyTo: [],
            subject: content.subject,
            text: content.text,
            html: content.html ?? null,
            date: event.date ?? DateTime.formatIso(now),
            headers: [["X-Auto-Response-Suppress", "All"]],
            template: templateName(event),
            realm: realm?.stringId ?? null
          }
        })
    })
  )
