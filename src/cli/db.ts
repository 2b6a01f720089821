import { PgClient } from "@effect/sql-pg"
import { Effect, Layer } from "effect"
import { Command } from "effect/cli"
import { DatabaseUrlSetting } from "../config/connectionSettings.ts"
import { migrateDatabase } from "../realms/migrateDatabase.ts"
import { withEnvironment } from "./environmentHelp.ts"

const migrate = Command.make("migrate", {}, () =>
  migrateDatabase.pipe(
    Effect.andThen(Effect.logInfo("database ready: zerver_realm, zerver_userprofile and effect_persistence (the duplicate ledger) exist")),
    Effect.provide(Layer.unwrap(Effect.gen(function*() {
      return PgClient.layer({ url: yield* DatabaseUrlSetting })
    })))
  )).pipe(withEnvironment("Create Zulip's realm and user tables, and the duplicate ledger's table, in DATABASE_URL if they do not exist", "db migrate"))

export const dbCommand = Command.make("db").pipe(
  Command.withDescription("Database commands"),
  Command.withSubcommands([migrate])
)
