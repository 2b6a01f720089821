import { Effect, Option, Record } from "effect"
import { Command, Flag } from "effect/cli"
import { decodeEmailEvent, isJsonObject, type JsonObject } from "../domain/EmailEvent.ts"
import * as RabbitMqPublisher from "../queue/RabbitMqPublisher.ts"
import { QueuePublisher } from "../queue/QueuePublisher.ts"
import { withEnvironment } from "./environmentHelp.ts"
import { eventFileFlag, readEventJson } from "./eventInput.ts"

const text = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)

/** The event's keys that can be given as flags; each flag sets the key of the same meaning. */
const eventFlags = {
  template: text("template", "template_prefix, e.g. zerver/emails/password_reset"),
  to: Flag.String("to").pipe(Flag.withDescription("a recipient address (to_emails; repeat for several)"), Flag.atLeast(0)),
  toUserId: Flag.Int("to-user-id").pipe(Flag.withDescription("a recipient user id (to_user_ids; repeat)"), Flag.atLeast(0)),
  fromName: text("from-name", "from_name"),
  fromAddress: text("from-address", "from_address: an address or NO_REPLY, TOKENIZED_NO_REPLY, SUPPORT"),
  replyTo: text("reply-to", "reply_to_email"),
  language: text("language", "language, e.g. de"),
  realmId: Flag.Int("realm-id").pipe(Flag.withDescription("realm_id"), Flag.optional),
  context: Flag.KeyValuePair("context").pipe(Flag.withDescription("a template context entry key=value (repeat)"), Flag.optional),
  subject: text("subject", "pre-rendered subject (instead of --template)"),
  textBody: text("text", "pre-rendered text body"),
  html: text("html", "pre-rendered HTML body")
}

type EventFlags = { readonly [K in keyof typeof eventFlags]: (typeof eventFlags)[K] extends Flag.Flag<infer A> ? A : never }

/** The keys the flags set; unset flags set nothing. */
const eventFromFlags = (flags: EventFlags): JsonObject => {
  const optional: Record<string, Option.Option<unknown>> = {
    template_prefix: flags.template,
    from_name: flags.fromName,
    from_address: flags.fromAddress,
    reply_to_email: flags.replyTo,
    language: flags.language,
    realm_id: flags.realmId,
    context: flags.context,
    subject: flags.subject,
    text: flags.textBody,
    html: flags.html
  }
  return {
    ...Record.getSomes(optional),
    ...(flags.to.length > 0 ? { to_emails: flags.to } : {}),
    ...(flags.toUserId.length > 0 ? { to_user_ids: flags.toUserId } : {})
  }
}

/**
 * Enqueue one event, validated with the worker's own schema first: an invalid event is refused with the reason,
 * never published. The event comes from flags, or a JSON file / standard input (flags then override its keys).
 */
export const publishCommand = Command.make("publish", { file: eventFileFlag, ...eventFlags }, ({ file, ...flags }) =>
  Effect.gen(function*() {
    const fromFlags = eventFromFlags(flags)
    const given = Option.isNone(file) && Object.keys(fromFlags).length > 0 ? {} : yield* readEventJson(file)
    const event = isJsonObject(given) ? { ...given, ...fromFlags } : given
    yield* decodeEmailEvent(event)
    yield* (yield* QueuePublisher).publishEmail(event as JsonObject)
    yield* Effect.logInfo("event published")
  }).pipe(Effect.provide(RabbitMqPublisher.layerConfig()))).pipe(
    withEnvironment("Validate one email_senders event and enqueue it with a publisher confirm", "publish")
  )
