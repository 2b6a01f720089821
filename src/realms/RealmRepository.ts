import { Context, type Effect } from "effect"
import type { RealmNotFound, Unavailable, UserNotFound } from "../domain/errors.ts"
import type { Realm, User } from "../domain/Realm.ts"

/** Realms and users, read from Zulip's own tables (or a file / memory when there is no database). */
export class RealmRepository extends Context.Service<RealmRepository, {
  readonly realmById: (realmId: number) => Effect.Effect<Realm, RealmNotFound | Unavailable>
  /** every user, in the order of `userIds`; fails naming the ids that do not exist */
  readonly usersByIds: (userIds: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<User>, UserNotFound | Unavailable>
}>()("email-senders/RealmRepository") {}
