/**
 * Scenario 4: PostgreSQL unreachable for 10 s while events need realm and user lookups. The machine's server is
 * left alone: the worker reaches it through a TCP proxy that the scenario stops and starts again.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { join } from "node:path"
import { uniqueName } from "../support/rabbitmq.ts"
import { makeTcpProxy } from "../support/tcpProxy.ts"
import type { Published } from "./support/ledger.ts"
import { makeScenario, seconds } from "./support/scenario.ts"
import { runMain } from "./support/worker.ts"

const events = 1_000
const users = 50
const outageMillis = 10_000

/** Zulip's tables in a schema of this run, created by the worker's own `db migrate`, and dropped at the end. */
const realmDatabase = (schema: string, url: string, settings: Record<string, string>, logPath: string) =>
  Effect.gen(function*() {
    const admin = PgClient.layer({ url: Redacted.make("postgres://postgres@127.0.0.1:5432/test") })
    yield* Effect.acquireRelease(
      SqlClient.SqlClient.use((sql) => sql`CREATE SCHEMA ${sql(schema)}`),
      () => SqlClient.SqlClient.use((sql) => sql`DROP SCHEMA ${sql(schema)} CASCADE`).pipe(Effect.provide(admin), Effect.orDie)
    ).pipe(Effect.provide(admin))
    yield* runMain(["db", "migrate"], { ...settings, DATABASE_URL: url }, logPath)
    yield* SqlClient.SqlClient.use((sql) =>
      Effect.gen(function*() {
        yield* sql`INSERT INTO zerver_realm (id, string_id, name) VALUES (1, 'faults', 'Fault Realm')`
        yield* sql`INSERT INTO zerver_userprofile (id, realm_id, full_name, delivery_email)
          SELECT i, 1, 'User ' || i, 'user' || i || '@faults.example' FROM generate_series(1, ${users}) AS i`
      })
    ).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url) })))
  }).pipe(Effect.orDie)

/** Pre-rendered events addressed by user id: each needs a user and a realm lookup. */
const userEvents = (count: number): ReadonlyArray<Published> =>
  Array.from({ length: count }, (_, n) => ({
    label: `dbdown#${n}`,
    body: JSON.stringify({
      subject: `Fault scenario dbdown #${n}`,
      text: `Event ${n} of the database outage scenario.`,
      to_user_ids: [(n % users) + 1],
      message_id: `dbdown-${n}-${process.pid}@faults.example`
    })
  }))

it.live("PostgreSQL unreachable for 10 s: none lost, none failed", ({ task }) =>
  Effect.gen(function*() {
    const scenario = yield* makeScenario("dbdown")
    const proxy = yield* makeTcpProxy(5432)
    const schema = uniqueName("faults_dbdown")
    const url = `postgres://postgres@127.0.0.1:${proxy.port}/test?options=-c%20search_path%3D${schema}`
    yield* realmDatabase(schema, url, scenario.settings(), join(scenario.directory, "migrate.log"))

    const published = userEvents(events)
    yield* scenario.publish(published)
    const worker = yield* scenario.startWorker({ DATABASE_URL: url })

    yield* scenario.awaitSettledCount(published, events / 4, "120 seconds")
    yield* proxy.stop
    const sentBeforeOutage = scenario.sink.acceptedAt.length
    yield* Effect.sleep(outageMillis)
    // only emails whose lookups were done before the cut can go out meanwhile
    const sentDuringOutage = scenario.sink.acceptedAt.length - sentBeforeOutage
    yield* proxy.start
    const backAt = Date.now()
    const allSettled = yield* scenario.awaitSettled(published, "120 seconds")
    const firstAfter = scenario.sink.acceptedAt.find((at) => at >= backAt)
    const exitedMeanwhile = yield* worker.hasExited
    yield* scenario.stopWorker(worker)
    const counts = yield* scenario.account(published)
    const resumed = firstAfter === undefined ? "never" : seconds(firstAfter - backAt)
    scenario.report(task, "4 PostgreSQL down 10 s", counts, `${sentDuringOutage} sent during the outage; delivery resumed ${resumed} after the database returned`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.strictEqual(counts.failed, 0, `recorded as failed: ${JSON.stringify(scenario.failures.read().slice(0, 3))}`)
    assert.isFalse(exitedMeanwhile)
    assert.isTrue(allSettled, "delivery did not finish after the database returned")
    assert.strictEqual(counts.delivered, events)
  }).pipe(Effect.scoped))
