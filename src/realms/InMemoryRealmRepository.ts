/** Realms and users held in memory, for tests and embedding apps; can simulate a database outage. */
import { Context, Effect, Layer, Ref } from "effect"
import { RealmNotFound, Unavailable } from "../domain/errors.ts"
import { type Realm, type User, usersInOrder } from "../domain/Realm.ts"
import { RealmRepository } from "./RealmRepository.ts"

export class InMemoryRealms extends Context.Service<InMemoryRealms, {
  /** the next `count` lookups fail with `Unavailable`, as when the database is down */
  readonly failNextLookups: (count: number) => Effect.Effect<void>
  readonly lookups: Effect.Effect<number>
}>()("email-senders/InMemoryRealms") {
  static readonly layer = (
    data: { readonly realms?: ReadonlyArray<Realm>; readonly users?: ReadonlyArray<User> } = {}
  ): Layer.Layer<InMemoryRealms | RealmRepository> =>
    Layer.effectContext(Effect.gen(function*() {
      const realms = new Map((data.realms ?? []).map((realm) => [realm.id, realm]))
      const users = new Map((data.users ?? []).map((user) => [user.id, user]))
      const state = yield* Ref.make({ lookups: 0, outage: 0 })
      const lookup = Ref.modify(state, (s) => [s.outage > 0, { lookups: s.lookups + 1, outage: Math.max(0, s.outage - 1) }]).pipe(
        Effect.flatMap((down) =>
          down ? Effect.fail(new Unavailable({ message: "database is down (simulated)", dependency: "database" })) : Effect.void
        )
      )
      const repository = RealmRepository.of({
        realmById: (realmId) =>
          lookup.pipe(Effect.andThen(() => {
            const realm = realms.get(realmId)
            return realm === undefined
              ? Effect.fail(new RealmNotFound({ message: `realm ${realmId} does not exist`, realmId }))
              : Effect.succeed(realm)
          })),
        usersByIds: (userIds) =>
          lookup.pipe(Effect.andThen(() => usersInOrder(userIds, users)))
      })
      const control = InMemoryRealms.of({
        failNextLookups: (count) => Ref.update(state, (s) => ({ ...s, outage: s.outage + count })),
        lookups: Effect.map(Ref.get(state), (s) => s.lookups)
      })
      return Context.make(InMemoryRealms, control).pipe(Context.add(RealmRepository, repository))
    }))
}
