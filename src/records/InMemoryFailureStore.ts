/** A failure store in memory, for tests: every record in order. */
import { Context, Effect, Layer, Ref } from "effect"
import { FailureStore, type FailureRecord } from "./FailureStore.ts"

export class InMemoryFailures extends Context.Service<InMemoryFailures, {
  readonly records: Effect.Effect<ReadonlyArray<FailureRecord>>
}>()("email-senders/InMemoryFailures") {
  static readonly layer: Layer.Layer<InMemoryFailures | FailureStore> = Layer.effectContext(
    Effect.gen(function*() {
      const records = yield* Ref.make<ReadonlyArray<FailureRecord>>([])
      return Context.make(InMemoryFailures, InMemoryFailures.of({ records: Ref.get(records) })).pipe(
        Context.add(FailureStore, FailureStore.of({ record: (failure) => Ref.update(records, (all) => [...all, failure]) }))
      )
    })
  )
}
