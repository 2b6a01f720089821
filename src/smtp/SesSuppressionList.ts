/**
 * Live `SuppressionList`: Amazon SES's account-level suppression list, through the SESv2 API's
 * `DeleteSuppressedDestination`, as Zulip's `maybe_remove_from_suppression_list` uses it.
 *
 * On when `EMAIL_HOST` is SES's SMTP endpoint (its name gives the region, as in Zulip), or when
 * `SES_SUPPRESSION_REGION` is set (mail relayed to SES through another host); else `remove` does nothing.
 *
 * The AWS SDK is loaded with `import()` at the first removal: it is large, and the bundled worker leaves it out
 * (scripts/bundleWorker.ts), so a worker that never removes an address never loads it. Credentials come from the
 * SDK's default chain (environment, shared files, SSO, container or instance role); if none resolve within
 * `credentialsTimeout`, one warning says that removal is off and why, and it stays off. SES's errors are ignored, as
 * Zulip ignores them, but logged with how many addresses failed and the errors' names, never the addresses.
 */
import type { SESv2ClientConfig } from "@aws-sdk/client-sesv2"
import { Config, Duration, Effect, Layer, Option, Redacted, Schema, Scope } from "effect"
import { SuppressionList } from "./SuppressionList.ts"
import { HttpUrlSetting } from "../config/connectionSettings.ts"

export interface SesSuppressionListOptions {
  /** the SES region, e.g. `us-east-1` */
  readonly region: string
  /** the SESv2 API's URL; unset: the SDK's (`AWS_ENDPOINT_URL_SESV2`, `AWS_ENDPOINT_URL`, else AWS's for the region) */
  readonly endpoint?: string | undefined
  /** unset: the SDK's default credential chain */
  readonly credentials?: SESv2ClientConfig["credentials"] | undefined
  /** how long the first removal waits for credentials (the instance-metadata probe can be slow). Default 3 seconds */
  readonly credentialsTimeout?: Duration.Input | undefined
  /** the bound on one `remove`, however many addresses it has. Default 5 seconds */
  readonly timeout?: Duration.Input | undefined
  /** removals in flight at once. Default 4 */
  readonly concurrency?: number | undefined
}

/** Zulip's pattern for SES's SMTP endpoint: `email-smtp.<region>.amazonaws.com`, or `email-smtp-fips.…`. */
const sesSmtpHost = /^email-smtp(?:-fips)?\.([^.]+)\.amazonaws\.com$/

/** The region `EMAIL_HOST` names when it is SES's SMTP endpoint, else null. */
export const sesRegionOf = (emailHost: string): string | null => sesSmtpHost.exec(emailHost)?.[1] ?? null

/** Removes one address; succeeds with whether it was on the list. */
type DeleteSuppressed = (address: string) => Effect.Effect<boolean, unknown>

/** The error's name, or a Node error's code (`ECONNREFUSED`): never its message, which may hold the address. */
const errorName = (error: unknown): string => {
  if (!(error instanceof Error)) return typeof error
  const code = (error as { readonly code?: unknown }).code
  return error.name === "Error" && typeof code === "string" ? code : error.name
}

/** The SDK loaded, its client made (closed with the layer) and credentials resolved; fails with why not. */
const connect = (options: SesSuppressionListOptions, credentialsTimeout: Duration.Duration) =>
  Effect.gen(function*() {
    const sdk = yield* Effect.tryPromise({
      try: () => import("@aws-sdk/client-sesv2"),
      catch: (error) => `the AWS SDK (@aws-sdk/client-sesv2) could not be loaded: ${String(error)}`
    })
    const client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new sdk.SESv2Client({
          region: options.region,
          ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
          ...(options.credentials === undefined ? {} : { credentials: options.credentials })
        })
      ),
      (client) => Effect.sync(() => client.destroy())
    )
    yield* Effect.tryPromise({
      try: () => client.config.credentials(),
      catch: (error) => `no AWS credentials (${errorName(error)}: ${error instanceof Error ? error.message : String(error)})`
    }).pipe(Effect.timeoutOrElse({
      duration: credentialsTimeout,
      orElse: () => Effect.fail(`no AWS credentials resolved within ${Duration.format(credentialsTimeout)}`)
    }))
    const deleteSuppressed: DeleteSuppressed = (address) =>
      Effect.tryPromise({
        try: (signal) =>
          client.send(new sdk.DeleteSuppressedDestinationCommand({ EmailAddress: address }), { abortSignal: signal }),
        catch: (error) => error
      }).pipe(
        Effect.as(true),
        // the usual answer: the address was not on the list, so there is nothing to remove
        Effect.catchIf((error) => error instanceof sdk.NotFoundException, () => Effect.succeed(false))
      )
    return deleteSuppressed
  })

