/**
 * The operations endpoint the worker serves next to its work (Postal's pattern): `/healthz` (the process runs),
 * `/readyz` (broker, SMTP and database can be reached), `/metrics` (Prometheus text of `pipeline/metrics.ts`, the
 * queue's depth and the process' metrics, with Effect's own serialiser), while emails are captured instead of sent,
 * Zulip's development `/emails` page, and with `OPERATIONS_TOKEN` the `/failures` page (`FailuresPage.ts`).
 * Bound to loopback by default: it is meant for a local Prometheus, supervisor or developer, not the internet.
 * Every path answers only requests addressed to one of its own host names (`Host`), so a web page whose name an
 * attacker points at 127.0.0.1 (DNS rebinding) cannot read it from a browser.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Clock, Config, Duration, Effect, FileSystem, Layer, Metric, Option, Schema, SubscriptionRef } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"
import { basename, join, resolve } from "node:path"
import PostalMime from "postal-mime"
import {
  brokerConnected,
  brokerNode,
  consumerPaused,
  deliveriesRetryingFailureStore,
  eventsConsumed,
  eventsInFlight,
  eventsSettled,
  eventsWaitingOnOutage,
  redisConnected,
  registerCounters,
  smtpConnectionsBusy,
  smtpConnectionsOpen,
  smtpConnectionsWaiting,
  smtpHealthy
} from "../pipeline/metrics.ts"
import { RealmRepository } from "../realms/RealmRepository.ts"
import { SmtpConnection } from "../smtp/SmtpConnection.ts"
import { SmtpStatus } from "../smtp/SmtpStatus.ts"
import { HttpHostSetting, HttpPortSetting } from "../config/connectionSettings.ts"
import { type CapturedEmail, listCapturedEmails } from "../smtp/DevelopmentCapture.ts"
import { capturesEmails, usesDatabase } from "../app.ts"
import { RabbitMqConnection } from "../queue/RabbitMqConnection.ts"
import { describeRefusal } from "./refusals.ts"
import { RedisStatus } from "../limits/RedisStatus.ts"
import { escapeHtml } from "./html.ts"
import * as FailuresPage from "./FailuresPage.ts"
import { makeProcessMetrics } from "./processMetrics.ts"
import { makeQueueDepth, type QueueDepthOptions } from "./queueDepth.ts"
import { DurationSetting } from "../config/settingValues.ts"
import { EmailLogDirectorySetting, QueueNameSetting, StatsDirectorySetting } from "../config/settingValues.ts"

export interface OperationsHttpOptions {
  /** `0` takes any free port (tests read it from `HttpServer`); `layerConfig` leaves the server out for `HTTP_PORT=0` */
  readonly port: number
  /** default `127.0.0.1` */
  readonly host?: string | undefined
  /**
   * host names (or addresses) requests may be addressed to besides `host`, `localhost`, `127.0.0.1` and `[::1]`;
   * any other `Host` is answered 421
   */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  /** the development capture directory when that backend is active; `/emails` is served only then */
  readonly capturedEmailsDirectory?: string | undefined
  /** `/readyz` also checks the database (a realm lookup), for when `DATABASE_URL` is configured */
  readonly checkDatabase?: boolean | undefined
  /** `/readyz` runs an SMTP health check when the latest connection opening or NOOP is older than this (default 5 s) */
  readonly smtpCheckMaxAge?: Duration.Input | undefined
  /** longest a readiness probe may take before the part counts as not ready (default 5 s) */
  readonly probeTimeout?: Duration.Input | undefined
  /** how the queue's depth and time to clear are read for `/metrics` */
  readonly queueDepth?: QueueDepthOptions | undefined
  /** `/failures` (the errors file, and replay), served only when given: `OPERATIONS_TOKEN` is set */
  readonly failures?: FailuresPage.FailuresPageOptions | undefined
}

/** `"ok"`, or why the part is not ready. */
type CheckResult = string
const OK: CheckResult = "ok"
/** a part the worker runs without, less well: ready all the same */
const DEGRADED = "degraded"

/** The captured emails shown at once on `/emails`, newest first. */
const EMAILS_SHOWN = 100

interface CapturedBodies {
  readonly html: string | null
  readonly text: string | null
}

