/**
 * Error tracking with Sentry (the official SDK, `@sentry/node`), on when `SENTRY_DSN` is set: every event recorded as
 * failed and every defect becomes a Sentry event tagged with the reason's tag, SMTP code, template and realm, and
 * grouped by tag and template (its fingerprint), so one broken template is one issue however many emails it fails;
 * each fingerprint is reported at most every 10 s, the next report counting the failures not sent meanwhile.
 * With `SENTRY_TRACES_SAMPLE_RATE`, the pipeline's spans (Effect's tracer) are sent as Sentry transactions too.
 *
 * Nothing personal leaves the process: the reason's text goes out scrubbed (`scrubText`: addresses, quoted values,
 * URL paths and queries, token-like strings, `password=…`), the event is built from the reason alone (never the
 * recorded event, its context or body), and every string of what the SDK is about to send goes through the scrubber
 * again (`scrubEvent`), breadcrumbs, request and user data dropped. Sending happens in the SDK's background
 * transport with a bounded buffer: a Sentry that is down or slow drops events, it never holds a delivery.
 *
 * The SDK is loaded (`import()`) only when `SENTRY_DSN` is set, like the AWS SDK: a worker without Sentry does not
 * carry it on its heap.
 */
import { Cause, Clock, Config, Context, Duration, Effect, Exit, Layer, Option, References, Schema, Tracer } from "effect"
import type { ErrorEvent, Event } from "@sentry/node"
import { type FailureReason } from "../records/FailureStore.ts"
import { smtpCodeClass } from "../pipeline/metrics.ts"
import { packageVersion } from "../packageInfo.ts"

/** A failure as it is reported: the recorded reason and where it happened, never the event's content. */
export interface TrackedFailure {
  readonly reason: FailureReason
  /** the event's `template_prefix`, when it has one */
  readonly template: string | null
  /** the event's `realm_id`, when it has one */
  readonly realm: string | null
  /** the defect, for a failure recorded because of one (its stack trace is sent) */
  readonly defect?: Cause.Cause<unknown> | undefined
}

export interface ErrorTrackerShape {
  /** report an event recorded as failed; never fails, never waits on the network */
  readonly failed: (failure: TrackedFailure) => Effect.Effect<void>
  /** report a defect that ends the worker itself */
  readonly crashed: (cause: Cause.Cause<unknown>) => Effect.Effect<void>
}

/** Where failures are reported: nowhere unless a tracker is provided (`layer`, `layerConfig`). */
export const ErrorTracker = Context.Reference<ErrorTrackerShape>("email-senders/ErrorTracker", {
  defaultValue: () => ({ failed: () => Effect.void, crashed: () => Effect.void })
})

// ---- scrubbing ----------------------------------------------------------------------------------------------------

const replacements: ReadonlyArray<readonly [RegExp, string]> = [
  // `password=...`, `token: ...`, `api_key=...`: the name stays, the value goes
  [/\b((?:[A-Za-z_-]*?)(?:pass(?:word)?|pwd|secret|token|credential|api[-_]?key|auth(?:orization)?)[A-Za-z_-]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s),;]+)/gi, "$1$2[scrubbed]"],
  // URLs keep their scheme and host: paths and queries hold reset links, tokens, addresses
  [/\b([a-z][a-z0-9+.-]*:\/\/)(?:[^\s/@"'<>]*@)?([^\s/?#"'<>]+)[^\s"'<>)]*/gi, "$1$2/[scrubbed]"],
  // addresses, also in angle brackets and with a display name's quotes around
  [/[^\s<>"'(),;:@[\]]+@[^\s<>"'(),;:@[\]]+/g, "[address]"],
  // quoted values: what a schema error or a template error quotes from the event
  [/"(?:[^"\\]|\\.)*"/g, "\"[scrubbed]\""],
  [/'(?:[^'\\\n]|\\.)*'/g, "'[scrubbed]'"],
  [/«[^»]*»/g, "«[scrubbed]»"],
  // long random-looking strings (confirmation keys, API keys, hashes): letters and digits mixed, 16 or more
  [/\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{16,}\b/g, "[scrubbed]"]
]

