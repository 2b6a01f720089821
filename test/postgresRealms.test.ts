import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { randomUUID } from "node:crypto"
import * as net from "node:net"
import { RealmNotFound, Unavailable, UserNotFound } from "../src/domain/errors.ts"
import * as PostgresRealmRepository from "../src/realms/PostgresRealmRepository.ts"
import { migrateDatabase } from "../src/realms/migrateDatabase.ts"
import { RealmRepository } from "../src/realms/RealmRepository.ts"
import { makeTcpProxy } from "./support/tcpProxy.ts"

const postgresPort = 5432
const urlFor = (port: number) => Redacted.make(`postgres://postgres@127.0.0.1:${port}/test`)
/** Each run works in a schema of its own, so parallel runs never see each other's tables. */
const schema = `es_test_${randomUUID().replaceAll("-", "").slice(0, 16)}`
const inSchema = { startupParameters: { search_path: schema } }

/** Creates the schema, migrates it twice (the second run must be a no-op), fills it, and drops it afterwards. */
const TestDatabase = Layer.effectDiscard(
  Effect.gen(function*() {
    const admin = yield* SqlClient.SqlClient
    yield* Effect.acquireRelease(
      admin`CREATE SCHEMA ${admin(schema)}`,
      () => Effect.orDie(admin`DROP SCHEMA ${admin(schema)} CASCADE`)
    )
    const seed = Effect.gen(function*() {
      yield* migrateDatabase
      yield* migrateDatabase
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO zerver_realm (id, string_id, name, deactivated) VALUES
        (1, '', 'Root', false), (2, 'zulip', 'Zulip Dev', true)`
      yield* sql`INSERT INTO zerver_realm (id, string_id, name) VALUES (3, 'lear', 'Lear & Co.')`
      yield* sql`INSERT INTO zerver_userprofile (id, realm_id, full_name, delivery_email, default_language, is_active)
        VALUES (10, 2, 'Hamlet', 'hamlet@zulip.example', 'de', true),
               (11, 2, 'Iago', 'iago@zulip.example', NULL, false),
               (12, 1, 'Othello', 'othello@zulip.example', 'en', true)`
      yield* sql`INSERT INTO zerver_userprofile (id, realm_id, full_name, delivery_email)
        VALUES (13, 3, 'Cordelia', 'cordelia@zulip.example')`
    })
    yield* seed.pipe(Effect.provide(PgClient.layer({ url: urlFor(postgresPort), ...inSchema })))
  })
).pipe(Layer.provide(PgClient.layer({ url: urlFor(postgresPort) })))

/** The repository, alive (pool open) until the surrounding scope closes. */
const repositoryAt = (port: number, options: Partial<PostgresRealmRepository.PostgresRealmRepositoryOptions> = {}) =>
  Layer.build(PostgresRealmRepository.layer({ url: urlFor(port), ...inSchema, ...options })).pipe(
    Effect.flatMap((context) => RealmRepository.pipe(Effect.provide(context)))
  )

/** A server that accepts connections and never answers, like a host that hangs. */
const makeSilentServer = Effect.acquireRelease(
  Effect.callback<{ server: net.Server; sockets: Set<net.Socket> }>((resume) => {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets })))
  }),
  ({ server, sockets }) =>
    Effect.callback<void>((resume) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resume(Effect.void))
    })
)

const expectUnavailable = <A, E>(lookup: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(lookup)
    assert.instanceOf(error, Unavailable)
    assert.strictEqual(error.dependency, "database")
    return error
  })

// real clock throughout: the driver's connect timeout and pool run on it
layer(TestDatabase, { timeout: 30_000, excludeTestServices: true })("PostgresRealmRepository", (it) => {
  it.effect("db migrate creates exactly Zulip's columns and types, and the duplicate ledger's table, and can run again", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* migrateDatabase.pipe(Effect.provide(PgClient.layer({ url: urlFor(postgresPort), ...inSchema })))
      const columns = yield* sql<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>`
        SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
        WHERE table_schema = ${schema} ORDER BY table_name, ordinal_position`
      assert.deepStrictEqual(
        columns.map((c) => `${c.table_name}.${c.column_name} ${c.data_type} ${c.is_nullable === "YES" ? "null" : "not null"}`),
        [
          "effect_persistence.store_id text not null",
          "effect_persistence.id text not null",
          "effect_persistence.value text not null",
          "effect_persistence.expires bigint null",
          "zerver_realm.id integer not null",
          "zerver_realm.string_id character varying not null",
          "zerver_realm.name character varying not null",
          "zerver_realm.deactivated boolean not null",
          "zerver_userprofile.id integer not null",
          "zerver_userprofile.realm_id integer not null",
          "zerver_userprofile.full_name character varying not null",
          "zerver_userprofile.delivery_email character varying not null",
          "zerver_userprofile.default_language character varying null",
          "zerver_userprofile.is_active boolean not null"
        ]
      )
      const foreignKeys = yield* sql<{ count: number }>`
        SELECT count(*)::int AS count FROM information_schema.table_constraints
        WHERE table_schema = ${schema} AND table_name = 'zerver_userprofile' AND constraint_type = 'FOREIGN KEY'`
      assert.strictEqual(foreignKeys[0]!.count, 1)
    }).pipe(Effect.provide(PgClient.layer({ url: urlFor(postgresPort) }))))

  it.effect("finds realms with their deactivated flag; an unknown realm is RealmNotFound", () =>
    Effect.gen(function*() {
      const repo = yield* repositoryAt(postgresPort)
      assert.deepStrictEqual(yield* repo.realmById(1), { id: 1, stringId: "", name: "Root", deactivated: false })
      assert.deepStrictEqual(yield* repo.realmById(2), { id: 2, stringId: "zulip", name: "Zulip Dev", deactivated: true })
      assert.deepStrictEqual(yield* repo.realmById(3), { id: 3, stringId: "lear", name: "Lear & Co.", deactivated: false })
      const missing = yield* Effect.flip(repo.realmById(404))
      assert.instanceOf(missing, RealmNotFound)
      assert.strictEqual(missing.realmId, 404)
    }))

  it.effect("returns users in the order asked, repeats included; missing ids fail UserNotFound", () =>
    Effect.gen(function*() {
      const repo = yield* repositoryAt(postgresPort)
      const users = yield* repo.usersByIds([13, 10, 11, 10, 12])
      assert.deepStrictEqual(users.map((user) => user.id), [13, 10, 11, 10, 12])
      assert.deepStrictEqual(users[0], {
        id: 13,
        realmId: 3,
        fullName: "Cordelia",
        deliveryEmail: "cordelia@zulip.example",
        defaultLanguage: null,
        isActive: true
      })
      assert.deepStrictEqual(users[2], {
        id: 11,
        realmId: 2,
        fullName: "Iago",
        deliveryEmail: "iago@zulip.example",
        defaultLanguage: null,
        isActive: false
      })
      assert.strictEqual(users[1]!.defaultLanguage, "de")
      assert.deepStrictEqual(yield* repo.usersByIds([]), [])
      const missing = yield* Effect.flip(repo.usersByIds([10, 500, 501, 500]))
      assert.instanceOf(missing, UserNotFound)
      assert.deepStrictEqual(missing.userIds, [500, 501])
    }))

  it.effect("a database that goes away is Unavailable, and lookups recover once it is back", () =>
    Effect.scoped(Effect.gen(function*() {
      const proxy = yield* makeTcpProxy(postgresPort)
      const repo = yield* repositoryAt(proxy.port)
      assert.strictEqual((yield* repo.realmById(2)).name, "Zulip Dev")

      // down: open pooled connections are cut and new ones are refused; nothing may look like "not found"
      yield* proxy.stop
      assert.include((yield* expectUnavailable(repo.realmById(2))).message, "ConnectionError")
      yield* expectUnavailable(repo.realmById(404))
      yield* expectUnavailable(repo.usersByIds([10, 500]))

      // back on the same port: the pool reconnects by itself
      yield* proxy.start
      assert.strictEqual((yield* repo.realmById(2)).name, "Zulip Dev")
      assert.deepStrictEqual((yield* repo.usersByIds([12, 10])).map((user) => user.fullName), ["Othello", "Hamlet"])
    })))

  it.effect("a database that is down at start is Unavailable until it comes up", () =>
    Effect.scoped(Effect.gen(function*() {
      const proxy = yield* makeTcpProxy(postgresPort)
      yield* proxy.stop
      const repo = yield* repositoryAt(proxy.port)
      yield* expectUnavailable(repo.usersByIds([10]))
      yield* proxy.start
      assert.strictEqual((yield* repo.usersByIds([10]))[0]!.fullName, "Hamlet")
    })))

  it.effect("a database that does not answer is Unavailable after the query timeout", () =>
    Effect.scoped(Effect.gen(function*() {
      const { server } = yield* makeSilentServer
      const repo = yield* repositoryAt((server.address() as net.AddressInfo).port, { queryTimeout: "300 millis" })
      const error = yield* expectUnavailable(repo.realmById(1))
      assert.include(error.message, "no answer within")
    })))
})
