/** The pipeline settings from the environment; Zulip's values where Zulip has the setting (batching, retries). */
import { Config, Duration, Effect, Layer, Schema } from "effect"
import { defaultWorkerSettings as defaults, WorkerSettings } from "./WorkerSettings.ts"
import {
  CountSetting,
  DurationSetting,
  MaxEventBytesSetting,
  MaxEventDepthSetting,
  QueueNameSetting
} from "./settingValues.ts"

export const workerSettingsConfig = Config.all({
  queueName: QueueNameSetting,
  batchSize: CountSetting("BATCH_SIZE", 1).pipe(Config.withDefault(defaults.batchSize)),
  batchTimeout: DurationSetting("BATCH_TIMEOUT").pipe(Config.withDefault(defaults.batchTimeout)),
  concurrency: CountSetting("CONCURRENCY", 1).pipe(Config.withDefault(defaults.concurrency)),
  sendAttempts: CountSetting("SEND_ATTEMPTS", 1).pipe(Config.withDefault(defaults.sendAttempts)),
  retryBaseDelay: DurationSetting("RETRY_BASE_DELAY").pipe(Config.withDefault(defaults.retryBaseDelay)),
  retryMaxDelay: DurationSetting("RETRY_MAX_DELAY").pipe(Config.withDefault(defaults.retryMaxDelay)),
  maxRequestRetries: CountSetting("MAX_REQUEST_RETRIES", 0).pipe(Config.withDefault(defaults.maxRequestRetries)),
  requeueDelay: DurationSetting("REQUEUE_DELAY").pipe(Config.withDefault(defaults.requeueDelay)),
  maxConsumeTime: Config.schema(Schema.Finite.check(Schema.isGreaterThan(0)), "MAX_CONSUME_SECONDS").pipe(
    Config.map(Duration.seconds),
    Config.withDefault(defaults.maxConsumeTime)
  ),
  outageMaxDelay: DurationSetting("OUTAGE_MAX_DELAY").pipe(Config.withDefault(defaults.outageMaxDelay)),
  maxEventBytes: MaxEventBytesSetting,
  maxEventDepth: MaxEventDepthSetting,
  shutdownTimeout: DurationSetting("SHUTDOWN_TIMEOUT").pipe(Config.withDefault(defaults.shutdownTimeout))
})

export const layerConfig = Layer.effect(
  WorkerSettings,
  Effect.gen(function*() {
    return yield* workerSettingsConfig
  })
)
