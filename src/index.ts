/**
 * email-senders as a library: the event schema and errors, the service interfaces, the pipeline programs, and
 * every layer (live and in-memory), so an Effect app can embed the worker or test against the fakes.
 */

// domain
export * from "./domain/EmailEvent.ts"
export * from "./domain/errors.ts"
export type * from "./domain/OutgoingEmail.ts"
export { type Realm, RealmRow, type User, UserRow, usersInOrder } from "./domain/Realm.ts"
export { messageIdFor } from "./domain/MessageId.ts"

// ports (the service interfaces)
export { EmailBuilder, type BuildRequest } from "./email/EmailBuilder.ts"
export { FailureStore, type FailureReason, type FailureRecord } from "./records/FailureStore.ts"
export { QueueConsumer, type Delivery } from "./queue/QueueConsumer.ts"
export { QueuePublisher } from "./queue/QueuePublisher.ts"
export { RealmRepository } from "./realms/RealmRepository.ts"
export { SmtpConnection } from "./smtp/SmtpConnection.ts"
export { SmtpStatus, type SmtpStatusSnapshot } from "./smtp/SmtpStatus.ts"
export { StatsWriter, type QueueStats } from "./records/StatsWriter.ts"
export { SuppressionList } from "./smtp/SuppressionList.ts"
export { defaultWorkerSettings, WorkerSettings, type WorkerSettingsShape } from "./config/WorkerSettings.ts"
export { RedisStatus, type RedisStatusSnapshot } from "./limits/RedisStatus.ts"
export { isThrottled, isThrottlingReply } from "./domain/throttling.ts"

// the pipeline and the programs beside it
export { type ConsumeServices, consumeBatch, type Outcome, settleDelivery, type Settlement } from "./pipeline/settleDelivery.ts"
export { migrateDatabase } from "./realms/migrateDatabase.ts"
export { type ConsumedBatch, makeQueueStatistics, type QueueStatistics } from "./pipeline/queueStatistics.ts"
export * as QueueHealth from "./records/queueHealth.ts"
export * as ReplayFailures from "./records/replayFailures.ts"
export {
  isRetriedInProcess,
  outageSchedule,
  requeueDelay,
  sendRetrySchedule
} from "./pipeline/retryPolicy.ts"
export { withAttemptDeadline } from "./pipeline/attemptDeadline.ts"
export {
  buildEmail,
  type Delivered,
  type DeliveryAnnotations,
  deliveryAnnotations,
  deliverEvent,
  sendEmail,
  type SentEmail,
  type Undelivered
} from "./pipeline/deliverEvent.ts"
export * as Metrics from "./pipeline/metrics.ts"
export { runWorker } from "./pipeline/worker.ts"

// live adapters and the composition
export * as ConnectionSettings from "./config/connectionSettings.ts"
export * as DevelopmentCapture from "./smtp/DevelopmentCapture.ts"
export * as ErrorsFile from "./records/ErrorsFile.ts"
export * as ErrorTracking from "./operations/ErrorTracking.ts"
export * as FailureListing from "./records/failureListing.ts"
export * as JsonFileRealmRepository from "./realms/JsonFileRealmRepository.ts"
export * as App from "./app.ts"
/** @deprecated since 0.2: the live composition is `App` */
export * as LiveServices from "./app.ts"
export * as Logging from "./operations/Logging.ts"
export * as OperationsHttp from "./operations/OperationsHttp.ts"
export * as RateLimitedSmtp from "./limits/RateLimitedSmtp.ts"
export * as RateLimiterStore from "./limits/RateLimiterStore.ts"
export * as RedisConnection from "./limits/RedisConnection.ts"
export * as SentLedger from "./limits/SentLedger.ts"
export * as LiveLimits from "./limits/liveLimits.ts"
export * as PostgresRealmRepository from "./realms/PostgresRealmRepository.ts"
export * as RabbitMqConnection from "./queue/RabbitMqConnection.ts"
export * as RabbitMqConsumer from "./queue/RabbitMqConsumer.ts"
export * as RabbitMqPublisher from "./queue/RabbitMqPublisher.ts"
export * as SesSuppressionList from "./smtp/SesSuppressionList.ts"
export * as SmtpPool from "./smtp/SmtpPool.ts"
export * as StatsFile from "./records/StatsFile.ts"
export * as Tracing from "./operations/Tracing.ts"
export * as Translations from "./email/Translations.ts"
export { checkTemplates } from "./email/TemplateRenderer.ts"
export * as WorkerSettingsFromEnv from "./config/WorkerSettingsFromEnv.ts"
export * as ZulipEmailBuilder from "./email/ZulipEmailBuilder.ts"

// in-memory doubles, for tests
export * as InMemoryEmailBuilder from "./email/InMemoryEmailBuilder.ts"
export { InMemoryFailures } from "./records/InMemoryFailureStore.ts"
export { InMemoryQueue, type Requeued } from "./queue/InMemoryQueue.ts"
export { InMemoryRealms } from "./realms/InMemoryRealmRepository.ts"
export { InMemorySmtp, type ScriptedSmtpFailure } from "./smtp/InMemorySmtp.ts"
export { InMemoryStats } from "./records/InMemoryStatsWriter.ts"
export { InMemorySuppressionList } from "./smtp/InMemorySuppressionList.ts"
