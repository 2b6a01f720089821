/**
 * Optional span export over OTLP/HTTP (JSON) with Effect's own exporter: the pipeline's spans (`runWorker`, one
 * `settleDelivery` per event with an `SmtpPool.send` per attempt, `EmailBuilder.renderTemplate`, `sendEmail`,
 * `consumeBatch`) go to an OpenTelemetry collector.
 * Spans are sent in batches every `exportInterval`, and what is still buffered is sent when the layer's scope closes
 * (the worker's graceful stop).
 */
import { Config, type Duration, Effect, Layer, Option, Redacted, References } from "effect"
import { FetchHttpClient, Headers, UrlParams } from "effect/http"
import { OtlpExporter, OtlpSerialization, OtlpTracer } from "effect/observability"
import { HttpUrlSetting, secretParameterName } from "../config/connectionSettings.ts"

export interface TracingOptions {
  /** the collector's base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT`: spans are posted to `<endpoint>/v1/traces` */
  readonly endpoint: URL
  /** `service.name` of the exported resource. Default `email-senders` */
  readonly serviceName?: string | undefined
  /** sent with every export, e.g. an API key for a hosted collector */
  readonly headers?: Readonly<Record<string, Redacted.Redacted<string>>> | undefined
  /** how often buffered spans are sent. Default 5 seconds */
  readonly exportInterval?: Duration.Input | undefined
}

/** `<base>/v1/traces`, the OTLP/HTTP traces path below the base endpoint (OpenTelemetry's rule). */
export const tracesUrl = (endpoint: URL): string => {
  const url = new URL(endpoint)
  url.pathname = `${url.pathname.replace(/\/$/, "")}/v1/traces`
  return url.toString()
}

/** OpenTelemetry's `key1=value1,key2=value2` header list, values URL-encoded. */
export const parseHeaderList = (text: string): Record<string, Redacted.Redacted<string>> =>
  Object.fromEntries(
    text.split(",").flatMap((pair) => {
      const separator = pair.indexOf("=")
      if (separator <= 0) return []
      return [[pair.slice(0, separator).trim(), Redacted.make(decodeURIComponent(pair.slice(separator + 1).trim()))]]
    })
  )

/**
 * Also gives the exporter's `Flusher`, for an embedding app that must send buffered spans before it suspends. A
 * failed export is logged (at `Debug`) with its request: the given headers and password-like query parameters of
 * the endpoint are shown there as `REDACTED`.
 */
export const layer = (options: TracingOptions): Layer.Layer<OtlpExporter.Flusher> => {
  const headers = options.headers ?? {}
  return OtlpTracer.layer({
    url: tracesUrl(options.endpoint),
    resource: { serviceName: options.serviceName ?? "email-senders" },
    headers: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Redacted.value(value)])),
    exportInterval: options.exportInterval
  }).pipe(Layer.provide([
    OtlpSerialization.layerJson,
    FetchHttpClient.layer,
    Layer.succeed(UrlParams.CurrentRedactedNames, [...UrlParams.CurrentRedactedNames.defaultValue(), secretParameterName]),
    Layer.succeed(Headers.CurrentRedactedNames, [...Headers.CurrentRedactedNames.defaultValue(), ...Object.keys(headers)])
  ]))
}

const credentialsHint = "in OTEL_EXPORTER_OTLP_HEADERS (e.g. authorization=Basic%20...)"

/** `OTEL_EXPORTER_OTLP_ENDPOINT`, a collector URL without credentials (unset: no tracing). */
export const endpointConfig: Config.Config<Option.Option<URL>> = Config.option(
  HttpUrlSetting("OTEL_EXPORTER_OTLP_ENDPOINT", credentialsHint).pipe(Config.map((url) => new URL(url)))
)

/**
 * When `OTEL_EXPORTER_OTLP_ENDPOINT` is set, export spans there (`OTEL_SERVICE_NAME`, default `email-senders`;
 * `OTEL_EXPORTER_OTLP_HEADERS`, a secret); when it is unset, nothing is traced or exported.
 */
export const layerConfig: Layer.Layer<OtlpExporter.Flusher, Config.ConfigError> = Layer.unwrap(Effect.gen(function*() {
  const endpoint = yield* endpointConfig
  // a flusher with nothing registered (no exporter, no connection), and spans not even recorded: nothing reads them
  if (Option.isNone(endpoint)) return Layer.merge(OtlpExporter.layerFlusher, Layer.succeed(References.TracerEnabled, false))
  const serviceName = yield* Config.String("OTEL_SERVICE_NAME").pipe(Config.withDefault("email-senders"))
  const headers = yield* Config.option(Config.Redacted("OTEL_EXPORTER_OTLP_HEADERS"))
  return layer({
    endpoint: endpoint.value,
    serviceName,
    headers: Option.match(headers, { onNone: () => ({}), onSome: (text) => parseHeaderList(Redacted.value(text)) })
  })
}))
