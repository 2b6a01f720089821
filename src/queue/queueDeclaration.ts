/**
 * How the worker declares its queues (`QUEUE_TYPE`): a classic queue exactly as Zulip does, or a quorum queue with
 * its delivery limit and dead-letter queue; and what type an existing queue has, as the broker's refusals tell.
 */
import type { ChannelModel } from "amqplib"
import { Effect } from "effect"
import { QueueError } from "../domain/errors.ts"
import { isPreconditionFailed, messageOf, queueTypeMismatch, withScratchChannel } from "./amqpOperations.ts"

/** `QUEUE_TYPE`: `classic` is Zulip's declaration (durable, no arguments); `quorum` is replicated over the cluster. */
export type QueueType = "classic" | "quorum"

export interface QueueDeclaration {
  readonly type: QueueType
  /** `x-delivery-limit` of a quorum queue: handed back this often unsettled, a message goes to `<queue>.dead` */
  readonly deliveryLimit: number
}

/** Zulip's declaration. */
export const classicQueue: QueueDeclaration = { type: "classic", deliveryLimit: 20 }

/** Where a quorum queue dead-letters a message past its delivery limit; the worker records what arrives there. */
export const deadLetterQueueName = (queue: string): string => `${queue}.dead`

/**
 * The arguments every quorum queue of the worker has: a dead-lettered message stays in its queue until the target
 * queue confirms it (`at-least-once`, which the broker applies only with `x-overflow=reject-publish`), so neither
 * an expiring requeue (delay queue → main queue) nor a poison message (main queue → `<queue>.dead`) can be lost.
 */
export const quorumArguments = {
  "x-queue-type": "quorum",
  "x-dead-letter-strategy": "at-least-once",
  "x-overflow": "reject-publish"
} as const

const queueArguments = (queue: string, declaration: QueueDeclaration): Record<string, unknown> =>
  declaration.type === "classic" ? {} : {
    ...quorumArguments,
    "x-delivery-limit": declaration.deliveryLimit,
    "x-dead-letter-exchange": "",
    "x-dead-letter-routing-key": deadLetterQueueName(queue)
  }

/** The type an existing queue has, when the broker's refusal of a declaration names it. */
const typeInRefusal = (message: string): string | undefined =>
  /'x-queue-type'.*current is (?:the value )?'([a-z]+)'/.exec(message)?.[1]

/**
 * The type of an existing queue, as far as declarations tell: the broker compares the arguments in a fixed order
 * and names the first that differs, and compares `x-queue-type` after the dead-letter and overflow arguments and
 * before the delivery limit. So, in turn: Zulip's declaration (accepted: classic); a quorum queue's arguments typed
 * `classic` (refused naming `x-queue-type` for a quorum queue of this worker, whatever its limit); the type alone.
 */
export const existingQueueType = Effect.fnUntraced(function*(connection: ChannelModel, queue: string) {
  const probes: ReadonlyArray<Record<string, unknown>> = [
    {},
    { ...queueArguments(queue, { type: "quorum", deliveryLimit: 1 }), "x-queue-type": "classic" },
    { "x-queue-type": "classic" }
  ]
  for (const probe of probes) {
    const refused = yield* declareDurable(connection, queue, probe)
    if (refused === undefined) return "classic"
    const type = typeInRefusal(refused)
    if (type !== undefined) return type
  }
  return undefined
})

/** Declare a durable queue; gives the broker's refusal (406: it exists with other arguments), if so. */
const declareDurable = (connection: ChannelModel, queue: string, args: Record<string, unknown>) =>
  withScratchChannel(connection, `declare queue ${queue}`, (channel) =>
    channel.assertQueue(queue, { durable: true, arguments: args }).then(
      (): string | undefined => undefined,
      (error: unknown) => {
        if (isPreconditionFailed(error)) return messageOf(error)
        throw error
      }
    ))

/**
 * Declare `queue` as `declaration` says: as a classic queue exactly as Zulip does (durable, no arguments), since
 * Zulip's producers redeclare it on every connect; as a quorum queue with its dead-letter queue. A queue that
 * exists with the other type fails with a `queueTypeMismatch` error naming `QUEUE_TYPE`; one that exists with other
 * arguments (a policy's, another delivery limit) is used as it is.
 */
export const declareQueue = Effect.fnUntraced(function*(
  connection: ChannelModel,
  queue: string,
  declaration: QueueDeclaration
) {
  if (declaration.type === "quorum") {
    yield* declareDurable(connection, deadLetterQueueName(queue), quorumArguments).pipe(
      Effect.flatMap((refused) => refused === undefined ? Effect.void : Effect.logWarning(`queue ${deadLetterQueueName(queue)}: ${refused}; using it as it is`))
    )
  }
  const refused = yield* declareDurable(connection, queue, queueArguments(queue, declaration))
  if (refused === undefined) return
  const existing = typeInRefusal(refused) ?? (yield* existingQueueType(connection, queue))
  if (existing !== undefined && existing !== declaration.type) {
    return yield* new QueueError({
      operation: queueTypeMismatch,
      message: `queue ${queue} exists as a ${existing} queue, but QUEUE_TYPE=${declaration.type}: a queue's type cannot be ` +
        `changed; set QUEUE_TYPE=${existing}, or move to a new ${declaration.type} queue (README, "Moving from a classic to a quorum queue")`
    })
  }
  yield* Effect.logWarning(`queue ${queue} exists with other arguments; using it as it is`).pipe(
    Effect.annotateLogs({ refusal: refused })
  )
  yield* withScratchChannel(connection, `check queue ${queue}`, (channel) => channel.checkQueue(queue))
})
