/**
 * `render`: Zulip's dry run. Builds one event's email exactly as the worker would (the live builder, realms and
 * users from the environment) and prints its headers, envelope and both bodies; nothing is sent or enqueued.
 */
import { Console, Effect, Layer, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { decodeEmailEvent, type JsonObject } from "../domain/EmailEvent.ts"
import type { OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { realmsLayerConfig } from "../app.ts"
import * as ZulipEmailBuilder from "../email/ZulipEmailBuilder.ts"
import { buildEmail } from "../pipeline/deliverEvent.ts"
import { withEnvironment } from "./environmentHelp.ts"
import { eventFileFlag, readEventJson } from "./eventInput.ts"

/** Preview the email for other recipients or another realm than the event names. */
export interface RenderOverrides {
  /** when not empty, the email goes to these users (`to_user_ids`) instead of the event's recipients */
  readonly userIds: ReadonlyArray<number>
  /** the event's `realm_id` replaced by this one */
  readonly realmId: Option.Option<number>
}

const recipientKeys: ReadonlySet<string> = new Set(["to_emails", "to_email", "to_user_ids", "to_user_id"])

const withOverrides = (json: unknown, overrides: RenderOverrides): unknown => {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return json
  const entries = Object.entries(json as JsonObject)
  return {
    ...Object.fromEntries(overrides.userIds.length > 0 ? entries.filter(([key]) => !recipientKeys.has(key)) : entries),
    ...(overrides.userIds.length > 0 ? { to_user_ids: overrides.userIds } : {}),
    ...Option.match(overrides.realmId, { onNone: () => ({}), onSome: (realmId) => ({ realm_id: realmId }) })
  }
}

/** The email as a person reads it: headers in the order they are sent, the SMTP envelope, then each part. */
export const formatEmail = (email: OutgoingEmail): string => {
  const headers: ReadonlyArray<readonly [string, string]> = [
    ["From", email.from],
    ...(email.replyTo.length > 0 ? [["Reply-To", email.replyTo.join(", ")] as const] : []),
    ["To", email.to.join(", ")],
    ["Subject", email.subject],
    ["Message-ID", email.messageId],
    ["Date", email.date],
    ...email.headers
  ]
  return [
    ...headers.map(([name, value]) => `${name}: ${value}`),
    "",
    `Envelope: MAIL FROM:<${email.envelope.from}> RCPT TO:${email.envelope.to.map((to) => `<${to}>`).join(",")}`,
    "",
    "----- text/plain -----",
    email.text,
    "----- text/html -----",
    email.html ?? "(none)"
  ].join("\n")
}

/** Decode and build one event (a parsed JSON value); fails as the worker would, naming the problem. */
export const renderEvent = Effect.fn("renderEvent")(function*(json: unknown, overrides: RenderOverrides) {
  const event = yield* decodeEmailEvent(withOverrides(json, overrides))
  return formatEmail(yield* buildEmail(event))
})

export const renderCommand = Command.make("render", {
  file: eventFileFlag,
  userIds: Flag.Int("user-id").pipe(
    Flag.withDescription("render for this user instead of the event's recipients (repeat for several)"),
    Flag.atLeast(0)
  ),
  realmId: Flag.Int("realm-id").pipe(Flag.withDescription("render in this realm instead of the event's"), Flag.optional)
}, ({ file, realmId, userIds }) =>
  Effect.gen(function*() {
    const json = yield* readEventJson(file)
    const email = yield* renderEvent(json, { userIds, realmId }).pipe(
      Effect.provide(Layer.mergeAll(ZulipEmailBuilder.layerConfig, realmsLayerConfig))
    )
    yield* Console.log(email)
  })).pipe(
    withEnvironment("Print the email one event makes (headers, envelope, text and HTML) without sending it", "render")
  )
