import { Context, Duration } from "effect"

/** The pipeline's own settings; each live layer reads its own connection settings. */
export interface WorkerSettingsShape {
  /** `QUEUE_NAME`: the queue consumed and the name of the stats and error files */
  readonly queueName: string
  /** `BATCH_SIZE` / `BATCH_TIMEOUT`: settled events are accounted in batches for the stats file, as Zulip does */
  readonly batchSize: number
  readonly batchTimeout: Duration.Duration
  /** `CONCURRENCY`: events processed at once (SMTP concurrency is bounded separately by the connection pool) */
  readonly concurrency: number
  /** `SEND_ATTEMPTS`: attempts per delivery for transient errors before the event is requeued */
  readonly sendAttempts: number
  /** `RETRY_BASE_DELAY` / `RETRY_MAX_DELAY`: the exponential backoff between those attempts, and its cap */
  readonly retryBaseDelay: Duration.Duration
  readonly retryMaxDelay: Duration.Duration
  /** `MAX_REQUEST_RETRIES`: requeues before the event is recorded as failed (Zulip: 3) */
  readonly maxRequestRetries: number
  /** `REQUEUE_DELAY`: wait before a requeued event comes back; doubles with each try */
  readonly requeueDelay: Duration.Duration
  /** `MAX_CONSUME_SECONDS`: deadline of one attempt, so a stuck send cannot hold an event forever */
  readonly maxConsumeTime: Duration.Duration
  /** `OUTAGE_MAX_DELAY`: the longest wait between checks while SMTP or the database is down */
  readonly outageMaxDelay: Duration.Duration
  /** `MAX_EVENT_BYTES`: a bigger body is refused as `InvalidEvent` (no email needs a megabyte of context) */
  readonly maxEventBytes: number
  /** `MAX_EVENT_DEPTH`: a body nested deeper is refused as `InvalidEvent` right after parsing */
  readonly maxEventDepth: number
  /** `SHUTDOWN_TIMEOUT`: on SIGTERM, how long in-flight emails may take to finish (under a supervisor's 30 s) */
  readonly shutdownTimeout: Duration.Duration
}

export const defaultWorkerSettings: WorkerSettingsShape = {
  queueName: "email_senders",
  batchSize: 100,
  batchTimeout: Duration.seconds(1),
  concurrency: 32,
  sendAttempts: 3,
  retryBaseDelay: Duration.seconds(1),
  retryMaxDelay: Duration.seconds(30),
  maxRequestRetries: 3,
  requeueDelay: Duration.seconds(30),
  maxConsumeTime: Duration.seconds(30),
  outageMaxDelay: Duration.seconds(30),
  maxEventBytes: 512 * 1024,
  maxEventDepth: 64,
  shutdownTimeout: Duration.seconds(25)
}

/** Settings of the consume pipeline, defaulting to Zulip's values; `config/WorkerSettingsFromEnv.ts` reads them. */
export const WorkerSettings = Context.Reference<WorkerSettingsShape>("email-senders/WorkerSettings", {
  defaultValue: () => defaultWorkerSettings
})
