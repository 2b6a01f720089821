import { Context, type Effect } from "effect"
import type { StoreError } from "../domain/errors.ts"
import type { BodyDigest } from "../domain/recordedBody.ts"

/** Why an event will not be delivered. */
export interface FailureReason {
  /** the error tag, e.g. `Rejected`, `InvalidEvent` */
  readonly tag: string
  readonly message: string
  /** send attempts made (0 when the event never reached SMTP) */
  readonly attempts: number
  readonly smtpCode: number | null
  /** set by the store when the record keeps only part of the body, or none of it: what the whole body was */
  readonly body?: BodyDigest | undefined
}

export interface FailureRecord {
  /** the original event JSON, or the raw body text when it was not a JSON object */
  readonly event: unknown
  readonly reason: FailureReason
  /**
   * the queue message body the event came from, when there is one: what a record too big (over `MAX_EVENT_BYTES`)
   * or impossible to serialise keeps instead of `event`, cut to fit
   */
  readonly body?: string | undefined
}

/** Keeps every event that will not be delivered, with its reason, so an operator can inspect and replay it. */
export class FailureStore extends Context.Service<FailureStore, {
  readonly record: (failure: FailureRecord) => Effect.Effect<void, StoreError>
}>()("email-senders/FailureStore") {}
