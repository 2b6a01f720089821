/**
 * One amqplib operation at a time, as Effects: a promise mapped to a `QueueError` naming it, closing and cancelling
 * that never fail, a scratch channel for a declaration the broker may refuse, and a publish confirmed by the broker
 * (again on the next session when the confirm never came).
 */
import type { Channel, ChannelModel, ConfirmChannel } from "amqplib"
import { Effect, Schedule } from "effect"
import { QueueError } from "../domain/errors.ts"

export const messageOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

/** Run an amqplib promise, mapping its failure to a `QueueError` naming the operation. */
export const tryAmqp = <A>(operation: string, run: () => Promise<A>): Effect.Effect<A, QueueError> =>
  Effect.tryPromise({
    try: run,
    catch: (error) => new QueueError({ message: `${operation}: ${messageOf(error)}`, operation })
  })

/** Close or cancel without failing: the peer may be gone already, and a hung network must not stall shutdown. */
const quietly = (operation: string, run: () => Promise<unknown>): Effect.Effect<void> =>
  tryAmqp(operation, run).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)

export const cancelQuietly = (channel: Channel, consumerTag: string): Effect.Effect<void> =>
  quietly("cancel consumer", () => channel.cancel(consumerTag))

export const closeQuietly = (closable: Channel | ChannelModel): Effect.Effect<void> => quietly("close", () => closable.close())

export const isPreconditionFailed = (error: unknown): boolean =>
  typeof error === "object" && error !== null && (error as { readonly code?: unknown }).code === 406

/**
 * Use a channel of its own for `use`, so a refused declaration (the broker closes the channel on it) harms none of
 * the session's channels.
 */
export const withScratchChannel = <A>(
  connection: ChannelModel,
  operation: string,
  use: (channel: Channel) => Promise<A>
): Effect.Effect<A, QueueError> =>
  Effect.acquireUseRelease(
    tryAmqp("open channel", () =>
      connection.createChannel().then((channel) => {
        // the refusal arrives as an 'error' event too; without a listener amqplib would throw it
        channel.on("error", () => {})
        return channel
      })),
    (channel) => tryAmqp(operation, () => use(channel)),
    closeQuietly
  )

/** The operation of the `QueueError` that says a queue exists with another type: retrying cannot mend it. */
export const queueTypeMismatch = "queue type"

export const isFatal = (error: QueueError): boolean => error.operation === queueTypeMismatch

/** Publish a persistent message to `queue` through the default exchange; succeeds once the broker confirmed it. */
export const publishPersistent = (channel: ConfirmChannel, queue: string, body: string): Effect.Effect<void, QueueError> =>
  Effect.callback<void, QueueError>((resume) => {
    const fail = (error: unknown) =>
      resume(
        Effect.fail(new QueueError({ message: `publish to ${queue} not confirmed: ${messageOf(error)}`, operation: "publish" }))
      )
    try {
      channel.sendToQueue(queue, Buffer.from(body), { persistent: true }, (error) => {
        if (error) fail(error)
        else resume(Effect.void)
      })
    } catch (error) {
      // the channel closed before the publish left
      fail(error)
    }
  })

const unconfirmedRetry = Schedule.exponential("100 millis").pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 5 }),
  Schedule.setInputType<QueueError>(),
  Schedule.while(({ input }) => !isFatal(input)),
  Schedule.tap(({ input }) => Effect.logWarning(`${input.message}; publishing again`))
)

/**
 * Publish through the live session, again when the broker did not confirm (the channel or connection went away
 * meanwhile, e.g. its node died): each attempt waits for the session to be rebuilt, on whichever node answers next,
 * so only attempts that reached a channel count.
 */
export const publishReliably = <S>(
  session: Effect.Effect<S, QueueError>,
  publish: (live: S) => Effect.Effect<void, QueueError>
): Effect.Effect<void, QueueError> => session.pipe(Effect.flatMap(publish), Effect.retry(unconfirmedRetry))
