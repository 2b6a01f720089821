import { Context, type Effect } from "effect"
import type { EmailEvent } from "../domain/EmailEvent.ts"
import type { InvalidEvent, TemplateError } from "../domain/errors.ts"
import type { OutgoingEmail } from "../domain/OutgoingEmail.ts"
import type { Realm, User } from "../domain/Realm.ts"

/** Everything needed to build one email: the event with its realm and users resolved. */
export interface BuildRequest {
  readonly event: EmailEvent
  /** the event's realm, or the realm shared by its users, or null */
  readonly realm: Realm | null
  /** the resolved users for `to_user_ids` events; empty for `to_emails` events */
  readonly users: ReadonlyArray<User>
}

/** Renders and assembles the message (templates, headers, addresses); refuses anything unsafe. */
export class EmailBuilder extends Context.Service<EmailBuilder, {
  readonly build: (request: BuildRequest) => Effect.Effect<OutgoingEmail, TemplateError | InvalidEvent>
}>()("email-senders/EmailBuilder") {}
