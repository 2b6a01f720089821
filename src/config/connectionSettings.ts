/**
 * The URL, host and port settings, checked when they are read: a malformed one stops the command at start with
 * one line naming the setting. The line never shows the value, which may hold a password. `redactUrl` is how any
 * URL-like value is shown in a log line.
 */
import { Config, Redacted, Schema } from "effect"
import { isIP } from "node:net"

const notShown = "(the value is not shown: it may hold a password)"

/** The problem with `value` as a URL of one of `schemes` (`"amqp:"`, ...), or undefined when it is one. */
export const urlProblem = (
  value: string,
  schemes: ReadonlyArray<string>,
  options: { readonly hostRequired: boolean; readonly example: string }
): string | undefined => {
  const expected = `expected a URL with the scheme ${schemes.join(" or ")}${
    options.hostRequired ? " and a host" : ""
  }, like ${options.example} ${notShown}`
  if (!URL.canParse(value)) return expected
  const url = new URL(value)
  if (!schemes.includes(url.protocol)) return expected
  if (options.hostRequired && url.hostname === "") return expected
  return undefined
}

const hostNamePattern = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/

/**
 * The problem with `value` as a bare host name or IP address, or undefined when it is one. A scheme or a port
 * inside it is refused by name: `portSetting` is where the port goes.
 */
export const hostProblem = (value: string, portSetting: string): string | undefined => {
  if (isIP(value) !== 0) return undefined
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)) {
    return `expected a host name without a scheme (set the port in ${portSetting})`
  }
  if (/^[^:]*:\d*$/.test(value)) return `expected a host name without a port: set the port in ${portSetting}`
  if (!hostNamePattern.test(value)) return "expected a host name or an IP address"
  return undefined
}

const checkedString = (name: string, problem: (value: string) => string | undefined): Config.Config<string> =>
  Config.schema(Schema.String.check(Schema.makeFilter(problem)), name)

const urlSetting = (
  name: string,
  schemes: ReadonlyArray<string>,
  options: { readonly hostRequired: boolean; readonly example: string }
): Config.Config<Redacted.Redacted<string>> =>
  checkedString(name, (value) => urlProblem(value, schemes, options)).pipe(Config.map(Redacted.make))

/** The default broker, RabbitMQ's own guest account on this machine. */
export const defaultAmqpUrl = "amqp://guest:guest@127.0.0.1:5672"

/**
 * The node URLs of an `AMQP_URL`: one URL, or several separated by commas (the nodes of a cluster, tried in this
 * order), blanks around each ignored. A comma inside a password is written `%2C`.
 */
export const amqpNodeUrls = (value: string): ReadonlyArray<string> => value.split(",").map((url) => url.trim())

const amqpUrlOptions = { hostRequired: true, example: "amqp://user:password@host:5672/vhost" }

/** The problem with an `AMQP_URL` value, naming the node by its position when there are several; or undefined. */
export const amqpUrlProblem = (value: string): string | undefined => {
  const urls = amqpNodeUrls(value)
  for (const [index, url] of urls.entries()) {
    const problem = urlProblem(url, ["amqp:", "amqps:"], amqpUrlOptions)
    if (problem !== undefined) {
      return urls.length === 1 ? problem : `node ${index + 1} of ${urls.length}: ${url === "" ? "empty" : problem}`
    }
  }
  return undefined
}

/**
 * `AMQP_URL`: an `amqp://` or `amqps://` URL with a host, or a comma-separated list of them, one per node of a
 * cluster (default `amqp://guest:guest@127.0.0.1:5672`). `amqpNodeUrls` splits it.
 */
export const AmqpUrlSetting: Config.Config<Redacted.Redacted<string>> = checkedString("AMQP_URL", amqpUrlProblem).pipe(
  Config.map(Redacted.make),
  Config.withDefault(Redacted.make(defaultAmqpUrl))
)

/** `DATABASE_URL`: a `postgres://` or `postgresql://` URL; the host may be left out (a Unix socket, `?host=`). */
export const DatabaseUrlSetting: Config.Config<Redacted.Redacted<string>> = urlSetting(
  "DATABASE_URL",
  ["postgres:", "postgresql:"],
  { hostRequired: false, example: "postgresql://user:password@host:5432/zulip" }
)

