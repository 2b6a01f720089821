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

// services (interfaces)
export { EmailBuilder, type BuildRequest } from "./services/EmailBuilder.ts"
export { FailureStore, type FailureReason, type FailureRecord } from "./services/FailureStore.ts"
export { QueueConsumer, type Delivery } from "./services/QueueConsumer.ts"
export { QueuePublisher } from "./services/QueuePublisher.ts"
export { RealmRepository } from "./services/RealmRepository.ts"
export { SmtpConnection } from "./services/SmtpConnection.ts"
export { SmtpStatus, type SmtpStatusSnapshot } from "./services/SmtpStatus.ts"
export { StatsWriter, type QueueStats } from "./services/StatsWriter.ts"
export { SuppressionList } from "./services/SuppressionList.ts"
export { defaultWorkerSettings, WorkerSettings, type WorkerSettingsShape } from "./services/WorkerSettings.ts"

// programs
export { type ConsumeServices, consumeBatch, type Outcome, settleDelivery, type Settlement } from "./programs/consumeBatch.ts"
export { migrateDatabase } from "./programs/migrateDatabase.ts"
export { type ConsumedBatch, makeQueueStatistics, type QueueStatistics } from "./programs/queueStatistics.ts"
export * as QueueHealth from "./programs/queueHealth.ts"
export * as ReplayFailures from "./programs/replayFailures.ts"
export {
  isRetriedInProcess,
  outageSchedule,
  requeueDelay,
  sendRetrySchedule
} from "./programs/retryPolicy.ts"
export { withAttemptDeadline } from "./programs/attemptDeadline.ts"
export {
  buildEmail,
  type Delivered,
  type DeliveryAnnotations,
  deliveryAnnotations,
  deliverEvent,
  sendEmail,
  type SentEmail,
  type Undelivered
} from "./programs/sendEmail.ts"
export * as Metrics from "./programs/metrics.ts"
export { runWorker } from "./programs/worker.ts"

// live layers
export * as ConnectionSettings from "./layers/connectionSettings.ts"
export * as DevelopmentCapture from "./layers/DevelopmentCapture.ts"
export * as ErrorsFile from "./layers/ErrorsFile.ts"
export * as JsonFileRealmRepository from "./layers/JsonFileRealmRepository.ts"
export * as LiveServices from "./layers/LiveServices.ts"
export * as Logging from "./layers/Logging.ts"
export * as OperationsHttp from "./layers/OperationsHttp.ts"
export * as PostgresRealmRepository from "./layers/PostgresRealmRepository.ts"
export * as RabbitMqConnection from "./layers/RabbitMqConnection.ts"
export * as RabbitMqConsumer from "./layers/RabbitMqConsumer.ts"
export * as RabbitMqPublisher from "./layers/RabbitMqPublisher.ts"
export * as SesSuppressionList from "./layers/SesSuppressionList.ts"
export * as SmtpPool from "./layers/SmtpPool.ts"
export * as StatsFile from "./layers/StatsFile.ts"
export * as Tracing from "./layers/Tracing.ts"
export * as Translations from "./layers/Translations.ts"
export { checkTemplates } from "./layers/TemplateRenderer.ts"
export * as WorkerSettingsFromEnv from "./layers/WorkerSettingsFromEnv.ts"
export * as ZulipEmailBuilder from "./layers/ZulipEmailBuilder.ts"

// in-memory layers, for tests
export * as InMemoryEmailBuilder from "./layers/InMemoryEmailBuilder.ts"
export { InMemoryFailures } from "./layers/InMemoryFailureStore.ts"
export { InMemoryQueue, type Requeued } from "./layers/InMemoryQueue.ts"
export { InMemoryRealms } from "./layers/InMemoryRealmRepository.ts"
export { InMemorySmtp, type ScriptedSmtpFailure } from "./layers/InMemorySmtp.ts"
export { InMemoryStats } from "./layers/InMemoryStatsWriter.ts"
export { InMemorySuppressionList } from "./layers/InMemorySuppressionList.ts"
