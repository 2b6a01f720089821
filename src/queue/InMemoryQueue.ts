/**
 * A queue in memory with the broker's settle semantics, for tests and embedding apps: published bodies become
 * deliveries; every ack, requeue and release is kept for inspection; a requeued event is delivered again after its
 * delay (on the `Clock`, so `TestClock` controls it) and a released one at once, marked redelivered.
 */
import { Context, Duration, Effect, Layer, Queue, Ref } from "effect"
import type { JsonObject } from "../domain/EmailEvent.ts"
import { type Delivery, QueueConsumer } from "./QueueConsumer.ts"

export interface Requeued {
  readonly event: JsonObject
  readonly delayMillis: number
}

interface QueueState {
  readonly acked: ReadonlyArray<string>
  readonly requeued: ReadonlyArray<Requeued>
  readonly released: ReadonlyArray<string>
  /** published or requeued and not yet acked, requeued or released */
  readonly unsettled: number
}

export class InMemoryQueue extends Context.Service<InMemoryQueue, {
  /** enqueue a body; an object is serialised as JSON, a string is taken as the raw body */
  readonly publish: (body: string | JsonObject) => Effect.Effect<void>
  readonly acked: Effect.Effect<ReadonlyArray<string>>
  readonly requeued: Effect.Effect<ReadonlyArray<Requeued>>
  readonly released: Effect.Effect<ReadonlyArray<string>>
  /** messages not settled yet, including requeued ones waiting for their delay */
  readonly unsettled: Effect.Effect<number>
}>()("email-senders/InMemoryQueue") {
  static readonly layer: Layer.Layer<InMemoryQueue | QueueConsumer> = Layer.effectContext(
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const queue = yield* Queue.unbounded<Delivery>()
      const state = yield* Ref.make<QueueState>({ acked: [], requeued: [], released: [], unsettled: 0 })
      const settled = (change: (s: QueueState) => QueueState) =>
        Ref.update(state, (s) => ({ ...change(s), unsettled: s.unsettled - 1 }))

      const deliver = (body: string, redelivered: boolean): Effect.Effect<void> => {
        const delivery: Delivery = {
          body,
          redelivered,
          ack: settled((s) => ({ ...s, acked: [...s.acked, body] })),
          requeue: (event, delay) =>
            Effect.gen(function*() {
              const delayMillis = Duration.toMillis(delay)
              yield* Ref.update(state, (s) => ({ ...s, requeued: [...s.requeued, { event, delayMillis }], unsettled: s.unsettled + 1 }))
              yield* settled((s) => ({ ...s, acked: [...s.acked, body] }))
              yield* Effect.forkIn(Effect.sleep(delay).pipe(Effect.andThen(deliver(JSON.stringify(event), false))), scope)
            }),
          release: settled((s) => ({ ...s, released: [...s.released, body] })).pipe(
            Effect.andThen(Ref.update(state, (s) => ({ ...s, unsettled: s.unsettled + 1 }))),
            Effect.andThen(Effect.suspend(() => deliver(body, true)))
          )
        }
        return Queue.offer(queue, delivery).pipe(Effect.asVoid)
      }

      const control = InMemoryQueue.of({
        publish: (body) =>
          Ref.update(state, (s) => ({ ...s, unsettled: s.unsettled + 1 })).pipe(
            Effect.andThen(deliver(typeof body === "string" ? body : JSON.stringify(body), false))
          ),
        acked: Effect.map(Ref.get(state), (s) => s.acked),
        requeued: Effect.map(Ref.get(state), (s) => s.requeued),
        released: Effect.map(Ref.get(state), (s) => s.released),
        unsettled: Effect.map(Ref.get(state), (s) => s.unsettled)
      })
      return Context.make(InMemoryQueue, control).pipe(
        Context.add(QueueConsumer, QueueConsumer.of({ take: Queue.take(queue), buffered: Queue.size(queue) }))
      )
    })
  )
}
