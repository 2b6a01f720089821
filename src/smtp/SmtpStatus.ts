import { Context, type Effect } from "effect"
import type { Refusal } from "../operations/refusals.ts"

/** A point-in-time view of the SMTP connections, for metrics and readiness checks. */
export interface SmtpStatusSnapshot {
  /** how many connections may be open at once (`SMTP_CONNECTIONS`) */
  readonly capacity: number
  /** connections currently open */
  readonly open: number
  /** connections lent out to a send or a health check right now */
  readonly busy: number
  /** sends waiting for a connection: all are busy, or the one they need is being opened */
  readonly waiting: number
  /** outcome of the latest connection opening or NOOP (epoch milliseconds); null before the first one */
  readonly lastCheck: { readonly ok: boolean; readonly at: number } | null
  /** while the server refuses this configuration (the login): what to fix */
  readonly refusal?: Refusal
}

/** Provided by every `SmtpConnection` layer alongside it. */
export class SmtpStatus extends Context.Service<SmtpStatus, {
  readonly snapshot: Effect.Effect<SmtpStatusSnapshot>
}>()("email-senders/SmtpStatus") {}
