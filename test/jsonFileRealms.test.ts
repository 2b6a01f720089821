import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer } from "effect"
import { join } from "node:path"
import { RealmNotFound, UserNotFound } from "../src/domain/errors.ts"
import * as JsonFileRealmRepository from "../src/realms/JsonFileRealmRepository.ts"
import { RealmRepository } from "../src/realms/RealmRepository.ts"

const realmsFile = {
  realms: [
    { id: 1, string_id: "", name: "Root" },
    { id: 2, string_id: "zulip", name: "Zulip Dev", deactivated: true, extra: "ignored" }
  ],
  users: [
    { id: 10, realm_id: 2, full_name: "Hamlet", delivery_email: "hamlet@zulip.example", default_language: "de" },
    { id: 11, realm_id: 2, full_name: "Iago", delivery_email: "iago@zulip.example", is_active: false },
    { id: 12, realm_id: 1, full_name: "Othello", delivery_email: "othello@zulip.example", default_language: null }
  ]
}

/** The repository read from a file holding `contents` in a fresh temporary directory. */
const fromFile = (contents: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = join(yield* fs.makeTempDirectoryScoped({ prefix: "es-realms-" }), "realms.json")
    yield* fs.writeFileString(path, contents)
    return { path, build: Layer.build(JsonFileRealmRepository.layer({ path })) }
  }).pipe(Effect.provide(NodeFileSystem.layer))

const repositoryFrom = (contents: string) =>
  Effect.gen(function*() {
    const { build } = yield* fromFile(contents)
    return yield* RealmRepository.pipe(Effect.provide(yield* build))
  })

const startupError = (contents: string) =>
  Effect.gen(function*() {
    const { path, build } = yield* fromFile(contents)
    const error = yield* Effect.flip(build)
    assert.strictEqual(error._tag, "RealmsFileError")
    assert.strictEqual(error.path, path)
    return error.message
  })

describe("JsonFileRealmRepository", () => {
  it.effect("finds realms by id, with deactivated defaulting to false", () =>
    Effect.gen(function*() {
      const repo = yield* repositoryFrom(JSON.stringify(realmsFile))
      assert.deepStrictEqual(yield* repo.realmById(1), { id: 1, stringId: "", name: "Root", deactivated: false })
      assert.deepStrictEqual(yield* repo.realmById(2), { id: 2, stringId: "zulip", name: "Zulip Dev", deactivated: true })
      const missing = yield* Effect.flip(repo.realmById(3))
      assert.instanceOf(missing, RealmNotFound)
      assert.strictEqual(missing.realmId, 3)
    }))

  it.effect("returns users in the order asked, repeats included, with Zulip's defaults", () =>
    Effect.gen(function*() {
      const repo = yield* repositoryFrom(JSON.stringify(realmsFile))
      const users = yield* repo.usersByIds([12, 10, 11, 10])
      assert.deepStrictEqual(users.map((user) => user.id), [12, 10, 11, 10])
      assert.deepStrictEqual(users[1], {
        id: 10,
        realmId: 2,
        fullName: "Hamlet",
        deliveryEmail: "hamlet@zulip.example",
        defaultLanguage: "de",
        isActive: true
      })
      assert.strictEqual(users[2]!.isActive, false)
      assert.strictEqual(users[2]!.defaultLanguage, null)
      assert.strictEqual(users[0]!.defaultLanguage, null)
      assert.deepStrictEqual(yield* repo.usersByIds([]), [])
    }))

  it.effect("fails UserNotFound naming every missing id once", () =>
    Effect.gen(function*() {
      const repo = yield* repositoryFrom(JSON.stringify(realmsFile))
      const error = yield* Effect.flip(repo.usersByIds([10, 99, 98, 99]))
      assert.instanceOf(error, UserNotFound)
      assert.deepStrictEqual(error.userIds, [99, 98])
    }))

  it.effect("without a file there are no realms and no users", () =>
    Effect.gen(function*() {
      const repo = yield* RealmRepository.pipe(Effect.provide(JsonFileRealmRepository.layer({ path: undefined })))
      assert.instanceOf(yield* Effect.flip(repo.realmById(1)), RealmNotFound)
      const error = yield* Effect.flip(repo.usersByIds([10]))
      assert.instanceOf(error, UserNotFound)
      assert.deepStrictEqual(error.userIds, [10])
    }))

  it.effect("reads the file once at start", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const { path, build } = yield* fromFile(JSON.stringify(realmsFile))
      const repo = yield* RealmRepository.pipe(Effect.provide(yield* build))
      yield* fs.writeFileString(path, JSON.stringify({ realms: [], users: [] }))
      assert.strictEqual((yield* repo.realmById(2)).name, "Zulip Dev")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("a malformed file stops start-up with an error naming the field", () =>
    Effect.gen(function*() {
      const badUser = { ...realmsFile, users: [realmsFile.users[0], { id: 11, realm_id: 2, full_name: "Iago" }] }
      assert.include(yield* startupError(JSON.stringify(badUser)), `["users"][1]["delivery_email"]`)
      const badRealm = { ...realmsFile, realms: [{ id: "one", string_id: "", name: "Root" }] }
      assert.include(yield* startupError(JSON.stringify(badRealm)), `["realms"][0]["id"]`)
      assert.include(yield* startupError(JSON.stringify({ realms: [] })), `["users"]`)
      assert.include(yield* startupError("{\"realms\": ["), "JSON")
    }))

  it.effect("a configured file that does not exist stops start-up", () =>
    Effect.gen(function*() {
      const path = join("/nonexistent-es-test", "realms.json")
      const error = yield* Effect.flip(Layer.build(JsonFileRealmRepository.layer({ path })))
      assert.strictEqual(error._tag, "RealmsFileError")
      assert.include(error.message, path)
    }))
})
