/** A stats writer in memory, for tests: every write in order. */
import { Context, Effect, Layer, Ref } from "effect"
import { type QueueStats, StatsWriter } from "./StatsWriter.ts"

export class InMemoryStats extends Context.Service<InMemoryStats, {
  readonly writes: Effect.Effect<ReadonlyArray<QueueStats>>
}>()("email-senders/InMemoryStats") {
  static readonly layer: Layer.Layer<InMemoryStats | StatsWriter> = Layer.effectContext(
    Effect.gen(function*() {
      const writes = yield* Ref.make<ReadonlyArray<QueueStats>>([])
      return Context.make(InMemoryStats, InMemoryStats.of({ writes: Ref.get(writes) })).pipe(
        Context.add(StatsWriter, StatsWriter.of({ write: (stats) => Ref.update(writes, (all) => [...all, stats]) }))
      )
    })
  )
}
