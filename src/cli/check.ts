/**
 * `email-senders check`: is this deployment ready to send? Each thing the worker needs, in order, printed as ✓ or ✗
 * with what was checked and, for ✗, the fix (the setting or the command). Every step gives up after
 * `COMMAND_TIMEOUT`. Exit 0 only when every check passes, so it can gate a start (`ExecStartPre=`).
 */
import { PgClient } from "@effect/sql-pg"
import type { ChannelModel } from "amqplib"
import { Config, Console, Duration, Effect, FileSystem, Layer, Logger, Option, Redacted, Schema, type Scope } from "effect"
import * as Redis from "effect/persistence/Redis"
import { Command } from "effect/cli"
import { SqlClient } from "effect/sql"
import { join, resolve } from "node:path"
import type { QueueError } from "../domain/errors.ts"
import * as JsonFileRealmRepository from "../realms/JsonFileRealmRepository.ts"
import { capturesEmails, usesDatabase } from "../app.ts"
import * as ErrorTracking from "../operations/ErrorTracking.ts"
import * as OperationsHttp from "../operations/OperationsHttp.ts"
import { neededColumns } from "../realms/PostgresRealmRepository.ts"
import { AmqpUrlSetting, DatabaseUrlSetting, redactAmqpUrl, redactUrl } from "../config/connectionSettings.ts"
import * as RabbitMq from "../queue/RabbitMqConnection.ts"
import { declarationConfig, declareDelayQueue, delayMillisOf, prefetchConfig } from "../queue/RabbitMqConsumer.ts"
import * as SesSuppressionList from "../smtp/SesSuppressionList.ts"
import {
  CommandTimeoutSetting,
  EmailLogDirectorySetting,
  ErrorsDirectorySetting,
  StatsDirectorySetting
} from "../config/settingValues.ts"
import * as SmtpPool from "../smtp/SmtpPool.ts"
import { checkServer } from "../smtp/smtpSession.ts"
import { checkTemplates } from "../email/TemplateRenderer.ts"
import { makeCatalogs } from "../email/Translations.ts"
import { workerSettingsConfig } from "../config/WorkerSettingsFromEnv.ts"
import * as TemplateDirectories from "../email/templateDirectories.ts"
import * as ZulipEmailBuilder from "../email/ZulipEmailBuilder.ts"
import { requeueDelays } from "../pipeline/retryPolicy.ts"
import { withEnvironment } from "./environmentHelp.ts"
import { describeFailure } from "./reportFailure.ts"
import { problemLine } from "./templates.ts"
import { limitsConfig } from "../limits/liveLimits.ts"
import { loadNodeRedis } from "../limits/RedisConnection.ts"

/** Ends `check` with exit 1 once every line is printed. */
export class ChecksFailed extends Schema.TaggedError<ChecksFailed>()("ChecksFailed", {
  message: Schema.String,
  failed: Schema.Int
}) {}

interface Outcome {
  readonly ok: boolean
  /** what was checked and found */
  readonly detail: string
  /** for ✗: the setting or the command that fixes it */
  readonly fix?: string
}

const passed = (detail: string): Outcome => ({ ok: true, detail })
const failed = (detail: string, fix: string): Outcome => ({ ok: false, detail, fix })

/**
 * Everything the worker reads at start, so that a bad value is reported before anything is contacted (some, such as
 * `prefetch` or `http`, are read only for that).
 */
const settingsConfig = Config.all({
  worker: workerSettingsConfig,
  commandTimeout: CommandTimeoutSetting,
  amqpUrl: AmqpUrlSetting,
  prefetch: prefetchConfig,
  declaration: declarationConfig,
  http: OperationsHttp.optionsConfig,
  sentry: ErrorTracking.optionsConfig,
  sesRegion: SesSuppressionList.regionConfig,
  builder: ZulipEmailBuilder.optionsConfig,
  smtp: capturesEmails.pipe(
    Config.flatMap((captures) => captures ? Config.succeed(undefined) : SmtpPool.optionsConfig)
  ),
  captureDirectory: EmailLogDirectorySetting,
  databaseUrl: usesDatabase.pipe(
    Config.flatMap((database) => database ? DatabaseUrlSetting : Config.succeed(undefined))
  ),
  realmsFile: JsonFileRealmRepository.pathConfig,
  statsDirectory: StatsDirectorySetting,
  errorsDirectory: ErrorsDirectorySetting,
  limits: limitsConfig
})

type Settings = Config.Success<typeof settingsConfig> & { readonly directories: TemplateDirectories.Directories }

// ---- the broker ---------------------------------------------------------------------------------------------------

