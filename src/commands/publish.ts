import { Effect, Option, Stdio, Stream } from "effect"
import { Command, Flag } from "effect/cli"
import { decodeEmailEvent, type JsonObject, parseJsonBody } from "../domain/EmailEvent.ts"
import * as RabbitMqPublisher from "../layers/RabbitMqPublisher.ts"
import { QueuePublisher } from "../services/QueuePublisher.ts"

const readStdin = Effect.gen(function*() {
  const stdio = yield* Stdio.Stdio
  return yield* stdio.stdin.pipe(Stream.decodeText(), Stream.mkString)
})

/** Enqueue one event, validated with the worker's own schema first: an invalid event is refused, never published. */
export const publishCommand = Command.make("publish", {
  file: Flag.FileText("file").pipe(
    Flag.withDescription("JSON file holding the event (default: read it from standard input)"),
    Flag.optional
  )
}, ({ file }) =>
  Effect.gen(function*() {
    const text = yield* Option.match(file, {
      onNone: () => readStdin,
      onSome: Effect.succeed
    })
    const json = yield* parseJsonBody(text)
    yield* decodeEmailEvent(json)
    yield* (yield* QueuePublisher).publishEmail(json as JsonObject)
    yield* Effect.logInfo("event published")
  }).pipe(Effect.provide(RabbitMqPublisher.layerConfig))).pipe(
    Command.withDescription("Validate one email_senders event (JSON) and enqueue it with a publisher confirm")
  )
