import { Cause, Effect, Layer, Option, Redacted } from "effect"
import { Command } from "effect/cli"
import {
  AmqpUrlSetting,
  DatabaseUrlSetting,
  HttpHostSetting,
  HttpPortSetting,
  redactAmqpUrl,
  redactUrl
} from "../config/connectionSettings.ts"
import { QueueTypeSetting } from "../config/settingValues.ts"
import { capturesEmails, usesDatabase, workerLayerConfig } from "../app.ts"
import * as ErrorTracking from "../operations/ErrorTracking.ts"
import * as FailuresPage from "../operations/FailuresPage.ts"
import * as OperationsHttp from "../operations/OperationsHttp.ts"
import * as SesSuppressionList from "../smtp/SesSuppressionList.ts"
import * as SmtpPool from "../smtp/SmtpPool.ts"
import * as Tracing from "../operations/Tracing.ts"
import { workerSettingsConfig } from "../config/WorkerSettingsFromEnv.ts"
import * as ZulipEmailBuilder from "../email/ZulipEmailBuilder.ts"
import * as LiveLimits from "../limits/liveLimits.ts"
import { runWorker } from "../pipeline/worker.ts"
import { commandServices } from "./commandServices.ts"
import { withEnvironment } from "./environmentHelp.ts"
import { heapLimitMb, sizeWorkerHeap } from "./workerHeap.ts"

/**
 * One line with the effective configuration, logged before anything is opened: reading it checks the settings
 * (every URL, host and port among them), so a malformed one stops the worker before any other line. Passwords
 * appear only as `***`.
 */
const logEffectiveConfiguration = Effect.gen(function*() {
  const settings = yield* workerSettingsConfig
  const amqpUrl = yield* AmqpUrlSetting
  const smtpOptions = (yield* capturesEmails) ? null : yield* SmtpPool.optionsConfig
  const builder = yield* ZulipEmailBuilder.optionsConfig
  const realms = (yield* usesDatabase) ? redactUrl(Redacted.value(yield* DatabaseUrlSetting)) : "REALMS_FILE"
  const sesRegion = yield* SesSuppressionList.regionConfig
  const httpPort = yield* HttpPortSetting
  const httpHost = yield* HttpHostSetting
  const tracing = yield* Tracing.endpointConfig
  const limits = LiveLimits.describeLimits(yield* LiveLimits.limitsConfig)
  const sentryDsn = yield* ErrorTracking.dsnConfig
  const failuresPage = yield* FailuresPage.optionsConfig
  yield* Effect.logInfo("email-senders starting").pipe(Effect.annotateLogs({
    queue: settings.queueName,
    amqp: redactAmqpUrl(Redacted.value(amqpUrl)),
    queue_type: (yield* QueueTypeSetting),
    smtp: smtpOptions === null ? "development capture (EMAIL_HOST unset)" : `${smtpOptions.host}:${smtpOptions.port}`,
    templates: builder.templatesDir ?? "the shipped templates",
    realms,
    ses_suppression_list: sesRegion ?? "off",
    ...(sesRegion === null ? {} : { ses_endpoint: redactUrl((yield* SesSuppressionList.endpointConfig) ?? "the SDK's") }),
    operations_endpoint: httpPort === 0 ? "off" : `${httpHost}:${httpPort}`,
    failures_page: httpPort === 0 || Option.isNone(failuresPage) ? "off" : "on (OPERATIONS_TOKEN)",
    tracing: Option.match(tracing, { onNone: () => "off", onSome: (url) => redactUrl(url.href) }),
    error_tracking: Option.match(sentryDsn, { onNone: () => "off", onSome: (dsn) => `Sentry ${ErrorTracking.describeDsn(dsn)}` }),
    concurrency: settings.concurrency,
    send_attempts: settings.sendAttempts,
    max_request_retries: settings.maxRequestRetries,
    ...limits,
    heap_limit_mb: heapLimitMb()
  }))
})

/** A worker that stops on a failure (not SIGTERM) is reported to error tracking before it exits. */
const reportingCrashes = <A, E, R>(worker: Effect.Effect<A, E, R>) =>
  Effect.tapCause(worker, (cause) =>
    Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.flatMap(ErrorTracking.ErrorTracker, (tracker) => tracker.crashed(cause)))

/**
 * The worker on the live services from the environment, with its operations endpoint (`HTTP_PORT`) alongside: the
 * endpoint starts before the first delivery and closes after the worker has drained. First of all, the process
 * gets a heap that suits the worker (`workerHeap.ts`), which may restart it. Its log goes to stdout, unlike the
 * other commands'. Error tracking (`SENTRY_DSN`) outlives the worker's services, so what they report on the way
 * out is sent.
 */
export const runLiveWorker = sizeWorkerHeap.pipe(
  Effect.andThen(logEffectiveConfiguration),
  // provided here, so that no connection is opened before the process may be replaced
  Effect.andThen(runWorker.pipe(
    Effect.provide(OperationsHttp.layerConfig.pipe(Layer.provideMerge(workerLayerConfig))),
    reportingCrashes,
    Effect.provide(ErrorTracking.layerConfig)
  )),
  // the worker's log is its stdout
  Effect.provide(commandServices("stdout"))
)

export const workerCommand = Command.make("worker", {}, () => runLiveWorker).pipe(
  withEnvironment("Consume the queue and deliver emails until SIGTERM (the default command)", "worker")
)
