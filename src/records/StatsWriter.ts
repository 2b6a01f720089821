import { Context, type Effect } from "effect"
import type { StoreError } from "../domain/errors.ts"

/** Zulip's queue stats (§2.7 of the Zulip reference); keys and order as Zulip writes them. */
export interface QueueStats {
  /** epoch seconds of this write */
  readonly update_time: number
  /** seconds per event over the recent batches, or null before the first batch */
  readonly recent_average_consume_time: number | null
  readonly queue_last_emptied_timestamp: number
  readonly consumed_since_last_emptied: number
}

/** Persists the stats so monitoring (Zulip's `check_rabbitmq_queue`) can read them. */
export class StatsWriter extends Context.Service<StatsWriter, {
  readonly write: (stats: QueueStats) => Effect.Effect<void, StoreError>
}>()("email-senders/StatsWriter") {}
