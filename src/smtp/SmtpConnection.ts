import { Context, type Effect } from "effect"
import type { DnsError, NotDelivered, Rejected, TimeoutError, Unavailable } from "../domain/errors.ts"
import type { DeliveryReport, OutgoingEmail } from "../domain/OutgoingEmail.ts"

/**
 * Delivers built messages to the SMTP server (or, in development, to a capture directory).
 *
 * `send` fails with `Unavailable` when the server as a whole cannot be reached or refuses login: that is an outage,
 * not this message's problem, and the pipeline waits instead of spending the event's attempts.
 */
export class SmtpConnection extends Context.Service<SmtpConnection, {
  readonly send: (
    message: OutgoingEmail
  ) => Effect.Effect<DeliveryReport, DnsError | TimeoutError | NotDelivered | Rejected | Unavailable>
  /** open a connection if needed and check it answers NOOP with 250 (Zulip's health check) */
  readonly healthCheck: Effect.Effect<void, DnsError | Unavailable>
  /** QUIT every open connection */
  readonly close: Effect.Effect<void>
}>()("email-senders/SmtpConnection") {}
