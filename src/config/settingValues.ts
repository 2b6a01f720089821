/** Config readers shared by every layer's settings. */
import { Config, Duration, Schema } from "effect"
import { hostWithoutPort } from "../domain/addresses.ts"
import { defaultWorkerSettings } from "./WorkerSettings.ts"

/** A duration: a plain number of seconds (Zulip's style, `EMAIL_TIMEOUT=15`) or a string like `500 millis`. */
export const DurationSetting = (name: string): Config.Config<Duration.Duration> =>
  Config.Number(name).pipe(
    Config.map(Duration.seconds),
    Config.orElse(() => Config.Duration(name))
  )

/** A whole number of at least `minimum`; anything else fails at start naming the setting. */
export const CountSetting = (name: string, minimum: number): Config.Config<number> =>
  Config.schema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(minimum)), name)

/** `MAX_EVENT_BYTES`: the largest body taken, and the most of a refused body a failure record keeps. */
export const MaxEventBytesSetting: Config.Config<number> = CountSetting("MAX_EVENT_BYTES", 1).pipe(
  Config.withDefault(defaultWorkerSettings.maxEventBytes)
)

/**
 * `MAX_EVENT_DEPTH`: the deepest nesting an event may have. At most 1,000: the stages after parsing recurse (the
 * schema, the Message-ID hash, JSON.stringify for requeues and failure records) and overflow the stack a few
 * thousand levels down.
 */
export const MaxEventDepthSetting: Config.Config<number> = Config.schema(
  Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 })),
  "MAX_EVENT_DEPTH"
).pipe(Config.withDefault(defaultWorkerSettings.maxEventDepth))

/**
 * `COMMAND_TIMEOUT`: how long an operator command (`publish`, `replay`, `stats`, each step of `check`) waits on the
 * broker or another service before it gives up with the reason.
 */
export const CommandTimeoutSetting: Config.Config<Duration.Duration> = DurationSetting("COMMAND_TIMEOUT").pipe(
  Config.withDefault(Duration.seconds(10))
)

/** `QUEUE_NAME`: the queue consumed, and the name of the stats and errors files. */
export const QueueNameSetting: Config.Config<string> = Config.NonEmptyString("QUEUE_NAME").pipe(
  Config.withDefault("email_senders")
)

/** `QUEUE_STATS_DIR`: where `<queue>.stats` is written (Zulip: /var/log/zulip/queue_stats). */
export const StatsDirectorySetting: Config.Config<string> = Config.String("QUEUE_STATS_DIR").pipe(
  Config.withDefault("var/queue_stats")
)

/** `QUEUE_ERROR_DIR`: where `<queue>.errors` is written (Zulip: /var/log/zulip/queue_error). */
export const ErrorsDirectorySetting: Config.Config<string> = Config.String("QUEUE_ERROR_DIR").pipe(
  Config.withDefault("var/queue_error")
)

/** `EMAIL_LOG_DIR`: where the development capture writes each email. */
export const EmailLogDirectorySetting: Config.Config<string> = Config.String("EMAIL_LOG_DIR").pipe(
  Config.withDefault("var/emails")
)

/** The right-hand side of the Message-IDs the worker makes: `EXTERNAL_HOST` (default `localhost`) without its port. */
export const MessageIdHostSetting: Config.Config<string> = Config.String("EXTERNAL_HOST").pipe(
  Config.withDefault("localhost"),
  Config.map(hostWithoutPort)
)

/** `QUEUE_TYPE`: how the worker declares its queues: `classic` (Zulip's declaration) or `quorum` (replicated). */
export const QueueTypeSetting: Config.Config<"classic" | "quorum"> = Config.schema(
  Schema.Literals(["classic", "quorum"]),
  "QUEUE_TYPE"
).pipe(Config.withDefault("classic" as const))

/**
 * `QUEUE_DELIVERY_LIMIT`: with `QUEUE_TYPE=quorum`, the broker's `x-delivery-limit`: a message handed back this many
 * times without being settled (a poison message that crashes the worker) is dead-lettered to `<queue>.dead`.
 */
export const QueueDeliveryLimitSetting: Config.Config<number> = CountSetting("QUEUE_DELIVERY_LIMIT", 1).pipe(
  Config.withDefault(20)
)