/** `text` without addresses, quoted values, URL paths and queries, secrets after their names, or token-like strings. */
export const scrubText = (text: string): string =>
  replacements.reduce((scrubbed, [pattern, replacement]) => scrubbed.replace(pattern, replacement), text)

/** Identifiers the SDK generates (not from events), which the token rule would otherwise blank. */
const generatedKeys: ReadonlySet<string> = new Set([
  "event_id",
  "trace_id",
  "span_id",
  "parent_span_id",
  "segment_id",
  "sample_rand",
  "public_key",
  "sdk",
  "debug_meta"
])

/** Dropped whole: what the SDK may gather about requests, users and the process' past. */
const droppedKeys: ReadonlySet<string> = new Set(["request", "user", "breadcrumbs"])

const scrubValue = (value: unknown): unknown => {
  if (typeof value === "string") return scrubText(value)
  if (Array.isArray(value)) return value.map(scrubValue)
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).flatMap(([key, inner]) =>
        droppedKeys.has(key) ? [] : [[key, generatedKeys.has(key) ? inner : scrubValue(inner)]]
      )
    )
  }
  return value
}

/** What the SDK is about to send, with every string scrubbed and request, user and breadcrumbs dropped. */
export const scrubEvent = <E extends ErrorEvent | Event>(event: E): E => scrubValue(event) as E

// ---- the Sentry event of a failure --------------------------------------------------------------------------------

const NO_TEMPLATE = "(no template)"

/** The tags of a failure: what an operator filters Sentry's issues by. */
export const failureTags = (failure: TrackedFailure): Record<string, string> => ({
  tag: failure.reason.tag,
  template: failure.template ?? NO_TEMPLATE,
  smtp_code: failure.reason.smtpCode === null ? "none" : String(failure.reason.smtpCode),
  smtp_class: smtpCodeClass(failure.reason.smtpCode),
  realm: failure.realm ?? "none"
})

/** One issue per tag and template, whatever the recipients, realms or messages. */
export const failureFingerprint = (failure: TrackedFailure): ReadonlyArray<string> => [
  "email-senders",
  failure.reason.tag,
  failure.template ?? NO_TEMPLATE
]

// ---- the Sentry tracer --------------------------------------------------------------------------------------------

type SentryModule = typeof import("@sentry/node")
type SentrySpanHandle = ReturnType<SentryModule["startInactiveSpan"]>

const secondsOf = (nanos: bigint): number => Number(nanos / 1000n) / 1e6

const isPlainAttribute = (value: unknown): value is string | number | boolean =>
  typeof value === "string" || typeof value === "number" || typeof value === "boolean"