/** What went wrong connecting, in the broker's words when it refused, and what fixes it. */
const brokerFailure = (error: QueueError, url: string): { readonly message: string; readonly fix: string } => {
  const refusal = RabbitMq.amqpRefusal(error, url)
  return refusal === undefined
    ? { message: error.message, fix: "AMQP_URL (is RabbitMQ running and reachable at that address?)" }
    : { message: `refused: ${refusal.reason}`, fix: refusal.setting }
}

/** A connection of its own to the first node that answers, as `stats` opens, closed when the check ends. */
const openBroker = (
  url: Redacted.Redacted<string>,
  timeout: Duration.Duration
): Effect.Effect<{ readonly connection: ChannelModel; readonly node: string }, QueueError, Scope.Scope> =>
  Effect.acquireRelease(RabbitMq.connectToFirstNode(url, timeout), ({ connection }) => RabbitMq.closeQuietly(connection))

/** The queue's type, as the broker's answers to declarations tell it. */
const queueType = (connection: ChannelModel, queue: string): Effect.Effect<string> =>
  RabbitMq.existingQueueType(connection, queue).pipe(
    Effect.map((type) => type ?? "not told (it has other arguments)"),
    Effect.catch(() => Effect.succeed("not told"))
  )

const queueCheck = (connection: ChannelModel, queue: string, declaration: RabbitMq.QueueDeclaration) =>
  Effect.gen(function*() {
    yield* RabbitMq.declareQueue(connection, queue, declaration)
    const type = yield* queueType(connection, queue)
    const { consumerCount, messageCount } = yield* RabbitMq.withScratchChannel(
      connection,
      `check queue ${queue}`,
      (channel) => channel.checkQueue(queue)
    )
    return passed(`${queue}: declared, durable, type ${type}; ${messageCount} message(s) ready, ${consumerCount} consumer(s)`)
  }).pipe(
    Effect.catch((error) =>
      Effect.succeed(
        failed(
          error.message,
          RabbitMq.isFatal(error) ? "QUEUE_TYPE" : "QUEUE_NAME, or the user's permissions on the vhost (configure, write, read)"
        )
      )
    )
  )

const delayQueuesCheck = (connection: ChannelModel, settings: Settings) =>
  Effect.gen(function*() {
    const queue = settings.worker.queueName
    const delays = [...new Set(requeueDelays(settings.worker).map(delayMillisOf))].filter((millis) => millis > 0)
    if (delays.length === 0) return passed("none: MAX_REQUEST_RETRIES or REQUEUE_DELAY is 0, so requeues go straight back")
    const names = yield* Effect.forEach(delays, (millis) => declareDelayQueue(connection, queue, millis, settings.declaration.type))
    return passed(`${names.join(", ")} exist (each dead-letters into ${queue} after its delay)`)
  }).pipe(
    Effect.catch((error) =>
      Effect.succeed(
        failed(error.message, `delete the delay queue that has other arguments (rabbitmqctl delete_queue <name>), or REQUEUE_DELAY`)
      )
    )
  )

// ---- SMTP, realms, templates, catalogs, directories ---------------------------------------------------------------

const smtpCheck = (settings: Settings): Effect.Effect<Outcome> => {
  const smtp = settings.smtp
  if (smtp === undefined) {
    return Effect.succeed(passed(
      `EMAIL_HOST unset: development capture to ${resolve(settings.captureDirectory)}, nothing is sent (no server to check)`
    ))
  }
  return checkServer(smtp).pipe(
    Effect.map(passed),
    Effect.catch((error) => {
      switch (error._tag) {
        case "DnsError":
          return Effect.succeed(failed(error.message, "EMAIL_HOST (the name does not resolve)"))
        case "Unavailable":
          return Effect.succeed(
            error.refusal === undefined
              ? failed(
                error.message,
                "EMAIL_HOST / EMAIL_PORT (is the SMTP server running there?), EMAIL_USE_TLS / EMAIL_USE_SSL (what it " +
                  "offers), EMAIL_TIMEOUT (how long it may take to answer)"
              )
              : failed(`${smtp.host}:${smtp.port ?? 25} refused: ${error.refusal.reason}`, error.refusal.setting)
          )
      }
    })
  )
}

