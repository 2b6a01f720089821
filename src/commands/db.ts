import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer } from "effect"
import { Command } from "effect/cli"
import { migrateDatabase } from "../programs/migrateDatabase.ts"

const migrate = Command.make("migrate", {}, () =>
  migrateDatabase.pipe(
    Effect.andThen(Effect.logInfo("database ready: zerver_realm and zerver_userprofile exist")),
    Effect.provide(Layer.unwrap(Effect.gen(function*() {
      return PgClient.layer({ url: yield* Config.Redacted("DATABASE_URL") })
    })))
  )).pipe(Command.withDescription("Create Zulip's realm and user tables in DATABASE_URL if they do not exist"))

export const dbCommand = Command.make("db").pipe(
  Command.withDescription("Database commands"),
  Command.withSubcommands([migrate])
)