const make = Effect.fnUntraced(function*(options: SesSuppressionListOptions) {
  const timeout = Duration.fromInputUnsafe(options.timeout ?? Duration.seconds(5))
  const credentialsTimeout = Duration.fromInputUnsafe(options.credentialsTimeout ?? Duration.seconds(3))
  const concurrency = options.concurrency ?? 4
  const layerScope = yield* Effect.scope
  // made once, by the first removal; every later one (and any running meanwhile) shares the outcome
  const ready = yield* Effect.cached(
    connect(options, credentialsTimeout).pipe(
      Effect.map(Option.some),
      Effect.catch((reason) =>
        Effect.logWarning(`Removing recipients from the SES suppression list is off: ${reason}`).pipe(Effect.as(Option.none<DeleteSuppressed>()))
      ),
      Scope.provide(layerScope)
    )
  )

  const removeAll = Effect.fnUntraced(function*(deleteSuppressed: DeleteSuppressed, addresses: ReadonlyArray<string>) {
    const outcomes = yield* Effect.forEach(addresses, (address) => Effect.result(deleteSuppressed(address)), { concurrency })
    let removed = 0
    const failures: Array<string> = []
    for (const outcome of outcomes) {
      if (outcome._tag === "Failure") failures.push(errorName(outcome.failure))
      else if (outcome.success) removed++
    }
    if (removed > 0) yield* Effect.logInfo(`Removed ${removed} recipient(s) from the SES suppression list`)
    if (failures.length > 0) {
      yield* Effect.logWarning(
        `Could not remove ${failures.length} of ${addresses.length} recipient(s) from the SES suppression list ` +
          `(${[...new Set(failures)].join(", ")}); sending anyway`
      )
    }
  })

  const remove = (addresses: ReadonlyArray<string>): Effect.Effect<void> => {
    const unique = [...new Set(addresses)]
    if (unique.length === 0) return Effect.void
    return ready.pipe(
      Effect.flatMap(Option.match({ onNone: () => Effect.void, onSome: (deleteSuppressed) => removeAll(deleteSuppressed, unique) })),
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.logWarning(
            `Removing ${unique.length} recipient(s) from the SES suppression list took over ${Duration.format(timeout)} ` +
              "(TimeoutError); sending anyway"
          )
      })
    )
  }
  return SuppressionList.of({ remove })
})

/** Removal through SES's API, for `options.region`. */
export const layer = (options: SesSuppressionListOptions): Layer.Layer<SuppressionList> =>
  Layer.effect(SuppressionList, make(options))

/** `remove` does nothing: email does not go through SES. */
export const layerDisabled: Layer.Layer<SuppressionList> = Layer.succeed(
  SuppressionList,
  SuppressionList.of({ remove: () => Effect.void })
)

const RegionName = Schema.NonEmptyString.check(Schema.isPattern(/^[a-z0-9]+(?:-[a-z0-9]+)+$/))

/**
 * The region removal uses: `SES_SUPPRESSION_REGION`, else the one `EMAIL_HOST` names; null (off) when neither
 * gives one, or when `EMAIL_HOST` is unset (nothing is sent, as Zulip returns early then).
 */
export const regionConfig: Config.Config<string | null> = Config.all({
  emailHost: Config.option(Config.NonEmptyString("EMAIL_HOST")),
  region: Config.option(Config.schema(RegionName, "SES_SUPPRESSION_REGION"))
}).pipe(Config.map(({ emailHost, region }) =>
  Option.match(emailHost, { onNone: () => null, onSome: (host) => Option.getOrNull(region) ?? sesRegionOf(host) })
))

const optionalUrl = (name: string) => Config.option(HttpUrlSetting(name)).pipe(Config.map(Option.map((url) => new URL(url).href)))

/** The SESv2 API's URL: `AWS_ENDPOINT_URL_SESV2`, else `AWS_ENDPOINT_URL`, else undefined (the SDK's own). */
export const endpointConfig: Config.Config<string | undefined> = Config.all([
  optionalUrl("AWS_ENDPOINT_URL_SESV2"),
  optionalUrl("AWS_ENDPOINT_URL")
]).pipe(Config.map(([service, general]) => Option.getOrUndefined(Option.orElse(service, () => general))))

/**
 * The SDK reads these variables from the environment itself; reading them as settings too lets any
 * `ConfigProvider` (an embedding app's, a test's) reach it, and from the environment they say the same.
 */
const sdkSettingsConfig = Config.all({
  endpoint: endpointConfig,
  credentials: Config.all({
    accessKeyId: Config.option(Config.NonEmptyString("AWS_ACCESS_KEY_ID")),
    secretAccessKey: Config.option(Config.Redacted("AWS_SECRET_ACCESS_KEY")),
    sessionToken: Config.option(Config.Redacted("AWS_SESSION_TOKEN"))
  }).pipe(Config.map(({ accessKeyId, secretAccessKey, sessionToken }) =>
    Option.isSome(accessKeyId) && Option.isSome(secretAccessKey)
      ? {
        accessKeyId: accessKeyId.value,
        secretAccessKey: Redacted.value(secretAccessKey.value),
        ...Option.match(sessionToken, { onNone: () => ({}), onSome: (token) => ({ sessionToken: Redacted.value(token) }) })
      }
      : undefined
  ))
})

/** SES when `regionConfig` gives a region, else `layerDisabled`. */
export const layerConfig: Layer.Layer<SuppressionList, Config.ConfigError> = Layer.unwrap(Effect.gen(function*() {
  const region = yield* regionConfig
  if (region === null) return layerDisabled
  const { credentials, endpoint } = yield* sdkSettingsConfig
  return layer({ region, endpoint, credentials })
}))
