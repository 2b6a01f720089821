import { Config, Effect, Layer, Option, Redacted } from "effect"
import { Command } from "effect/cli"
import { WorkerServicesLive } from "../layers/LiveServices.ts"
import * as Logging from "../layers/Logging.ts"
import * as OperationsHttp from "../layers/OperationsHttp.ts"
import { redactUrl } from "../layers/RabbitMqConnection.ts"
import * as SesSuppressionList from "../layers/SesSuppressionList.ts"
import { workerSettingsConfig } from "../layers/WorkerSettingsFromEnv.ts"
import { runWorker } from "../programs/worker.ts"
import { heapLimitMb, sizeWorkerHeap } from "./workerHeap.ts"

/** One line with the effective configuration; secrets appear only as `<redacted>`. */
const logEffectiveConfiguration = Effect.gen(function*() {
  const settings = yield* workerSettingsConfig
  const amqpUrl = yield* Config.Redacted("AMQP_URL").pipe(Config.option)
  const emailHost = yield* Config.option(Config.NonEmptyString("EMAIL_HOST"))
  const databaseUrl = yield* Config.option(Config.Redacted("DATABASE_URL"))
  const sesRegion = yield* SesSuppressionList.regionConfig
  yield* Effect.logInfo("email-senders starting").pipe(Effect.annotateLogs({
    queue: settings.queueName,
    amqp: Option.match(amqpUrl, { onNone: () => "amqp://127.0.0.1:5672 (default)", onSome: (url) => redactUrl(Redacted.value(url)) }),
    smtp: Option.getOrElse(emailHost, () => "development capture (EMAIL_HOST unset)"),
    realms: Option.match(databaseUrl, { onNone: () => "REALMS_FILE", onSome: (url) => redactUrl(Redacted.value(url)) }),
    ses_suppression_list: sesRegion ?? "off",
    concurrency: settings.concurrency,
    send_attempts: settings.sendAttempts,
    max_request_retries: settings.maxRequestRetries,
    heap_limit_mb: heapLimitMb()
  }))
})

/**
 * The worker on the live services from the environment, with its operations endpoint (`HTTP_PORT`) alongside: the
 * endpoint starts before the first delivery and closes after the worker has drained. First of all, the process
 * gets a heap that suits the worker (`workerHeap.ts`), which may restart it. Its log goes to stdout, unlike the
 * other commands'.
 */
export const runLiveWorker = Effect.andThen(
  sizeWorkerHeap,
  // provided here, so that no connection is opened before the process may be replaced
  logEffectiveConfiguration.pipe(
    Effect.andThen(runWorker),
    Effect.provide(OperationsHttp.layerConfig.pipe(Layer.provideMerge(WorkerServicesLive)))
  )
).pipe(Effect.provide(Logging.layerConfig("stdout")))

export const workerCommand = Command.make("worker", {}, () => runLiveWorker).pipe(Command.withDescription("Consume the queue and deliver emails until SIGTERM (the default command)"))