const emailSection = (email: CapturedEmail, bodies: CapturedBodies | string): string => {
  const fields: ReadonlyArray<readonly [string, string]> = [
    ["Time", email.time],
    ["To", email.to.join(", ")],
    ["From", email.from],
    ["Template", email.template],
    ["Realm", email.realm ?? "(none)"],
    ["Message-ID", email.messageId],
    ["File", email.emlFile]
  ]
  const content = typeof bodies === "string"
    ? `<p class="problem">${escapeHtml(bodies)}</p>`
    : [
      bodies.html === null
        ? "<p>(no HTML part)</p>"
        : `<iframe sandbox="" title="HTML part" srcdoc="${escapeHtml(bodies.html)}"></iframe>`,
      `<pre class="text">${escapeHtml(bodies.text ?? "(no text part)")}</pre>`
    ].join("\n")
  return `<article class="email">
<h2>${escapeHtml(email.subject)}</h2>
<dl>${fields.map(([name, value]) => `<dt>${name}</dt><dd>${escapeHtml(value)}</dd>`).join("")}</dl>
${content}
</article>`
}

const countLine = (shown: number, total: number): string =>
  total === 0 ? "None yet." : `${total} captured, newest first${total > shown ? `; the latest ${shown} are shown` : ""}.`

const emailsPage = (directory: string, sections: ReadonlyArray<string>, total: number): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Captured emails</title>
<style>
body { font-family: sans-serif; margin: 1.5em; max-width: 70em; }
.email { border-top: 1px solid #ccc; padding: 1em 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; }
dd { margin: 0; }
iframe { width: 100%; height: 30em; border: 1px solid #ccc; }
.text { white-space: pre-wrap; background: #f6f6f6; padding: 0.8em; }
.problem { color: #a00; }
</style>
</head>
<body>
<h1>Captured emails</h1>
<p>EMAIL_HOST is unset, so emails are written to ${escapeHtml(directory)} instead of being sent.
${countLine(sections.length, total)}</p>
${sections.join("\n")}
</body>
</html>
`

const makeRoutes = (options: OperationsHttpOptions) =>
  Effect.gen(function*() {
    const connection = yield* RabbitMqConnection
    const smtp = yield* SmtpConnection
    const smtpStatus = yield* SmtpStatus
    const realms = yield* RealmRepository
    const fs = yield* FileSystem.FileSystem
    const smtpCheckMaxAgeMillis = Duration.toMillis(Duration.fromInputUnsafe(options.smtpCheckMaxAge ?? "5 seconds"))
    const probeTimeout = Duration.fromInputUnsafe(options.probeTimeout ?? "5 seconds")
    yield* registerCounters
    const sampleProcess = yield* makeProcessMetrics
    const sampleQueueDepth = yield* makeQueueDepth(options.queueDepth)

    const bounded = (probe: Effect.Effect<CheckResult>): Effect.Effect<CheckResult> =>
      Effect.timeoutOrElse(probe, {
        duration: probeTimeout,
        orElse: () => Effect.succeed(`no answer within ${Duration.format(probeTimeout)}`)
      })

    // open, but the queue may still be out of reach (a classic queue whose node is down): the session says why
    const brokerCheck = Effect.gen(function*() {
      if (yield* SubscriptionRef.get(connection.connected)) return (yield* connection.sessionProblem) ?? OK
      return (yield* connection.problem) ?? "not connected"
    })

    // the pool records every opening and NOOP, so a recent outcome answers without touching the server
    const smtpCheck = Effect.gen(function*() {
      const { lastCheck, refusal } = yield* smtpStatus.snapshot
      const now = yield* Clock.currentTimeMillis
      if (lastCheck !== null && now - lastCheck.at < smtpCheckMaxAgeMillis) {
        if (lastCheck.ok) return OK
        return refusal === undefined ? "the latest connection attempt or NOOP failed" : describeRefusal(refusal)
      }
      return yield* bounded(smtp.healthCheck.pipe(
        Effect.as(OK),
        Effect.catch((error) => Effect.succeed(`${error._tag}: ${error.message}`))
      ))
    })

    // realm ids start at 1: "not found" proves the database answered
    const databaseCheck = bounded(realms.realmById(0).pipe(
      Effect.as(OK),
      Effect.catchTags({
        RealmNotFound: () => Effect.succeed(OK),
        Unavailable: (error) => Effect.succeed(error.message)
      })
    ))

    // a slot waiting to write a failure record delivers nothing: a full disk must show, not only in the logs
    const failureStoreCheck = Effect.map(Metric.value(deliveriesRetryingFailureStore), (stuck): CheckResult =>
      stuck.value === 0 ? OK : `${stuck.value} delivery slot(s) stuck retrying the failure store (the errors file)`)

    // with REDIS_OUTAGE=fallback, mail flows without Redis: "degraded", still ready; with stop, sending waits for it
    const redisStatus = yield* Effect.serviceOption(RedisStatus)
    const redisCheck = (status: RedisStatus["Service"]) =>
      Effect.map(status.snapshot, ({ onOutage, problem, reachable }): CheckResult =>
        reachable ? OK : `${onOutage === "fallback" ? DEGRADED : "down"}: ${problem ?? "not connected"}`)

    const readiness = Effect.gen(function*() {
      const checks: Record<string, CheckResult> = yield* Effect.all({
        broker: brokerCheck,
        smtp: smtpCheck,
        failureStore: failureStoreCheck,
        ...(options.checkDatabase === true ? { database: databaseCheck } : {}),
        ...(redisStatus._tag === "Some" ? { redis: redisCheck(redisStatus.value) } : {})
      }, { concurrency: "unbounded" })
      const ready = Object.values(checks).every((result) => result === OK || result.startsWith(DEGRADED))
      const brokerNode = (yield* connection.node) ?? null
      return HttpServerResponse.jsonUnsafe({ status: ready ? "ready" : "not ready", checks, brokerNode }, { status: ready ? 200 : 503 })
    })

    const sampleGauges = Effect.gen(function*() {
      const pool = yield* smtpStatus.snapshot
      yield* Metric.update(smtpConnectionsOpen, pool.open)
      yield* Metric.update(smtpConnectionsBusy, pool.busy)
      yield* Metric.update(smtpConnectionsWaiting, pool.waiting)
      // as /readyz sees it: an idle worker's SMTP server is asked (NOOP) when the latest answer is too old
      yield* Metric.update(smtpHealthy, (yield* smtpCheck) === OK ? 1 : 0)
      yield* Metric.update(brokerConnected, (yield* SubscriptionRef.get(connection.connected)) ? 1 : 0)
      const node = yield* connection.node
      yield* Effect.forEach(connection.nodes, (each) =>
        Metric.update(Metric.withAttributes(brokerNode, { node: each }), each === node ? 1 : 0), { discard: true })
      const waiting = yield* Metric.value(eventsWaitingOnOutage)
      yield* Metric.update(consumerPaused, waiting.value > 0 ? 1 : 0)
      const consumed = yield* Metric.value(eventsConsumed)
      const settled = yield* Metric.value(eventsSettled)
      yield* Metric.update(eventsInFlight, consumed.count - settled.count)
      if (redisStatus._tag === "Some") yield* Metric.update(redisConnected, (yield* redisStatus.value.snapshot).reachable ? 1 : 0)
    })

    const metrics = Effect.gen(function*() {
      yield* sampleGauges
      yield* sampleProcess
      yield* sampleQueueDepth
      return HttpServerResponse.text(yield* PrometheusMetrics.format(), {
        contentType: "text/plain; version=0.0.4; charset=utf-8"
      })
    })

    const bodiesOf = (directory: string, email: CapturedEmail): Effect.Effect<CapturedBodies | string> =>
      basename(email.emlFile) !== email.emlFile
        ? Effect.succeed("not a file of the capture directory")
        : fs.readFile(join(directory, email.emlFile)).pipe(
          Effect.flatMap((bytes) => Effect.tryPromise(() => PostalMime.parse(bytes))),
          Effect.map((parsed): CapturedBodies => ({ html: parsed.html ?? null, text: parsed.text ?? null })),
          Effect.catch((error) => Effect.succeed(`could not read ${email.emlFile}: ${error.message}`))
        )

    const emails = (directory: string) =>
      Effect.gen(function*() {
        const captured = yield* listCapturedEmails(directory)
        const shown = captured.slice(0, EMAILS_SHOWN)
        const sections = yield* Effect.forEach(
          shown,
          (email) => Effect.map(bodiesOf(directory, email), (bodies) => emailSection(email, bodies))
        )
        return HttpServerResponse.text(emailsPage(directory, sections, captured.length), {
          contentType: "text/html; charset=utf-8",
          // an email's HTML is shown in a sandboxed frame: no script runs, only its styles and images load
          headers: {
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src http: https: data:"
          }
        })
      }).pipe(
        Effect.catch((error) =>
          Effect.succeed(HttpServerResponse.text(`cannot list ${directory}: ${error.message}`, { status: 500 }))
        )
      )

    return [
      HttpRouter.route("GET", "/healthz", HttpServerResponse.jsonUnsafe({ status: "ok" })),
      HttpRouter.route("GET", "/readyz", readiness),
      HttpRouter.route("GET", "/metrics", metrics),
      ...(options.capturedEmailsDirectory === undefined
        ? []
        : [HttpRouter.route("GET", "/emails", emails(options.capturedEmailsDirectory))]),
      ...(options.failures === undefined ? [] : yield* FailuresPage.makeRoutes(options.failures))
    ]
  })

/** A name or address as `Host` writes it: lowercase, an IPv6 address in brackets. */
const asHostName = (host: string): string => (host.includes(":") && !host.startsWith("[") ? `[${host}]` : host).toLowerCase()

/** The name part of a `Host` value (`name`, `name:port`, `[v6]`, `[v6]:port`), as `asHostName` writes it; else null. */
const requestedHostName = (header: string): string | null => {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header)
  return match === null ? null : match[1]!.toLowerCase()
}

const misdirected = HttpServerResponse.text(
  "Misdirected Request: this endpoint answers only requests addressed to its own host names (see HTTP_ALLOWED_HOSTS)\n",
  { status: 421 }
)

/** Answers 421 on every path, unknown ones included, unless `Host` names one of `allowed`. */
const hostCheck = (allowed: ReadonlySet<string>) =>
  HttpRouter.middleware((app) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const name = requestedHostName(request.headers["host"] ?? "")
      return name !== null && allowed.has(name) ? app : Effect.succeed(misdirected)
    }), { global: true })

export const layer = (options: OperationsHttpOptions) =>
  HttpRouter.serve(
    Layer.merge(
      HttpRouter.addAll(makeRoutes(options)),
      hostCheck(
        new Set([options.host ?? "127.0.0.1", "localhost", "127.0.0.1", "::1", ...(options.allowedHosts ?? [])].map(asHostName))
      )
    ),
    { disableLogger: true }
  ).pipe(
    Layer.provideMerge(NodeHttpServer.layerServer(createServer, { port: options.port, host: options.host ?? "127.0.0.1" })),
    Layer.provide(NodeFileSystem.layer)
  )

/** A host name or an IP address (IPv6 with or without brackets), blanks around it allowed. */
const AllowedHost = Schema.String.check(
  Schema.isPattern(/^\s*(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?)\s*$/, {
    message: "expected comma-separated host names or IP addresses, without ports"
  })
)

/** `HTTP_ALLOWED_HOSTS`: comma-separated host names the endpoint also answers for (default none). */
const allowedHostsConfig = Config.Array(AllowedHost, "HTTP_ALLOWED_HOSTS").pipe(
  Config.map((hosts) => hosts.map((host) => host.trim())),
  Config.withDefault([])
)

/**
 * `HTTP_PORT` (default 9100; `0` turns the endpoint off) on `HTTP_HOST` (default `127.0.0.1`), answering for
 * `HTTP_HOST`, loopback names and `HTTP_ALLOWED_HOSTS`. `/emails` is served
 * when `EMAIL_HOST` is unset (capture to `EMAIL_LOG_DIR`), the database is checked when `DATABASE_URL` is set, and
 * `READY_SMTP_CHECK_AGE` (default 5 s) is how old the latest SMTP check may be before `/readyz` runs a new one.
 */
export const optionsConfig: Config.Config<OperationsHttpOptions> = Config.all({
  port: HttpPortSetting,
  host: HttpHostSetting,
  allowedHosts: allowedHostsConfig,
  capturedEmailsDirectory: capturesEmails.pipe(
    Config.flatMap((captures) => captures ? EmailLogDirectorySetting.pipe(Config.map((directory) => resolve(directory))) : Config.succeed(undefined))
  ),
  checkDatabase: usesDatabase,
  smtpCheckMaxAge: DurationSetting("READY_SMTP_CHECK_AGE").pipe(Config.withDefault(Duration.seconds(5))),
  queueDepth: Config.all({ directory: StatsDirectorySetting, queueName: QueueNameSetting }).pipe(
    Config.map(({ directory, queueName }) => ({ statsFile: join(directory, `${queueName}.stats`) }))
  ),
  failures: FailuresPage.optionsConfig.pipe(Config.map(Option.getOrUndefined))
})

export const layerConfig = Layer.unwrap(Effect.gen(function*() {
  const options = yield* optionsConfig
  return options.port === 0 ? Layer.empty : layer(options)
}))