/** An Effect span carried by a Sentry span: a root span is a transaction, the others its children. */
class SentrySpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly name: string
  readonly parent: Option.Option<Tracer.AnySpan>
  readonly annotations: Context.Context<never>
  readonly links: Array<Tracer.SpanLink>
  readonly kind: Tracer.SpanKind
  readonly sampled: boolean
  readonly spanId: string
  readonly traceId: string
  readonly attributes = new Map<string, unknown>()
  status: Tracer.SpanStatus
  readonly handle: SentrySpanHandle

  constructor(sentry: SentryModule, options: Parameters<Tracer.Tracer["span"]>[0]) {
    this.name = options.name
    this.parent = options.parent
    this.annotations = options.annotations
    this.links = options.links
    this.kind = options.kind
    this.status = { _tag: "Started", startTime: options.startTime }
    const parent = Option.getOrUndefined(options.parent)
    this.handle = sentry.startInactiveSpan({
      name: options.name,
      startTime: secondsOf(options.startTime),
      parentSpan: parent instanceof SentrySpan ? parent.handle : null,
      forceTransaction: !(parent instanceof SentrySpan)
    })
    const context = this.handle.spanContext()
    this.spanId = context.spanId
    this.traceId = context.traceId
    this.sampled = this.handle.isRecording()
  }

  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    if (this.status._tag === "Ended") return
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
    // 1: ok, 2: error (Sentry's span status codes)
    this.handle.setStatus(
      Exit.isSuccess(exit) ? { code: 1 } : { code: 2, message: Cause.hasInterruptsOnly(exit.cause) ? "cancelled" : "internal_error" }
    )
    this.handle.end(secondsOf(endTime))
  }

  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
    if (isPlainAttribute(value)) this.handle.setAttribute(key, typeof value === "string" ? scrubText(value) : value)
  }

  event(_name: string, _startTime: bigint, _attributes?: Record<string, unknown>): void {
    // span events (log lines) carry messages about events: they are not sent
  }

  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links.push(...links)
  }
}

// ---- layers -------------------------------------------------------------------------------------------------------

export interface SentryOptions {
  /** the project's DSN, `https://<key>@<host>/<project>` */
  readonly dsn: string
  /** default `production` */
  readonly environment?: string | undefined
  /** default the package's version */
  readonly release?: string | undefined
  /** the share of root spans (one per event: `settleDelivery`) sent as transactions; unset: no tracing */
  readonly tracesSampleRate?: number | undefined
  /** how long the worker's stop waits for reports still buffered (default 2 s) */
  readonly closeTimeoutMillis?: number | undefined
  /** at most one report per tag and template this often; the others are counted into the next (default 10 s) */
  readonly reportInterval?: Duration.Input | undefined
}

/**
 * Reports one failure per fingerprint (tag and template) at most every `interval`: the first at once, so a broken
 * template shows within seconds, and the next after `interval` with how many like it were not sent meanwhile
 * (`similar_failures_not_reported`). A template failing thousands of emails makes one issue, not thousands of
 * events spent against the project's quota, and no CPU goes into reports Sentry would only group (the metrics keep
 * the exact counts).
 */
const tracker = (sentry: SentryModule, intervalMillis: number): ErrorTrackerShape => {
  const lastReports = new Map<string, { readonly at: number; readonly notReported: number }>()
  return {
    failed: (failure) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          const fingerprint = [...failureFingerprint(failure)]
          const key = fingerprint.join("\u0000")
          const last = lastReports.get(key)
          if (last !== undefined && now - last.at < intervalMillis) {
            lastReports.set(key, { at: last.at, notReported: last.notReported + 1 })
            return
          }
          lastReports.set(key, { at: now, notReported: 0 })
          const context = {
            tags: failureTags(failure),
            fingerprint,
            extra: { attempts: failure.reason.attempts, similar_failures_not_reported: last?.notReported ?? 0 }
          }
          const defect = failure.defect === undefined ? undefined : Cause.squash(failure.defect)
          if (defect !== undefined) {
            sentry.captureException(defect, { ...context, level: "fatal" })
          } else {
            sentry.captureMessage(`${failure.reason.tag} (${failure.template ?? NO_TEMPLATE}): ${failure.reason.message}`, {
              ...context,
              level: "error"
            })
          }
        })),
    crashed: (cause) =>
      Effect.sync(() => {
        sentry.captureException(Cause.squash(cause), { level: "fatal", tags: { tag: "WorkerStopped" } })
      })
  }
}

/**
 * Sentry on for the life of the layer; at its end (the worker's stop) the reports still buffered get
 * `closeTimeoutMillis` to leave, and are dropped after that.
 */
