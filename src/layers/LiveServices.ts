/**
 * The live services from the environment, as `node dist/main.js` runs them: RabbitMQ, SMTP (or the development
 * capture when `EMAIL_HOST` is unset), Postgres realms (or the realms file when `DATABASE_URL` is unset), the stats
 * and errors files, the template builder, and the SES suppression list (a no-op unless mail goes through SES).
 */
import { Config, Effect, Layer, Option } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import type { RealmRepository } from "../services/RealmRepository.ts"
import * as DevelopmentCapture from "./DevelopmentCapture.ts"
import * as ErrorsFile from "./ErrorsFile.ts"
import * as JsonFileRealmRepository from "./JsonFileRealmRepository.ts"
import * as PostgresRealmRepository from "./PostgresRealmRepository.ts"
import * as RabbitMqConnection from "./RabbitMqConnection.ts"
import * as RabbitMqConsumer from "./RabbitMqConsumer.ts"
import * as SesSuppressionList from "./SesSuppressionList.ts"
import * as SmtpPool from "./SmtpPool.ts"
import * as StatsFile from "./StatsFile.ts"
import * as WorkerSettingsFromEnv from "./WorkerSettingsFromEnv.ts"
import * as ZulipEmailBuilder from "./ZulipEmailBuilder.ts"

const isSet = (name: string) =>
  Config.option(Config.NonEmptyString(name)).pipe(Config.map(Option.isSome))

/** Whether emails are captured rather than sent: `EMAIL_HOST` is unset. */
export const capturesEmails: Config.Config<boolean> = isSet("EMAIL_HOST").pipe(Config.map((smtp) => !smtp))

/** Whether realms come from a database: `DATABASE_URL` is set. */
export const usesDatabase: Config.Config<boolean> = isSet("DATABASE_URL")

/** SMTP when `EMAIL_HOST` is set, else every email is captured to `EMAIL_LOG_DIR` (Zulip's development backend). */
export const SmtpLive = Layer.unwrap(Effect.gen(function*() {
  return (yield* capturesEmails) ? DevelopmentCapture.layerConfig : SmtpPool.layerConfig
}))

/** Zulip's tables when `DATABASE_URL` is set, else the `REALMS_FILE` (or no realms at all). */
export const RealmsLive = Layer.unwrap(Effect.gen(function*() {
  const layer: Layer.Layer<RealmRepository, Config.ConfigError | SqlError | JsonFileRealmRepository.RealmsFileError> =
    (yield* usesDatabase) ? PostgresRealmRepository.layerConfig : JsonFileRealmRepository.layerConfig
  return layer
}))

/**
 * Everything the worker and its operations endpoint use. `RabbitMqConnection` is the very connection the consumer
 * runs on (one layer value, so it is built once), exposed for readiness and metrics.
 */
export const WorkerServicesLive = Layer.mergeAll(
  WorkerSettingsFromEnv.layerConfig,
  RabbitMqConsumer.layerConfig,
  RabbitMqConnection.layerConfig,
  SmtpLive,
  SesSuppressionList.layerConfig,
  RealmsLive,
  StatsFile.layerConfig,
  ErrorsFile.layerConfig,
  ZulipEmailBuilder.layerConfig
)
