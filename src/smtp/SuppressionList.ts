import { Context, type Effect } from "effect"

/**
 * The sending provider's suppression list: addresses it no longer delivers to after a bounce or a complaint. An event
 * with `remove_suppressed_destination` takes its recipients off the list before its email is sent (Zulip's
 * `maybe_remove_from_suppression_list`), for an email the recipient has just asked for.
 *
 * `remove` never fails and is bounded in time: the provider being slow or refusing must never hold up or fail the
 * email, so its errors are logged and otherwise ignored.
 */
export class SuppressionList extends Context.Service<SuppressionList, {
  readonly remove: (addresses: ReadonlyArray<string>) => Effect.Effect<void>
}>()("email-senders/SuppressionList") {}
