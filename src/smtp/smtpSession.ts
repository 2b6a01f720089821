/**
 * One nodemailer connection, step by step: opening it (EHLO, STARTTLS, login), one exchange at a time, and what a
 * failure means (an outage, a reply about the message, or a connection lost under it). `SmtpPool.ts` keeps several
 * of these; the `check` command opens one and sends NOOP.
 */
import { Data, Duration, Effect, Redacted } from "effect"
import type { SMTPConnectionOptions, SMTPConnectionSendInfo, SMTPError } from "nodemailer/lib/smtp-connection"
import SMTPConnection from "nodemailer/lib/smtp-connection"
import { DnsError, NotDelivered, Rejected, TimeoutError, Unavailable } from "../domain/errors.ts"
import type { DeliveryReport } from "../domain/OutgoingEmail.ts"
import { describeRefusal, type Refusal } from "../operations/refusals.ts"
import { onNextReply } from "./nodemailerInternals.ts"
import type { SmtpPoolOptions } from "./SmtpPool.ts"

/** What failure messages name. */
export interface Target {
  readonly host: string
  readonly server: string
  readonly timeoutMillis: number
}

export type OpenError = DnsError | Unavailable
export type SendFailure = TimeoutError | NotDelivered | Rejected | Unavailable

/**
 * A reused connection broke before any of the message went out (the server had closed it): nothing was sent, so
 * another connection may take the message, as nodemailer's own pool does.
 */
export class ConnectionLost extends Data.TaggedError("ConnectionLost")<{ readonly failure: SendFailure }> {}

type Done<A> = (error: SMTPError | null | undefined, value?: A) => void

/**
 * Runs one nodemailer callback operation. When the connection fails or ends in the middle, nodemailer tells only
 * its `error` / `end` listeners (the operation's callback is never called), so those settle the operation too.
 */
export const settle = <A>(client: SMTPConnection, start: (done: Done<A>) => void): Effect.Effect<A, SMTPError> =>
  Effect.callback<A, SMTPError>((resume) => {
    const stopListening = () => {
      client.off("error", onError)
      client.off("end", onEnd)
    }
    const finish = (outcome: Effect.Effect<A, SMTPError>) => {
      stopListening()
      resume(outcome)
    }
    const onError = (error: SMTPError) => finish(Effect.fail(error))
    const onEnd = () =>
      finish(Effect.fail(Object.assign(new Error("Connection closed"), { code: "ECONNECTION" }) satisfies SMTPError))
    client.on("error", onError)
    client.on("end", onEnd)
    start((error, value) => finish(error ? Effect.fail(error) : Effect.succeed(value as A)))
    return Effect.sync(stopListening)
  })

/** The server's next reply: to `command`, sent first, or (without one) to a command already answered out of turn. */
export const nextReply = (client: SMTPConnection, command?: string): Effect.Effect<string, SMTPError> =>
  settle<string>(client, (done) => onNextReply(client, (reply) => done(null, reply), command))

/**
 * The message's own reply was not a final one (1xx-3xx, e.g. the 354 that answers DATA): a reply came out of turn
 * earlier in the exchange, and every reply since was taken by the command before its own. The server has the whole
 * message; its verdict is the next reply.
 */
export const isOneReplyLate = (error: SMTPError): boolean =>
  error.code === "EMESSAGE" && error.responseCode !== undefined && error.responseCode < 400

/** The verdict on a message whose replies came one late; the connection is closed, since its turns are not to be trusted. */
export const lateVerdict = (client: SMTPConnection, recipients: ReadonlyArray<string>): Effect.Effect<DeliveryReport, SMTPError> =>
  nextReply(client).pipe(
    Effect.ensuring(Effect.sync(() => client.close())),
    Effect.flatMap((reply) => {
      if (reply.startsWith("2")) return Effect.succeed({ accepted: recipients, rejected: [], response: reply })
      const responseCode = Number(reply.slice(0, 3))
      const error: SMTPError = Object.assign(new Error(`Message failed: ${reply}`), {
        code: "EMESSAGE",
        response: reply,
        responseCode,
        permanent: responseCode >= 500
      })
      return Effect.fail(error)
    })
  )

