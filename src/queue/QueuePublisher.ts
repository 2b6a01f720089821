import { Context, type Effect } from "effect"
import type { JsonObject } from "../domain/EmailEvent.ts"
import type { QueueError } from "../domain/errors.ts"

/** Enqueues `email_senders` events, persistent and confirmed by the broker, the way Zulip's producers publish. */
export class QueuePublisher extends Context.Service<QueuePublisher, {
  /** publish one event; succeeds only once the broker has confirmed it */
  readonly publishEmail: (event: JsonObject) => Effect.Effect<void, QueueError>
}>()("email-senders/QueuePublisher") {}
