/**
 * The live composition: the services from the environment, as `node dist/main.js` runs them: RabbitMQ, SMTP (or
 * the development capture when `EMAIL_HOST` is unset), Postgres realms (or the realms file when `DATABASE_URL` is
 * unset), the stats and errors files, the template builder, and the SES suppression list (a no-op unless mail goes
 * through SES).
 */
import { Config, Effect, Layer, Option } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import type { RealmRepository } from "./realms/RealmRepository.ts"
import * as DevelopmentCapture from "./smtp/DevelopmentCapture.ts"
import * as ErrorsFile from "./records/ErrorsFile.ts"
import * as JsonFileRealmRepository from "./realms/JsonFileRealmRepository.ts"
import * as LiveLimits from "./limits/liveLimits.ts"
import * as PostgresRealmRepository from "./realms/PostgresRealmRepository.ts"
import * as RabbitMqConnection from "./queue/RabbitMqConnection.ts"
import * as RabbitMqConsumer from "./queue/RabbitMqConsumer.ts"
import * as SesSuppressionList from "./smtp/SesSuppressionList.ts"
import * as SmtpPool from "./smtp/SmtpPool.ts"
import * as StatsFile from "./records/StatsFile.ts"
import * as WorkerSettingsFromEnv from "./config/WorkerSettingsFromEnv.ts"
import * as ZulipEmailBuilder from "./email/ZulipEmailBuilder.ts"

const isSet = (name: string) =>
  Config.option(Config.NonEmptyString(name)).pipe(Config.map(Option.isSome))

/** Whether emails are captured rather than sent: `EMAIL_HOST` is unset. */
export const capturesEmails: Config.Config<boolean> = isSet("EMAIL_HOST").pipe(Config.map((smtp) => !smtp))

/** Whether realms come from a database: `DATABASE_URL` is set. */
export const usesDatabase: Config.Config<boolean> = isSet("DATABASE_URL")

/**
 * SMTP when `EMAIL_HOST` is set, else every email is captured to `EMAIL_LOG_DIR` (Zulip's development backend);
 * within `EMAIL_RATE_LIMIT` and with the duplicate ledger when they are configured (`limits/liveLimits.ts`).
 */
export const smtpLayerConfig = LiveLimits.layerConfig(Layer.unwrap(Effect.gen(function*() {
  return (yield* capturesEmails) ? DevelopmentCapture.layerConfig : SmtpPool.layerConfig
})))

/** Zulip's tables when `DATABASE_URL` is set, else the `REALMS_FILE` (or no realms at all). */
export const realmsLayerConfig = Layer.unwrap(Effect.gen(function*() {
  const layer: Layer.Layer<RealmRepository, Config.ConfigError | SqlError | JsonFileRealmRepository.RealmsFileError> =
    (yield* usesDatabase) ? PostgresRealmRepository.layerConfig : JsonFileRealmRepository.layerConfig
  return layer
}))

/**
 * Everything the worker and its operations endpoint use. `RabbitMqConnection` is the very connection the consumer
 * runs on (one layer value, so it is built once), exposed for readiness and metrics.
 */
export const workerLayerConfig = Layer.mergeAll(
  WorkerSettingsFromEnv.layerConfig,
  RabbitMqConsumer.layerConfig,
  RabbitMqConnection.layerConfig,
  smtpLayerConfig,
  SesSuppressionList.layerConfig,
  realmsLayerConfig,
  StatsFile.layerConfig,
  ErrorsFile.layerConfig,
  ZulipEmailBuilder.layerConfig
)

/** @deprecated since 0.2: use `smtpLayerConfig` (Effect 4 names layers for what they read, not `*Live`) */
export const SmtpLive = smtpLayerConfig
/** @deprecated since 0.2: use `realmsLayerConfig` */
export const RealmsLive = realmsLayerConfig
/** @deprecated since 0.2: use `workerLayerConfig` */
export const WorkerServicesLive = workerLayerConfig
