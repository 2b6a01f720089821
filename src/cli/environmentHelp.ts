/**
 * The environment variables each command reads, named at the end of its `--help` (README's Configuration table
 * says what each one means). test/documentation.test.ts checks that together they hold every setting read under
 * `src/`.
 */
import { Command } from "effect/cli"

/** Read by every command (main.ts): its log and its spans. */
const everyCommand = [
  "LOG_LEVEL",
  "LOG_FORMAT",
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_SERVICE_NAME",
  "OTEL_EXPORTER_OTLP_HEADERS"
]

const broker = ["AMQP_URL", "QUEUE_NAME"]

/** How the worker and the publishing commands declare the queues. */
const queueDeclaration = ["QUEUE_TYPE", "QUEUE_DELIVERY_LIMIT"]

/** How long an operator command waits on the broker (or, for `check`, on each step). */
const commandTimeout = ["COMMAND_TIMEOUT"]

/** What `publish` and `replay` read to check and enqueue an event. */
const publishing = [...broker, ...queueDeclaration, "EXTERNAL_HOST", "MAX_EVENT_DEPTH"]

const realms = ["DATABASE_URL", "REALMS_FILE"]

/** The email builder's settings: templates, catalogs and Zulip's addresses. */
const emailBuilder = [
  "TEMPLATES_DIR",
  "TEMPLATES_RELOAD",
  "LOCALE_DIR",
  "EMAIL_IMAGES_BASE_URL",
  "EXTERNAL_HOST",
  "NOREPLY_EMAIL_ADDRESS",
  "TOKENIZED_NOREPLY_EMAIL_ADDRESS",
  "ADD_TOKENS_TO_NOREPLY_ADDRESS",
  "ZULIP_ADMINISTRATOR",
  "PHYSICAL_ADDRESS"
]

const smtp = [
  "EMAIL_HOST",
  "EMAIL_PORT",
  "EMAIL_HOST_USER",
  "EMAIL_HOST_PASSWORD",
  "EMAIL_USE_TLS",
  "EMAIL_USE_SSL",
  "EMAIL_TLS_INSECURE",
  "EMAIL_TIMEOUT",
  "SMTP_CONNECTIONS",
  "SMTP_MAX_RECIPIENTS",
  "SMTP_IDLE_CHECK",
  "EMAIL_MAX_CONNECTION_LIFETIME",
  "EMAIL_LOG_DIR"
]

const sesSuppressionList = [
  "SES_SUPPRESSION_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_ENDPOINT_URL_SESV2",
  "AWS_ENDPOINT_URL"
]

const pipeline = [
  "PREFETCH",
  "CONCURRENCY",
  "BATCH_SIZE",
  "BATCH_TIMEOUT",
  "SEND_ATTEMPTS",
  "RETRY_BASE_DELAY",
  "RETRY_MAX_DELAY",
  "MAX_REQUEST_RETRIES",
  "REQUEUE_DELAY",
  "MAX_CONSUME_SECONDS",
  "OUTAGE_MAX_DELAY",
  "MAX_EVENT_BYTES",
  "MAX_EVENT_DEPTH",
  "SHUTDOWN_TIMEOUT",
  "QUEUE_STATS_DIR",
  "QUEUE_ERROR_DIR"
]

/** The sending limits and the duplicate ledger (src/limits/). */
const limits = [
  "EMAIL_RATE_LIMIT",
  "RATE_LIMIT_DOMAINS",
  "REDIS_URL",
  "REDIS_KEY_PREFIX",
  "REDIS_OUTAGE",
  "DEDUPE_STORE",
  "DEDUPE_TTL"
]

const operationsEndpoint = ["HTTP_PORT", "HTTP_HOST", "HTTP_ALLOWED_HOSTS", "READY_SMTP_CHECK_AGE", "OPERATIONS_TOKEN"]

/** The worker's error tracking (operations/ErrorTracking.ts). */
const errorTracking = ["SENTRY_DSN", "SENTRY_ENVIRONMENT", "SENTRY_RELEASE", "SENTRY_TRACES_SAMPLE_RATE"]

/** The worker process's heap (workerHeap.ts). */
const heap = ["NODE_OPTIONS", "MALLOC_ARENA_MAX"]

const unique = (...groups: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => [...new Set(groups.flat())]

const workerEnvironment = unique(
  broker,
  queueDeclaration,
  pipeline,
  smtp,
  limits,
  sesSuppressionList,
  realms,
  emailBuilder,
  operationsEndpoint,
  errorTracking,
  heap,
  everyCommand
)

/** Per command path (`db migrate` as "db migrate"), the variables it reads. */
export const environmentOf = {
  worker: workerEnvironment,
  publish: unique(publishing, commandTimeout, everyCommand),
  replay: unique(publishing, commandTimeout, everyCommand),
  stats: unique(broker, ["QUEUE_STATS_DIR"], commandTimeout, everyCommand),
  check: unique(workerEnvironment, commandTimeout),
  render: unique(["MAX_EVENT_DEPTH"], emailBuilder, realms, everyCommand),
  "db migrate": unique(["DATABASE_URL"], everyCommand),
  "templates check": unique(["TEMPLATES_DIR"], everyCommand),
  "move-queue": unique(broker, queueDeclaration, ["REQUEUE_DELAY", "MAX_REQUEST_RETRIES"], commandTimeout, everyCommand)
} as const

/**
 * Describe a command: `description` in its parent's list of subcommands, and followed by the variables it reads in
 * its own `--help`.
 */
export const withEnvironment = (description: string, command: keyof typeof environmentOf) =>
<const Name extends string, Input, E, R, ContextInput>(
  self: Command.Command<Name, Input, ContextInput, E, R>
): Command.Command<Name, Input, ContextInput, E, R> =>
  self.pipe(
    Command.withShortDescription(description),
    Command.withDescription(
      `${description}.\n\nEnvironment: ${environmentOf[command].join(", ")} (see README, "Configuration")`
    )
  )
