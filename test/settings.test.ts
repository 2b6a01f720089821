/** The URL, host, port and log-level settings as they are read, and `redactUrl` on every form a URL is written in. */
import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Option, Redacted } from "effect"
import {
  AmqpUrlSetting,
  DatabaseUrlSetting,
  EmailHostSetting,
  EmailPortSetting,
  HttpHostSetting,
  HttpPortSetting,
  HttpUrlSetting,
  redactUrl
} from "../src/config/connectionSettings.ts"
import { LogLevelSetting, parseLogLevel } from "../src/operations/Logging.ts"
import { CountSetting, QueueDeliveryLimitSetting, QueueTypeSetting } from "../src/config/settingValues.ts"
import { describeFailure } from "../src/cli/reportFailure.ts"
import * as ErrorTracking from "../src/operations/ErrorTracking.ts"
import * as FailuresPage from "../src/operations/FailuresPage.ts"

const secret = "pa55-Secret"

/** `config` read from `env`: its value, or the message it fails with. */
const read = <A>(config: Config.Config<A>, env: Record<string, string>) =>
  config.parse(ConfigProvider.fromEnv({ env })).pipe(
    Effect.map((value) => ({ ok: true as const, value })),
    Effect.catch((error) => Effect.succeed({ ok: false as const, message: error.message }))
  )

/** Fails unless reading `name=value` fails with a message naming `name` that holds no part of the value. */
const refused = <A>(config: Config.Config<A>, name: string, value: string, expected: RegExp) =>
  Effect.gen(function*() {
    const result = yield* read(config, { [name]: value })
    assert.isFalse(result.ok, `${name}=${value} was taken`)
    if (result.ok) return
    assert.include(result.message, `["${name}"]`)
    assert.match(result.message, expected)
    assert.notInclude(result.message, value)
    assert.notInclude(result.message, secret)
  })

describe("AMQP_URL", () => {
  it.effect.each([
    "not-a-url",
    `http://guest:${secret}@127.0.0.1:5672`,
    `guest:${secret}@127.0.0.1:5672`,
    `amqp:guest:${secret}@127.0.0.1:5672`,
    `amqp://guest:${secret}@`,
    "amqp://127.0.0.1:99999"
  ])("refuses %s, naming the setting without the value", (value) =>
    refused(AmqpUrlSetting, "AMQP_URL", value, /amqp: or amqps: and a host/))

  it.effect("takes amqp:// and amqps:// URLs, and defaults to the local guest account", () =>
    Effect.gen(function*() {
      for (const url of ["amqp://guest:guest@127.0.0.1:5672", "amqps://u:p@broker.example/vhost?heartbeat=10", "amqp://[::1]"]) {
        const result = yield* read(AmqpUrlSetting, { AMQP_URL: url })
        assert.isTrue(result.ok && Redacted.value(result.value) === url, url)
      }
      const fallback = yield* read(AmqpUrlSetting, {})
      assert.isTrue(fallback.ok && Redacted.value(fallback.value) === "amqp://guest:guest@127.0.0.1:5672")
    }))
})

describe("QUEUE_TYPE and QUEUE_DELIVERY_LIMIT", () => {
  it.effect("QUEUE_TYPE is classic (Zulip's) unless set to quorum; anything else is refused by name", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* read(QueueTypeSetting, {}), { ok: true, value: "classic" })
      assert.deepStrictEqual(yield* read(QueueTypeSetting, { QUEUE_TYPE: "quorum" }), { ok: true, value: "quorum" })
      const refusedType = yield* read(QueueTypeSetting, { QUEUE_TYPE: "mirrored" })
      assert.isFalse(refusedType.ok)
      if (!refusedType.ok) assert.include(refusedType.message, "QUEUE_TYPE")
    }))

  it.effect("QUEUE_DELIVERY_LIMIT is 20 unless set, and at least 1", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* read(QueueDeliveryLimitSetting, {}), { ok: true, value: 20 })
      assert.deepStrictEqual(yield* read(QueueDeliveryLimitSetting, { QUEUE_DELIVERY_LIMIT: "5" }), { ok: true, value: 5 })
      assert.isFalse((yield* read(QueueDeliveryLimitSetting, { QUEUE_DELIVERY_LIMIT: "0" })).ok)
    }))
})

describe("DATABASE_URL", () => {
  it.effect.each(["not-a-url", `mysql://u:${secret}@db/zulip`, `http://db/zulip?password=${secret}`])(
    "refuses %s",
    (value) => refused(DatabaseUrlSetting, "DATABASE_URL", value, /postgres: or postgresql:/)
  )

  it.effect("takes postgres:// and postgresql:// URLs, a Unix socket (no host) too", () =>
    Effect.gen(function*() {
      for (const url of ["postgres://u:p@db:5432/zulip", "postgresql:///zulip?host=/var/run/postgresql"]) {
        assert.isTrue((yield* read(DatabaseUrlSetting, { DATABASE_URL: url })).ok, url)
      }
    }))
})

