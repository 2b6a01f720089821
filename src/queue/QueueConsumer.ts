import { Context, type Duration, type Effect } from "effect"
import type { JsonObject } from "../domain/EmailEvent.ts"
import type { QueueError } from "../domain/errors.ts"

/** One message taken from the queue; it stays unacknowledged (and so safe) until one of its settle effects runs. */
export interface Delivery {
  /** the message body as sent by the producer (JSON text when it is well formed) */
  readonly body: string
  /** the broker has delivered it before (a crash or a lost connection interrupted an earlier attempt) */
  readonly redelivered: boolean
  /**
   * set when the broker gave up on the message (a quorum queue's delivery limit) and dead-lettered it: why. Such a
   * delivery is recorded as failed, never sent: it may be what crashed the worker.
   */
  readonly deadLettered?: string
  /** done with it: delivered, or recorded as failed */
  readonly ack: Effect.Effect<void, QueueError>
  /**
   * Put `event` (the original event with its new `failed_tries`) back on the queue to be consumed again after
   * `delay`, then acknowledge this delivery. The republish is confirmed before the ack, so a crash in between
   * can duplicate the event but never lose it.
   */
  readonly requeue: (event: JsonObject, delay: Duration.Duration) => Effect.Effect<void, QueueError>
  /** hand it back to the broker unchanged, for redelivery (used when it cannot be settled now) */
  readonly release: Effect.Effect<void, QueueError>
}

/** Deliveries from the `email_senders` queue. */
export class QueueConsumer extends Context.Service<QueueConsumer, {
  /**
   * The next delivery, waiting while there is none. Each delivery is handed out once; several fibers may take at
   * the same time (the worker runs `CONCURRENCY` of them).
   */
  readonly take: Effect.Effect<Delivery, QueueError>
  /** deliveries received from the broker and not yet taken (Zulip's `local_queue_size`) */
  readonly buffered: Effect.Effect<number>
}>()("email-senders/QueueConsumer") {}