/** The tables and columns the realm lookups read, in the schemas on the search path. */
const databaseCheck = (url: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tables = Object.keys(neededColumns)
    const rows = yield* sql<{ readonly table_name: string; readonly column_name: string }>`
      SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = ANY (current_schemas(false)) AND ${sql.in("table_name", tables)}`
    const present = new Set(rows.map((row) => `${row.table_name}.${row.column_name}`))
    const missing = Object.entries(neededColumns).flatMap(([table, columns]) => {
      if (!rows.some((row) => row.table_name === table)) return [`table ${table}`]
      const lacking = columns.filter((column) => !present.has(`${table}.${column}`))
      return lacking.length === 0 ? [] : [`${table} columns ${lacking.join(", ")}`]
    })
    return missing.length === 0
      ? passed(`${redactUrl(Redacted.value(url))}: ${tables.join(", ")} have the columns the lookups read`)
      : failed(
        `${redactUrl(Redacted.value(url))} lacks ${missing.join("; ")}`,
        "DATABASE_URL (Zulip's database), or `email-senders db migrate` for a database of its own"
      )
  }).pipe(
    Effect.provide(PgClient.layer({ url })),
    Effect.catch((error) =>
      Effect.succeed(failed(describeFailure(error), "DATABASE_URL (is Postgres running, and are the name and login right?)"))
    )
  )

/** Redis, where the rate limits and the ledger are shared (`REDIS_URL`): it answers PING. */
const redisCheck = (url: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    const reply = yield* (yield* Redis.Redis).send<string>("PING")
    return passed(`${redactUrl(Redacted.value(url))}: answers PING with ${reply}`)
  }).pipe(
    Effect.provide(Layer.unwrap(Effect.map(loadNodeRedis, (NodeRedis) => NodeRedis.layer({ url: Redacted.value(url), disableOfflineQueue: true })))),
    Effect.catch((error) => Effect.succeed(failed(describeFailure(error), "REDIS_URL (is Redis running and reachable?), or unset it")))
  )

const realmsCheck = (settings: Settings): Effect.Effect<Outcome> => {
  if (settings.databaseUrl !== undefined) return databaseCheck(settings.databaseUrl)
  const path = settings.realmsFile
  if (path === undefined) {
    return Effect.succeed(passed("neither DATABASE_URL nor REALMS_FILE: no realms, so events must address their recipients (to_emails)"))
  }
  return Layer.build(JsonFileRealmRepository.layer({ path })).pipe(
    Effect.scoped,
    Effect.as(passed(`realms file ${path} reads, in the expected shape`)),
    Effect.catch((error) => Effect.succeed(failed(error.message, "REALMS_FILE")))
  )
}

const templatesCheck = (settings: Settings) =>
  Effect.gen(function*() {
    const { templatesDir } = settings.directories
    yield* TemplateDirectories.checkTemplatesDirectory(templatesDir)
    const problems = yield* checkTemplates(templatesDir)
    return problems.length === 0
      ? passed(`every template under ${resolve(templatesDir)} compiles`)
      : failed(
        `${problems.length} problem(s):\n${problems.map((problem) => `    ${problemLine(problem)}`).join("\n")}`,
        "correct the templates under TEMPLATES_DIR (`email-senders templates check` lists the same problems)"
      )
  }).pipe(
    // each problem is printed here, once
    Effect.provide(Logger.layer([])),
    Effect.catch((error) => Effect.succeed(failed(error.message, error.setting)))
  )

const catalogsCheck = (settings: Settings) =>
  Effect.gen(function*() {
    const { localeDir } = settings.directories
    const entries = yield* TemplateDirectories.checkLocaleDirectory(settings.directories)
    if (entries === null) return passed(`no catalog directory (${resolve(localeDir)}): every email is in English`)
    const catalogs = yield* makeCatalogs(localeDir)
    // entries that are no language code (a README) name no catalog
    const languages = entries.filter((entry) => /^[A-Za-z]{2,3}([_-][A-Za-z0-9@]+)*$/.test(entry)).sort()
    yield* Effect.forEach(languages, (language) => catalogs.forLanguage(language), { discard: true })
    return passed(`${languages.length} catalog(s) under ${resolve(localeDir)} load: ${languages.join(", ") || "none"}`)
  }).pipe(
    Effect.catchTags({
      UnusableDirectory: (error) => Effect.succeed(failed(error.message, error.setting)),
      CatalogError: (error) =>
        Effect.succeed(failed(
          `${error.file}${error.line === null ? "" : `:${error.line}`}: ${error.message}`,
          "correct the catalog (or compile it again: Django's compilemessages), or LOCALE_DIR"
        )),
      InvalidLanguage: (error) => Effect.succeed(failed(error.message, "LOCALE_DIR"))
    })
  )

/** Creates the directory if needed, then writes and removes a file in it, as the worker will write there. */
const writableCheck = (directory: string, setting: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const probe = join(directory, `.email-senders-check-${process.pid}`)
    yield* fs.makeDirectory(directory, { recursive: true })
    yield* fs.writeFileString(probe, "")
    yield* fs.remove(probe)
    return passed(`${resolve(directory)} is writable`)
  }).pipe(
    Effect.catch((error) =>
      Effect.succeed(failed(`${resolve(directory)}: ${error.message}`, `${setting}, or make that directory writable by the worker's user`))
    )
  )