describe("http(s) URL settings", () => {
  it.effect.each(["OTEL_EXPORTER_OTLP_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SESV2", "EMAIL_IMAGES_BASE_URL"])("%s", (name) =>
    Effect.gen(function*() {
      yield* refused(HttpUrlSetting(name), name, "collector:4318", /http: or https: and a host/)
      yield* refused(HttpUrlSetting(name), name, `ftp://u:${secret}@collector`, /http: or https:/)
      // fetch refuses credentials in a URL, and its error shows them
      yield* refused(HttpUrlSetting(name), name, `https://u:${secret}@collector`, /without a user or password/)
      const result = yield* read(HttpUrlSetting(name), { [name]: "https://collector.example:4318/base" })
      assert.deepStrictEqual(result, { ok: true, value: "https://collector.example:4318/base" })
    }))
})

describe("host and port settings", () => {
  it.effect("EMAIL_HOST is a host name or IP address alone; a scheme or a port names EMAIL_PORT", () =>
    Effect.gen(function*() {
      yield* refused(EmailHostSetting, "EMAIL_HOST", "smtp://smtp.example.com", /without a scheme.*EMAIL_PORT/)
      yield* refused(EmailHostSetting, "EMAIL_HOST", "smtp.example.com:587", /without a port: set the port in EMAIL_PORT/)
      yield* refused(EmailHostSetting, "EMAIL_HOST", "user@smtp.example.com", /a host name or an IP address/)
      for (const host of ["smtp.example.com", "127.0.0.1", "::1", "email-smtp.us-east-1.amazonaws.com"]) {
        assert.isTrue((yield* read(EmailHostSetting, { EMAIL_HOST: host })).ok, host)
      }
    }))

  it.effect("HTTP_HOST is an address to bind to, without a scheme or port", () =>
    Effect.gen(function*() {
      yield* refused(HttpHostSetting, "HTTP_HOST", "http://0.0.0.0", /without a scheme.*HTTP_PORT/)
      yield* refused(HttpHostSetting, "HTTP_HOST", "0.0.0.0:9100", /set the port in HTTP_PORT/)
      for (const host of ["0.0.0.0", "::", "localhost"]) assert.isTrue((yield* read(HttpHostSetting, { HTTP_HOST: host })).ok)
    }))

  it.effect("EMAIL_PORT is 1 to 65535, HTTP_PORT 0 (off) to 65535", () =>
    Effect.gen(function*() {
      for (const port of ["0", "65536", "-1", "smtp"]) {
        assert.isFalse((yield* read(EmailPortSetting, { EMAIL_PORT: port })).ok, `EMAIL_PORT=${port}`)
      }
      for (const port of ["65536", "-1", "http"]) {
        assert.isFalse((yield* read(HttpPortSetting, { HTTP_PORT: port })).ok, `HTTP_PORT=${port}`)
      }
      assert.deepStrictEqual(yield* read(EmailPortSetting, { EMAIL_PORT: "587" }), { ok: true, value: 587 })
      assert.deepStrictEqual(yield* read(HttpPortSetting, { HTTP_PORT: "0" }), { ok: true, value: 0 })
    }))
})

describe("redactUrl", () => {
  it.each([
    [`amqp://guest:${secret}@rabbit:5672/vhost`, "amqp://guest:***@rabbit:5672/vhost"],
    [`guest:${secret}@rabbit:5672`, "guest:***@rabbit:5672"],
    [`amqp:guest:${secret}@rabbit:5672`, "amqp:guest:***@rabbit:5672"],
    [`postgresql://zulip@db/zulip?password=${secret}&sslmode=require`, "postgresql://zulip@db/zulip?password=***&sslmode=require"],
    [`postgresql://db/zulip?sslpassword=${secret};pwd=${secret}&PASS=${secret}`, "postgresql://db/zulip?sslpassword=***;pwd=***&PASS=***"],
    [`https://collector/?token=${secret}&api_key=${secret}&secret=${secret}`, "https://collector/?token=***&api_key=***&secret=***"],
    // an `@`, `:` or `?` inside the password: everything up to the last `@` after the user name is hidden
    [`amqp://guest:${secret}@x@rabbit/`, "amqp://guest:***@rabbit/"],
    [`amqp://guest:a?b${secret}@rabbit/`, "amqp://guest:***@rabbit/"],
    [`guest:a:${secret}@rabbit`, "guest:***@rabbit"],
    [`postgresql://db/zulip?password=a@${secret}`, "postgresql://db/zulip?password=***"],
    // nothing secret: unchanged
    ["amqp://rabbit:5672/vhost?heartbeat=30", "amqp://rabbit:5672/vhost?heartbeat=30"],
    ["postgresql://zulip@db/zulip", "postgresql://zulip@db/zulip"],
    ["not-a-url", "not-a-url"]
  ])("%s → %s", (url, shown) => {
    assert.strictEqual(redactUrl(url), shown)
  })
})

