import { Context } from "effect"

/** What an attempt is doing, as a deadline that cuts it says. */
export type AttemptStage =
  | "building the email"
  | "waiting for the rate limit"
  | "getting the connection ready"
  | "SMTP transaction"

/**
 * The deadline of the delivery attempt under way (`MAX_CONSUME_SECONDS`), as the steps of a send report to it. Its
 * methods are plain calls: the pool reports every send, and an effect per report would cost more than the report.
 * Outside an attempt (a health check, a test of the pool alone) it is a deadline that ignores them.
 */
export interface AttemptDeadlineShape {
  /** the attempt is now in `stage`: a deadline that fires names it */
  readonly enter: (stage: AttemptStage) => void
  /** stop counting time until `resume`, e.g. while waiting in the pool for a connection (others hold them, or it is being opened) */
  readonly pause: () => void
  readonly resume: () => void
  /**
   * from now on it does not cut the attempt: part of the message is with the server, and cutting the attempt would
   * send that part again. What is left is bounded by the SMTP timeouts of each step.
   */
  readonly stop: () => void
}

const ignored = (): void => {}

export const AttemptDeadline = Context.Reference<AttemptDeadlineShape>("email-senders/AttemptDeadline", {
  defaultValue: () => ({ enter: ignored, pause: ignored, resume: ignored, stop: ignored })
})
