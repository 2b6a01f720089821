/**
 * `RealmRepository` from a JSON file shaped like Zulip's two tables, for an embedded install without a database.
 * The file is read and validated once at start, so a malformed file stops the worker before it takes any event.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Config, Effect, FileSystem, Layer, Option, Schema } from "effect"
import { RealmNotFound } from "../domain/errors.ts"
import { RealmRow, UserRow, usersInOrder } from "../domain/Realm.ts"
import { RealmRepository } from "./RealmRepository.ts"

/** The realms file could not be read or does not have the expected shape; `message` names the offending field. */
export class RealmsFileError extends Schema.TaggedError<RealmsFileError>()("RealmsFileError", {
  message: Schema.String,
  path: Schema.String
}) {}

const RealmsFile = Schema.Struct({
  realms: Schema.Array(RealmRow),
  users: Schema.Array(UserRow)
})

export interface JsonFileRealmRepositoryOptions {
  /** the realms file; without one there are no realms and no users, so every lookup is "not found" */
  readonly path: string | undefined
}

const load = (path: string | undefined) =>
  path === undefined
    ? Effect.succeed({ realms: [], users: [] })
    : FileSystem.FileSystem.use((fs) => fs.readFileString(path)).pipe(
      // parsed apart from the schema so a syntax error keeps its position in the message
      Effect.flatMap((text) => Effect.try({ try: () => JSON.parse(text), catch: (cause) => ({ message: String(cause) }) })),
      Effect.flatMap(Schema.decodeUnknownEffect(RealmsFile)),
      Effect.mapError((error) => new RealmsFileError({ message: `${path}: ${error.message}`, path }))
    )

const make = Effect.fnUntraced(function*(path: string | undefined) {
  const file = yield* load(path)
  const realms = new Map(file.realms.map((realm) => [realm.id, realm]))
  const users = new Map(file.users.map((user) => [user.id, user]))
  yield* (path === undefined
    ? Effect.logWarning("no realms file: every realm and user lookup will fail as not found")
    : Effect.logInfo("realms file loaded").pipe(
      Effect.annotateLogs({ path, realms: realms.size, users: users.size })
    ))
  return RealmRepository.of({
    realmById: (realmId) => {
      const realm = realms.get(realmId)
      return realm === undefined
        ? Effect.fail(new RealmNotFound({ message: `No realm with id ${realmId}`, realmId }))
        : Effect.succeed(realm)
    },
    usersByIds: (userIds) => usersInOrder(userIds, users)
  })
})

export const layer = (options: JsonFileRealmRepositoryOptions) =>
  Layer.effect(RealmRepository, make(options.path)).pipe(Layer.provide(NodeFileSystem.layer))

/** `REALMS_FILE`: path of the realms file (optional). */
export const pathConfig: Config.Config<string | undefined> = Config.String("REALMS_FILE").pipe(
  Config.option,
  Config.map(Option.getOrUndefined)
)

export const layerConfig = Layer.unwrap(
  Effect.gen(function*() {
    return layer({ path: yield* pathConfig })
  })
)