/** A refused message leaves the session usable once RSET ends the transaction (as nodemailer's own pool does). */
export const resetAfterRefusal = (client: SMTPConnection): Effect.Effect<void> =>
  client.destroyed
    ? Effect.void
    : settle<boolean>(client, (done) => client.reset(done)).pipe(
      Effect.asVoid,
      Effect.catch(() => Effect.sync(() => client.close()))
    )

// An idle connection's error only ends it (noticed before reuse); errors during an operation reach it through
// `settle`. Without a listener, an `error` event would crash the process.
export const absorbIdleError = (): void => {}

const dnsCodes: ReadonlySet<string> = new Set(["EDNS", "ENOTFOUND", "EAI_AGAIN"])

/** Where an opening step timed out, by nodemailer's timeout type; its socket timeout does not say which step it cut. */
const openingStages: Readonly<Record<string, string>> = {
  CONNECT_TIMEOUT: "while connecting",
  UPGRADE_TIMEOUT: "during the TLS upgrade",
  GREETING_TIMEOUT: "while waiting for the greeting"
}

/** A login refused for good (535): only a change of the credentials ends it; a 4xx refusal is temporary. */
const loginRefusal = (error: SMTPError): Refusal | undefined =>
  error.code === "EAUTH" && error.responseCode !== undefined && error.responseCode >= 500
    ? { setting: "EMAIL_HOST_USER / EMAIL_HOST_PASSWORD", reason: error.response ?? error.message }
    : undefined

/**
 * Opening failed: the host does not resolve, or the server as a whole is out. A step that times out (connecting,
 * the greeting, TLS, the login) is an outage too: a server that accepts connections but never greets is as out
 * as one that refuses them, and no message has reached it.
 */
const openFailure = (target: Target, error: SMTPError): OpenError => {
  const refusal = loginRefusal(error)
  if (refusal !== undefined) {
    return new Unavailable({ message: `SMTP server ${target.server} ${describeRefusal(refusal)}`, dependency: "smtp", refusal })
  }
  const code = error.originalCode ?? error.code ?? ""
  if (error.code === "EDNS" || dnsCodes.has(code)) {
    const message = `Cannot resolve SMTP host ${target.host}: ${error.message}`
    return new DnsError({ message, host: target.host, code })
  }
  const reason = error.code === "ETIMEDOUT"
    ? `no answer within ${target.timeoutMillis} ms ${openingStages[error.timeoutType ?? ""] ?? "while opening the session"}`
    : error.message
  return new Unavailable({ message: `SMTP server ${target.server} is unavailable: ${reason}`, dependency: "smtp" })
}

/** Sending failed: a reply about this message (4xx / 5xx), or the connection broke under it. */
export const sendFailure = (
  target: Target,
  recipients: ReadonlyArray<string>,
  error: SMTPError
): SendFailure => {
  if (error.code === "ETIMEDOUT") {
    return new TimeoutError({
      message: `SMTP socket timed out after ${target.timeoutMillis} ms (${target.server})`,
      stage: "socket",
      timeoutMillis: target.timeoutMillis
    })
  }
  const smtpCode = error.responseCode
  if (smtpCode === undefined) {
    return new NotDelivered({
      message: `SMTP server ${target.server} did not take the message: ${error.message}`,
      smtpCode: null,
      response: null
    })
  }
  // the server wants a login this worker is not configured for: a configuration problem, not this message's
  if (smtpCode === 530) {
    const message = `SMTP server ${target.server} requires authentication: ${error.message}`
    return new Unavailable({ message, dependency: "smtp" })
  }
  const response = error.response ?? error.message
  const message = `SMTP server ${target.server} answered ${smtpCode}: ${response}`
  // nodemailer's reading of the reply class: 5xx but 503 is final; with no recipient accepted it already prefers
  // a 4xx refusal, so one deferred recipient keeps the whole message retryable
  return error.permanent === true
    ? new Rejected({ message, smtpCode, response, recipients: error.rejected ?? [...recipients] })
    : new NotDelivered({ message, smtpCode, response })
}

export type RecipientRefusal = DeliveryReport["rejected"][number]