describe("LOG_LEVEL", () => {
  it.each([
    ["WARNING", "Warn"],
    ["warning", "Warn"],
    ["Warn", "Warn"],
    ["error", "Error"],
    ["CRITICAL", "Fatal"],
    ["critical", "Fatal"],
    ["DEBUG", "Debug"],
    ["INFO", "Info"],
    ["Trace", "Trace"],
    ["none", "None"],
    ["all", "All"]
  ])("%s is %s", (name, level) => {
    assert.strictEqual(parseLogLevel(name), level)
  })

  it.effect("an unknown name fails naming LOG_LEVEL and listing the accepted names; unset is Info", () =>
    Effect.gen(function*() {
      const result = yield* read(LogLevelSetting, { LOG_LEVEL: "verbose" })
      assert.isFalse(result.ok)
      if (!result.ok) {
        assert.include(result.message, `["LOG_LEVEL"]`)
        assert.include(result.message, "debug, info, warn, warning, error, fatal, critical, none (any case)")
      }
      assert.isUndefined(parseLogLevel("constructor"))
      assert.deepStrictEqual(yield* read(LogLevelSetting, {}), { ok: true, value: "Info" })
      assert.deepStrictEqual(yield* read(LogLevelSetting, { LOG_LEVEL: "Warning" }), { ok: true, value: "Warn" })
    }))
})

describe("a start-up failure as one line", () => {
  it.effect("names the setting and its problem from the structured issue", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromEnv({ env: { SMTP_CONNECTIONS: "0" } })
      const error = yield* Effect.flip(CountSetting("SMTP_CONNECTIONS", 1).parse(provider))
      assert.strictEqual(describeFailure(error), "ConfigError: SMTP_CONNECTIONS: Expected a value greater than or equal to 1")
      assert.strictEqual(describeFailure(new Error("first\n  second")), "Error: first; second")
    }))
})

describe("OPERATIONS_TOKEN and SENTRY_*", () => {
  it.effect("OPERATIONS_TOKEN: unset, /failures is off; set, the errors file of QUEUE_ERROR_DIR and QUEUE_NAME; short, refused", () =>
    Effect.gen(function*() {
      const off = yield* read(FailuresPage.optionsConfig, {})
      assert.isTrue(off.ok && Option.isNone(off.value))
      const on = yield* read(FailuresPage.optionsConfig, {
        OPERATIONS_TOKEN: "a-token-of-24-characters",
        QUEUE_ERROR_DIR: "/var/log/zulip/queue_error",
        QUEUE_NAME: "deferred_email_senders"
      })
      assert.isTrue(on.ok && Option.isSome(on.value))
      if (on.ok && Option.isSome(on.value)) {
        assert.strictEqual(on.value.value.errorsFile, "/var/log/zulip/queue_error/deferred_email_senders.errors")
        assert.strictEqual(on.value.value.queueName, "deferred_email_senders")
        assert.strictEqual(Redacted.value(on.value.value.token), "a-token-of-24-characters")
      }
      yield* refused(FailuresPage.optionsConfig, "OPERATIONS_TOKEN", "short-token", /at least 16 characters/)
    }))

  it.effect("SENTRY_DSN must be an http(s) URL with the project key; SENTRY_TRACES_SAMPLE_RATE a share from 0 to 1", () =>
    Effect.gen(function*() {
      const dsn = yield* read(ErrorTracking.dsnConfig, { SENTRY_DSN: "https://abc123@o1.ingest.sentry.io/42" })
      assert.isTrue(dsn.ok && Option.isSome(dsn.value))
      yield* refused(ErrorTracking.dsnConfig, "SENTRY_DSN", "sentry.example/42", /Sentry DSN/)
      yield* refused(ErrorTracking.dsnConfig, "SENTRY_DSN", "https://o1.ingest.sentry.io/42", /with its key/)
      const rate = yield* read(ErrorTracking.TracesSampleRateSetting, { SENTRY_TRACES_SAMPLE_RATE: "0.25" })
      assert.deepStrictEqual(rate, { ok: true, value: 0.25 })
      yield* refused(ErrorTracking.TracesSampleRateSetting, "SENTRY_TRACES_SAMPLE_RATE", "1.5", /1/)
    }))
})