// ---- the run ------------------------------------------------------------------------------------------------------

const printed = (name: string, outcome: Outcome) =>
  Console.log(
    outcome.ok ? `✓ ${name}: ${outcome.detail}` : `✗ ${name}: ${outcome.detail}\n    fix: ${outcome.fix}`
  ).pipe(Effect.as(outcome.ok))

export const runChecks = Effect.gen(function*() {
  const parsed = yield* Effect.result(Effect.gen(function*() {
    const settings = yield* settingsConfig
    yield* ZulipEmailBuilder.resolveSettings(settings.builder)
    return { ...settings, directories: TemplateDirectories.directoriesOf(settings.builder) }
  }))
  if (parsed._tag === "Failure") {
    yield* printed("configuration", failed(describeFailure(parsed.failure), "the setting named, as README's Configuration table says"))
    return yield* new ChecksFailed({ message: "the configuration does not parse", failed: 1 })
  }
  const settings: Settings = parsed.success
  const timeout = settings.commandTimeout
  const bounded = <R>(check: Effect.Effect<Outcome, never, R>, fix: string) =>
    Effect.timeoutOrElse(check, {
      duration: timeout,
      orElse: () => Effect.succeed(failed(`no answer within ${Duration.format(timeout)}`, `${fix}, or COMMAND_TIMEOUT`))
    })
  const results: Array<boolean> = [yield* printed("configuration", passed("every setting parses"))]
  const check = Effect.fnUntraced(function*<R>(name: string, outcome: Effect.Effect<Outcome, never, R>, fix: string) {
    results.push(yield* printed(name, yield* bounded(outcome, fix)))
  })

  const url = Redacted.value(settings.amqpUrl)
  const queue = settings.worker.queueName
  const broker = yield* openBroker(settings.amqpUrl, timeout).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail({ message: `no answer within ${Duration.format(timeout)}`, fix: "AMQP_URL, or COMMAND_TIMEOUT" })
    }),
    Effect.mapError((error) => "_tag" in error ? brokerFailure(error, url) : error),
    Effect.result
  )
  if (broker._tag === "Success") {
    results.push(yield* printed("broker", passed(`${broker.success.node}: reachable, login accepted`)))
    yield* check("queue", queueCheck(broker.success.connection, queue, settings.declaration), "AMQP_URL")
    yield* check("delay queues", delayQueuesCheck(broker.success.connection, settings), "AMQP_URL")
  } else {
    results.push(yield* printed("broker", failed(`${redactAmqpUrl(url)}: ${broker.failure.message}`, broker.failure.fix)))
    for (const name of ["queue", "delay queues"]) {
      results.push(yield* printed(name, failed("not checked: the broker could not be reached", "the broker's line above")))
    }
  }
  yield* check("SMTP", smtpCheck(settings), "EMAIL_HOST / EMAIL_PORT")
  yield* check("realms", realmsCheck(settings), settings.databaseUrl === undefined ? "REALMS_FILE" : "DATABASE_URL")
  if (Option.isSome(settings.limits.redisUrl)) yield* check("Redis", redisCheck(settings.limits.redisUrl.value), "REDIS_URL")
  yield* check("templates", templatesCheck(settings), "TEMPLATES_DIR")
  yield* check("catalogs", catalogsCheck(settings), "LOCALE_DIR")
  yield* check("stats directory", writableCheck(settings.statsDirectory, "QUEUE_STATS_DIR"), "QUEUE_STATS_DIR")
  yield* check("errors directory", writableCheck(settings.errorsDirectory, "QUEUE_ERROR_DIR"), "QUEUE_ERROR_DIR")

  const failures = results.filter((ok) => !ok).length
  if (failures > 0) return yield* new ChecksFailed({ message: `${failures} of ${results.length} checks failed`, failed: failures })
  yield* Console.log(`all ${results.length} checks passed`)
}).pipe(Effect.scoped)

export const checkCommand = Command.make("check", {}, () => runChecks).pipe(
  withEnvironment(
    "Check that this deployment is ready to send, in order: the configuration, the broker (login, queue, delay " +
      "queues), SMTP (EHLO, STARTTLS, AUTH, NOOP; nothing sent), the realms database or file, Redis when " +
      "REDIS_URL is set, the templates, the " +
      "catalogs, the stats and errors directories. Prints ✓ or ✗ per check with the fix; exit 0 only when all pass " +
      "(a deployment gate: ExecStartPre=). Each check gives up after COMMAND_TIMEOUT",
    "check"
  )
)
