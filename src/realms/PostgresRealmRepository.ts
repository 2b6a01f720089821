/**
 * `RealmRepository` over Zulip's own `zerver_realm` and `zerver_userprofile` tables, so it can point at a Zulip
 * database unchanged (or at a standalone one created by `db migrate`).
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Schema } from "effect"
import { SqlClient, SqlError } from "effect/sql"
import { RealmNotFound, Unavailable } from "../domain/errors.ts"
import { RealmRow, UserRow, usersInOrder } from "../domain/Realm.ts"
import { RealmRepository } from "./RealmRepository.ts"
import { DatabaseUrlSetting } from "../config/connectionSettings.ts"

export interface PostgresRealmRepositoryOptions extends PgClient.PgPoolConfig {
  /** longest one lookup may take, connecting included, before the database counts as unavailable (default 10 s) */
  readonly queryTimeout?: Duration.Input
}

/** The columns the lookups read, table by table (what `check` verifies a database has). */
export const neededColumns = {
  zerver_realm: ["id", "string_id", "name", "deactivated"],
  zerver_userprofile: ["id", "realm_id", "full_name", "delivery_email", "default_language", "is_active"]
} as const

const decodeRealms = Schema.decodeUnknownEffect(Schema.Array(RealmRow))
const decodeUsers = Schema.decodeUnknownEffect(Schema.Array(UserRow))

/**
 * Every way a lookup can fail besides "no such row" (refused, lost or timed-out connection, rejected login, missing
 * table, unexpected row) becomes `Unavailable`: the pipeline then waits and retries instead of dropping the event.
 * The message keeps the driver's reason (e.g. `ConnectionError: connect ECONNREFUSED 127.0.0.1:5432`).
 */
const asUnavailable = (error: SqlError.SqlError | Schema.SchemaError) =>
  new Unavailable({
    message: SqlError.isSqlError(error)
      ? `database: ${error.reason._tag}: ${error.reason.cause instanceof Error ? error.reason.cause.message : error.message}`
      : `database: unexpected row: ${error.message}`,
    dependency: "database"
  })

const make = (queryTimeout: Duration.Duration) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const columns = (table: keyof typeof neededColumns) => sql.literal(neededColumns[table].join(", "))
    const timedOut = new Unavailable({
      message: `database: no answer within ${Duration.format(queryTimeout)}`,
      dependency: "database"
    })
    const guard = <A>(lookup: Effect.Effect<A, SqlError.SqlError | Schema.SchemaError>) =>
      lookup.pipe(
        Effect.mapError(asUnavailable),
        Effect.timeoutOrElse({ duration: queryTimeout, orElse: () => Effect.fail(timedOut) })
      )

    const realmById = Effect.fn("PostgresRealmRepository.realmById")(function*(realmId: number) {
      const [realm] = yield* guard(
        sql`SELECT ${columns("zerver_realm")} FROM zerver_realm WHERE id = ${realmId}`.pipe(
          Effect.flatMap(decodeRealms)
        )
      )
      return realm ?? (yield* new RealmNotFound({ message: `No realm with id ${realmId}`, realmId }))
    })

    const usersByIds = Effect.fn("PostgresRealmRepository.usersByIds")(function*(userIds: ReadonlyArray<number>) {
      const distinctIds = [...new Set(userIds)]
      const users = distinctIds.length === 0 ? [] : yield* guard(
        sql`SELECT ${columns("zerver_userprofile")} FROM zerver_userprofile WHERE ${sql.in("id", distinctIds)}`.pipe(
          Effect.flatMap(decodeUsers)
        )
      )
      return yield* usersInOrder(userIds, new Map(users.map((user) => [user.id, user])))
    })

    return RealmRepository.of({ realmById, usersByIds })
  })

/** The pool connects lazily, so the layer builds while the database is down and lookups report `Unavailable`. */
export const layer = ({ queryTimeout = Duration.seconds(10), ...client }: PostgresRealmRepositoryOptions) =>
  Layer.effect(RealmRepository, make(Duration.fromInputUnsafe(queryTimeout))).pipe(
    Layer.provide(PgClient.layer(client))
  )

export const layerConfig = Layer.unwrap(
  Effect.gen(function*() {
    return layer({ url: yield* DatabaseUrlSetting })
  })
)