export const deliveryReport = (info: SMTPConnectionSendInfo): DeliveryReport => ({
  accepted: info.accepted,
  rejected: (info.rejectedErrors ?? []).map((error) => ({
    address: error.recipient ?? "",
    smtpCode: error.responseCode ?? null,
    response: error.response ?? error.message
  })),
  response: info.response
})

/** How one connection is opened: where, and with which login. */
export interface Opening {
  readonly target: Target
  readonly connectionOptions: SMTPConnectionOptions
  readonly user: string
  readonly password: Redacted.Redacted<string> | undefined
}

export const openingOf = (options: SmtpPoolOptions): Opening => {
  const port = options.port ?? 25
  const encryption = options.encryption ?? "none"
  const timeoutMillis = Duration.toMillis(options.timeout ?? Duration.seconds(15))
  const target: Target = { host: options.host, server: `${options.host}:${port}`, timeoutMillis }
  const connectionOptions: SMTPConnectionOptions = {
    host: options.host,
    port,
    secure: encryption === "ssl",
    requireTLS: encryption === "starttls",
    // as in Django, an unencrypted setting stays unencrypted even when the server offers STARTTLS
    ignoreTLS: encryption === "none",
    tls: { rejectUnauthorized: options.tlsInsecure !== true },
    connectionTimeout: timeoutMillis,
    greetingTimeout: timeoutMillis,
    socketTimeout: timeoutMillis,
    dnsTimeout: timeoutMillis
  }
  return { target, connectionOptions, user: options.user ?? "", password: options.password }
}

/** As Django: log in only with both a user and a password. */
export const logsIn = ({ password, user }: Opening): boolean =>
  user !== "" && password !== undefined && Redacted.value(password) !== ""

/** One connection: greeted (EHLO, STARTTLS when required) and logged in when configured. */
export const connectOnce = (opening: Opening): Effect.Effect<SMTPConnection, OpenError> =>
  Effect.suspend(() => {
    const client = new SMTPConnection(opening.connectionOptions)
    client.on("error", absorbIdleError)
    const login = logsIn(opening)
      ? settle<boolean>(client, (done) => client.login({ user: opening.user, pass: Redacted.value(opening.password!) }, done))
      : Effect.void
    return settle<void>(client, (done) => client.connect(done)).pipe(
      Effect.andThen(login),
      Effect.mapError((error) => openFailure(opening.target, error)),
      Effect.onError(() => Effect.sync(() => client.close())),
      Effect.as(client)
    )
  })

export const quit = (client: SMTPConnection, timeoutMillis: number): Effect.Effect<void> =>
  client.destroyed ? Effect.void : Effect.callback<void>((resume) => {
    client.once("end", () => resume(Effect.void))
    client.quit()
  }).pipe(Effect.timeoutOrElse({ duration: timeoutMillis, orElse: () => Effect.sync(() => client.close()) }))

/**
 * `check`: one connection (EHLO, STARTTLS when required, AUTH when configured), NOOP, QUIT; no mail is sent.
 * Gives what was done, e.g. `smtp.example.com:587: EHLO, TLS, AUTH as mailer, NOOP 250 OK`.
 */
export const checkServer = (options: SmtpPoolOptions): Effect.Effect<string, OpenError> => {
  const opening = openingOf(options)
  const { target } = opening
  // opening stays interruptible (a caller's deadline closes the connection at once): no acquireUseRelease
  return Effect.flatMap(connectOnce(opening), (client) =>
    nextReply(client, "NOOP").pipe(
      Effect.mapError((error) => openFailure(target, error)),
      Effect.flatMap((reply) =>
        reply.startsWith("250")
          ? Effect.succeed(
            `${target.server}: EHLO${client.secure ? ", TLS" : ""}${logsIn(opening) ? `, AUTH as ${opening.user}` : ""}, NOOP ${reply.trim()}`
          )
          : Effect.fail(new Unavailable({ message: `SMTP server ${target.server} answered NOOP with ${reply.trim()}`, dependency: "smtp" }))
      ),
      Effect.ensuring(quit(client, target.timeoutMillis))
    ))
}