const hasUserInfo = (url: URL): boolean => url.username !== "" || url.password !== ""

/**
 * An `http://` or `https://` URL with a host and without user information, as written, e.g.
 * `OTEL_EXPORTER_OTLP_ENDPOINT`, `AWS_ENDPOINT_URL` or `EMAIL_IMAGES_BASE_URL`: `fetch` refuses a URL with
 * credentials, and its error would show them. `credentialsHint` says where they go instead.
 */
export const HttpUrlSetting = (name: string, credentialsHint = "not in the URL"): Config.Config<string> =>
  checkedString(name, (value) =>
    urlProblem(value, ["http:", "https:"], { hostRequired: true, example: "https://host.example:8443/path" }) ??
      (hasUserInfo(new URL(value))
        ? `expected a URL without a user or password: give credentials ${credentialsHint} ${notShown}`
        : undefined))

/** `EMAIL_HOST`: the SMTP server's host name or IP address alone; its port is `EMAIL_PORT`. */
export const EmailHostSetting: Config.Config<string> = checkedString("EMAIL_HOST", (value) => hostProblem(value, "EMAIL_PORT"))

/** `EMAIL_PORT` (default 25). */
export const EmailPortSetting: Config.Config<number> = Config.Port("EMAIL_PORT").pipe(Config.withDefault(25))

/** `HTTP_HOST`: the address the operations endpoint binds to (default `127.0.0.1`). */
export const HttpHostSetting: Config.Config<string> = checkedString("HTTP_HOST", (value) => hostProblem(value, "HTTP_PORT"))
  .pipe(Config.withDefault("127.0.0.1"))

/** `HTTP_PORT` (default 9100; `0` turns the operations endpoint off). */
export const HttpPortSetting: Config.Config<number> = Config.schema(
  Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })),
  "HTTP_PORT"
).pipe(Config.withDefault(9100))

/** URL schemes whose `scheme:` may be written without `//` (`amqp:user:password@host`). */
const knownSchemes = /^(?:amqps?|postgres(?:ql)?|https?|redis|rediss|smtps?):/i

/** Query parameters holding a secret: `password`, `pass`, `pwd`, `sslpassword`, `secret`, `token`, `api_key`, ... */
export const secretParameterName = /pass|pwd|secret|token|credential|signature|api[-_]?key/i

const redactQuery = (query: string): string =>
  query.split(/([&;])/).map((part) => {
    const separator = part.indexOf("=")
    if (separator < 0) return part
    const key = part.slice(0, separator)
    let name = key
    try {
      name = decodeURIComponent(key)
    } catch {
      // a malformed escape: match on the key as written
    }
    return secretParameterName.test(name) ? `${key}=***` : part
  }).join("")

/** An `AMQP_URL` as it may be logged: each node's URL through `redactUrl`. */
export const redactAmqpUrl = (value: string): string => amqpNodeUrls(value).map(redactUrl).join(",")

/** `value` with the password in its user information (up to the last `@`) replaced by `***`. */
const redactUserInfo = (value: string): string => {
  const at = value.lastIndexOf("@")
  if (at < 0) return value
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(value)?.[0] ?? knownSchemes.exec(value)?.[0] ?? ""
  const userInfo = value.slice(scheme.length, at)
  const colon = userInfo.indexOf(":")
  return colon < 0 ? value : `${scheme}${userInfo.slice(0, colon)}:***${value.slice(at)}`
}

/**
 * A URL-like value as it may be logged: the password of its user information and the values of password-like
 * query parameters replaced by `***`, whatever its form (`scheme://user:password@host`, `scheme:user:password@host`,
 * `user:password@host` without a scheme, `?password=...`). Where the parts are ambiguous (an `@` or `?` inside a
 * password), more is hidden rather than less.
 */
export const redactUrl = (value: string): string => {
  const redacted = redactUserInfo(value)
  const queryStart = redacted.indexOf("?")
  return queryStart < 0
    ? redacted
    : `${redacted.slice(0, queryStart + 1)}${redactQuery(redacted.slice(queryStart + 1))}`
}
