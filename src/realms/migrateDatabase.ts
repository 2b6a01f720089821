/**
 * `db migrate`: creates the two Zulip tables the worker reads, for a standalone install, and the table of the
 * duplicate ledger (`DEDUPE_STORE=postgres`). Column names and types
 * are Zulip's, so the same queries work against a real Zulip database; existing tables are left alone, which makes
 * running it again (or against a Zulip database) harmless.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

export const migrateDatabase = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`
      CREATE TABLE IF NOT EXISTS zerver_realm (
        id serial PRIMARY KEY,
        string_id varchar(40) NOT NULL UNIQUE,
        name varchar(40) NOT NULL,
        deactivated boolean NOT NULL DEFAULT false
      )`
    yield* sql`
      CREATE TABLE IF NOT EXISTS zerver_userprofile (
        id serial PRIMARY KEY,
        realm_id integer NOT NULL REFERENCES zerver_realm (id),
        full_name varchar(100) NOT NULL,
        delivery_email varchar(254) NOT NULL,
        default_language varchar(50),
        is_active boolean NOT NULL DEFAULT true
      )`
    yield* sql`CREATE INDEX IF NOT EXISTS zerver_userprofile_realm_id ON zerver_userprofile (realm_id)`
    // the duplicate ledger's table (DEDUPE_STORE=postgres): effect/persistence's own layout, which it also checks
    yield* sql`
      CREATE TABLE IF NOT EXISTS effect_persistence (
        store_id TEXT NOT NULL,
        id TEXT NOT NULL,
        value TEXT NOT NULL,
        expires BIGINT,
        PRIMARY KEY (store_id, id)
      )`
    yield* sql`CREATE INDEX IF NOT EXISTS effect_persistence_expires_idx ON effect_persistence (expires) WHERE expires IS NOT NULL`
  }))
  yield* Effect.logInfo("database tables are in place")
}).pipe(Effect.withSpan("migrateDatabase"))
