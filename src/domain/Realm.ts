import { Effect, Schema } from "effect"
import { UserNotFound } from "./errors.ts"

/** The parts of Zulip's `zerver_realm` and `zerver_userprofile` rows that building an email needs. */

export interface Realm {
  readonly id: number
  /** the subdomain; empty for the root realm */
  readonly stringId: string
  readonly name: string
  readonly deactivated: boolean
}

export interface User {
  readonly id: number
  readonly realmId: number
  readonly fullName: string
  readonly deliveryEmail: string
  readonly defaultLanguage: string | null
  readonly isActive: boolean
}

/**
 * A `zerver_realm` row as stored (snake_case columns), decoded into a `Realm`. The JSON realms file uses the same
 * keys, so both repositories share it; `deactivated` may be left out of the file.
 */
export const RealmRow = Schema.Struct({
  id: Schema.Int,
  stringId: Schema.String,
  name: Schema.String,
  deactivated: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(false)))
}).pipe(Schema.encodeKeys({ stringId: "string_id" }))

/** A `zerver_userprofile` row decoded into a `User`; `default_language` and `is_active` may be left out of the file. */
export const UserRow = Schema.Struct({
  id: Schema.Int,
  realmId: Schema.Int,
  fullName: Schema.String,
  deliveryEmail: Schema.String,
  defaultLanguage: Schema.NullOr(Schema.String).pipe(Schema.withDecodingDefaultKey(Effect.succeed(null))),
  isActive: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(true)))
}).pipe(Schema.encodeKeys({
  realmId: "realm_id",
  fullName: "full_name",
  deliveryEmail: "delivery_email",
  defaultLanguage: "default_language",
  isActive: "is_active"
}))

/** The users of `userIds` in that order (repeats included), or `UserNotFound` naming every id that has no user. */
export const usersInOrder = (
  userIds: ReadonlyArray<number>,
  usersById: ReadonlyMap<number, User>
): Effect.Effect<ReadonlyArray<User>, UserNotFound> => {
  const missing = [...new Set(userIds.filter((id) => !usersById.has(id)))]
  return missing.length > 0
    ? Effect.fail(new UserNotFound({ message: `No user with id ${missing.join(", ")}`, userIds: missing }))
    : Effect.succeed(userIds.map((id) => usersById.get(id)!))
}
