/**
 * `email-senders move-queue <from>`: move the events waiting in another queue into `QUEUE_NAME` (declared as
 * `QUEUE_TYPE`), for the move from a classic to a quorum queue (README, "Moving from a classic to a quorum queue").
 * Each message is taken off `<from>` only once the broker confirmed its copy in `QUEUE_NAME`: a crash or a lost
 * connection in between leaves it in both (one duplicate), never in neither. The events requeued into
 * `<from>.delay.*` come back to `<from>` when their delay ends; the command waits for them and moves them too.
 */
import type { Channel, ConfirmChannel, GetMessage } from "amqplib"
import { Config, Console, Duration, Effect, Schedule } from "effect"
import { Argument, Command } from "effect/cli"
import { QueueError } from "../domain/errors.ts"
import * as RabbitMq from "../queue/RabbitMqConnection.ts"
import { declarationConfig, delayMillisOf, delayQueueName } from "../queue/RabbitMqConsumer.ts"
import { workerSettingsConfig } from "../config/WorkerSettingsFromEnv.ts"
import { CommandTimeoutSetting } from "../config/settingValues.ts"
import { requeueDelays } from "../pipeline/retryPolicy.ts"
import { withEnvironment } from "./environmentHelp.ts"

interface MoveSession {
  readonly channel: Channel
  readonly confirmChannel: ConfirmChannel
  readonly messageCount: (queue: string) => Effect.Effect<number, QueueError>
}

/** A copy of the message, persistent and with its properties, confirmed by the broker. */
const publishCopy = (channel: ConfirmChannel, queue: string, message: GetMessage): Effect.Effect<void, QueueError> =>
  Effect.callback<void, QueueError>((resume) => {
    const fail = (error: unknown) =>
      resume(Effect.fail(new QueueError({ message: `copy to ${queue} not confirmed: ${String(error)}`, operation: "publish" })))
    try {
      const { contentType, contentEncoding, headers, messageId, timestamp, type } = message.properties
      const properties = Object.fromEntries(
        Object.entries({ contentType, contentEncoding, headers, messageId, timestamp, type }).filter(([, value]) => value !== undefined)
      )
      channel.sendToQueue(queue, message.content, { ...properties, persistent: true }, (error) => {
        if (error) fail(error)
        else resume(Effect.void)
      })
    } catch (error) {
      fail(error)
    }
  })

const settingsConfig = Config.all({
  worker: workerSettingsConfig,
  declaration: declarationConfig,
  commandTimeout: CommandTimeoutSetting
})

export const moveQueueCommand = Command.make("move-queue", {
  from: Argument.String("from").pipe(Argument.withDescription("the queue to empty, e.g. the classic email_senders"))
}, ({ from }) =>
  Effect.gen(function*() {
    const { commandTimeout, declaration, worker } = yield* settingsConfig
    const to = worker.queueName
    if (from === to) return yield* Effect.fail(new QueueError({ message: `${from} is QUEUE_NAME itself: set QUEUE_NAME to the queue to fill`, operation: "move" }))
    const connection = yield* RabbitMq.RabbitMqConnection
    const session = yield* connection.keepSession(`move from ${from} to ${to}`, (context) =>
      Effect.gen(function*() {
        yield* RabbitMq.declareQueue(context.connection, to, declaration)
        return {
          channel: yield* context.channel,
          confirmChannel: yield* context.confirmChannel,
          // a queue that does not exist holds nothing (its check closes only the scratch channel)
          messageCount: (queue) =>
            RabbitMq.withScratchChannel(context.connection, `check queue ${queue}`, (channel) => channel.checkQueue(queue)).pipe(
              Effect.map(({ messageCount }) => messageCount),
              Effect.catchIf((error) => error.message.includes("404"), () => Effect.succeed(0))
            )
        } satisfies MoveSession
      }))
    const live = session.pipe(
      Effect.timeoutOrElse({
        duration: commandTimeout,
        orElse: () =>
          Effect.flatMap(Effect.all([connection.problem, connection.sessionProblem]), ([problem, sessionProblem]) =>
            Effect.fail(new QueueError({
              message: `gave up after ${Duration.format(commandTimeout)} (COMMAND_TIMEOUT): ${problem ?? sessionProblem ?? "no broker session"}`,
              operation: "move"
            })))
      })
    )
    let moved = 0
    /** Move one message; false when `from` is empty. A failure leaves it in `from` (and maybe a copy in `to`). */
    const moveOne = Effect.gen(function*() {
      const { channel, confirmChannel } = yield* live
      const message = yield* RabbitMq.tryAmqp(`get from ${from}`, () => channel.get(from, { noAck: false }))
      if (message === false) return false
      yield* publishCopy(confirmChannel, to, message)
      yield* Effect.try({ try: () => channel.ack(message), catch: (error) => new QueueError({ message: `ack: ${String(error)}`, operation: "ack" }) })
      moved++
      return true
    }).pipe(
      Effect.retry(Schedule.exponential("200 millis").pipe(Schedule.upTo({ times: 5 }), Schedule.setInputType<QueueError>(), Schedule.while(({ input }) => !RabbitMq.isFatal(input))))
    )
    const delayQueues = [...new Set(requeueDelays(worker).map(delayMillisOf))].filter((millis) => millis > 0)
      .map((millis) => delayQueueName(from, millis))
    // done once `from` and its delay queues were empty at two looks a second apart: an event that has just left a
    // delay queue may still be on its way to `from` inside the broker (dead-lettering is asynchronous)
    let emptyBefore = false
    for (;;) {
      const movedBefore = moved
      while (yield* moveOne) {
        if (moved % 1000 === 0) yield* Effect.logInfo(`moved ${moved} event(s) from ${from} to ${to}`)
      }
      const { messageCount } = yield* live
      const waiting = yield* Effect.forEach(delayQueues, messageCount).pipe(Effect.map((counts) => counts.reduce((a, b) => a + b, 0)))
      const empty = waiting === 0 && moved === movedBefore
      if (empty && emptyBefore) break
      emptyBefore = empty
      if (waiting > 0) {
        yield* Effect.logInfo(`${waiting} requeued event(s) wait in ${from}.delay.*; they come back to ${from} when their delay ends`)
      }
      yield* Effect.sleep("1 second")
    }
    yield* Console.log(`moved ${moved} event(s) from ${from} to ${to} (QUEUE_TYPE=${declaration.type}); ${from} and its delay queues are empty`)
  }).pipe(
    Effect.scoped,
    Effect.provide(RabbitMq.layerConfigWith({}))
  )).pipe(
  withEnvironment(
    "Move the events waiting in another queue (and those its delay queues give back) into QUEUE_NAME, declared as " +
      "QUEUE_TYPE, each taken off only once its copy is confirmed: the move from a classic to a quorum queue",
    "move-queue"
  )
)