export const layer = (options: SentryOptions): Layer.Layer<never> =>
  Layer.unwrap(Effect.gen(function*() {
    const sentry: SentryModule = yield* Effect.promise(() => import("@sentry/node"))
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        sentry.init({
          dsn: options.dsn,
          environment: options.environment ?? "production",
          release: options.release ?? packageVersion,
          // the SDK's integrations gather requests, console lines, modules and source lines: none of it is wanted
          defaultIntegrations: false,
          sendDefaultPii: false,
          maxBreadcrumbs: 0,
          // the SDK's spans live in OpenTelemetry, set up globally (a context manager on every async step): only
          // when traces are asked for
          ...(options.tracesSampleRate === undefined
            ? { skipOpenTelemetrySetup: true }
            : { tracesSampleRate: options.tracesSampleRate }),
          beforeSend: (event) => scrubEvent(event),
          beforeSendTransaction: (event) => scrubEvent(event)
        })
      ),
      () => Effect.promise(() => sentry.close(options.closeTimeoutMillis ?? 2000)).pipe(Effect.ignore)
    )
    const reporting = Layer.succeed(
      ErrorTracker,
      tracker(sentry, Duration.toMillis(Duration.fromInputUnsafe(options.reportInterval ?? "10 seconds")))
    )
    if (options.tracesSampleRate === undefined) return reporting
    return Layer.mergeAll(
      reporting,
      Layer.succeed(Tracer.Tracer, Tracer.make({ span: (spanOptions) => new SentrySpan(sentry, spanOptions) })),
      Layer.succeed(References.TracerEnabled, true)
    )
  }))

/** `SENTRY_TRACES_SAMPLE_RATE`: between 0 and 1. */
export const TracesSampleRateSetting = Config.schema(
  Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })),
  "SENTRY_TRACES_SAMPLE_RATE"
)

/** `SENTRY_DSN`: an `http://` or `https://` URL; its user part is the project's public key, so it may have one. */
export const dsnConfig: Config.Config<Option.Option<string>> = Config.option(
  Config.schema(
    Schema.String.check(Schema.makeFilter((value: string) => {
      if (!URL.canParse(value)) return "expected a Sentry DSN, https://<key>@<host>/<project>"
      const url = new URL(value)
      if (url.protocol !== "https:" && url.protocol !== "http:") return "expected a Sentry DSN, https://<key>@<host>/<project>"
      return url.username === "" ? "expected a Sentry DSN with its key, https://<key>@<host>/<project>" : undefined
    })),
    "SENTRY_DSN"
  )
)

/** For the start-up line: where reports go, without the key. */
export const describeDsn = (dsn: string): string => {
  const url = new URL(dsn)
  return `${url.protocol}//${url.host}${url.pathname}`
}

/**
 * The settings when `SENTRY_DSN` is set (`SENTRY_ENVIRONMENT`, default `production`; `SENTRY_RELEASE`, default the
 * package version; `SENTRY_TRACES_SAMPLE_RATE`, unset: no traces); none when it is unset.
 */
export const optionsConfig: Config.Config<Option.Option<SentryOptions>> = dsnConfig.pipe(
  Config.flatMap((dsn) =>
    Option.isNone(dsn) ? Config.succeed(Option.none()) : Config.all({
      environment: Config.NonEmptyString("SENTRY_ENVIRONMENT").pipe(Config.withDefault("production")),
      release: Config.NonEmptyString("SENTRY_RELEASE").pipe(Config.withDefault(packageVersion)),
      tracesSampleRate: Config.option(TracesSampleRateSetting).pipe(Config.map(Option.getOrUndefined))
    }).pipe(Config.map((settings): Option.Option<SentryOptions> => Option.some({ dsn: dsn.value, ...settings })))
  )
)

/** Sentry when `SENTRY_DSN` is set (`optionsConfig`), nothing when it is unset. */
export const layerConfig: Layer.Layer<never, Config.ConfigError> = Layer.unwrap(Effect.gen(function*() {
  const options = yield* optionsConfig
  return Option.isNone(options) ? Layer.empty : layer(options.value)
}))
