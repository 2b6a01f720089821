import { Effect } from "effect"
import { Command } from "effect/cli"
import { decodeEmailEvent, type JsonObject } from "../domain/EmailEvent.ts"
import * as RabbitMqPublisher from "../layers/RabbitMqPublisher.ts"
import { QueuePublisher } from "../services/QueuePublisher.ts"
import { eventFileFlag, readEventJson } from "./eventInput.ts"

/** Enqueue one event, validated with the worker's own schema first: an invalid event is refused, never published. */
export const publishCommand = Command.make("publish", { file: eventFileFlag }, ({ file }) =>
  Effect.gen(function*() {
    const json = yield* readEventJson(file)
    yield* decodeEmailEvent(json)
    yield* (yield* QueuePublisher).publishEmail(json as JsonObject)
    yield* Effect.logInfo("event published")
  }).pipe(Effect.provide(RabbitMqPublisher.layerConfig))).pipe(
    Command.withDescription("Validate one email_senders event (JSON) and enqueue it with a publisher confirm")
  )
