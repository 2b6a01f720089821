/** A suppression list in memory, for tests: the addresses of every call of `remove`, in order. */
import { Context, Effect, Layer, Ref } from "effect"
import { SuppressionList } from "./SuppressionList.ts"

export class InMemorySuppressionList extends Context.Service<InMemorySuppressionList, {
  readonly calls: Effect.Effect<ReadonlyArray<ReadonlyArray<string>>>
}>()("email-senders/InMemorySuppressionList") {
  static readonly layer: Layer.Layer<InMemorySuppressionList | SuppressionList> = Layer.effectContext(
    Effect.gen(function*() {
      const calls = yield* Ref.make<ReadonlyArray<ReadonlyArray<string>>>([])
      return Context.make(InMemorySuppressionList, InMemorySuppressionList.of({ calls: Ref.get(calls) })).pipe(
        Context.add(SuppressionList, SuppressionList.of({ remove: (addresses) => Ref.update(calls, (all) => [...all, addresses]) }))
      )
    })
  )
}
