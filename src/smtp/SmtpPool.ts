/**
 * Live `SmtpConnection`: persistent SMTP connections to one server (nodemailer's `SMTPConnection`).
 *
 * An Effect `Pool` of `SMTP_CONNECTIONS` slots bounds how many connections exist, queues senders fairly when all are
 * busy, and releases every slot (QUIT) when the layer's scope closes. Each slot opens its connection on first use,
 * so nothing connects at layer start. nodemailer's own pool is not used: it cannot NOOP a connection before reuse,
 * has no maximum lifetime, and requeues a message without bound when connections keep dropping.
 *
 * Before a connection idle for `idleCheck` is reused it must answer NOOP with 250 (Zulip's health check), else it
 * is replaced. Opening gets 3 tries with full-jitter exponential backoff (Zulip); a failure to open, a timeout
 * included, is an outage (`Unavailable`). A send that leaves the connection in doubt (socket error, timeout,
 * interruption, a reply out of turn) discards it; a refused message only resets it with RSET. A recipient list
 * longer than `SMTP_MAX_RECIPIENTS` goes as several transactions of the one message.
 */
import {
  Clock,
  Config,
  ConfigProvider,
  Context,
  Data,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Pool,
  Queue,
  Random,
  Redacted,
  Ref,
  Schedule
} from "effect"
import { Readable } from "node:stream"
import type { SMTPConnectionOptions, SMTPConnectionSendInfo, SMTPError } from "nodemailer/lib/smtp-connection"
import SMTPConnection from "nodemailer/lib/smtp-connection"
import { DnsError, NotDelivered, Rejected, smtpCodeOf, TimeoutError, Unavailable } from "../domain/errors.ts"
import { withEventSpan } from "../operations/eventSpan.ts"
import type { DeliveryReport, OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { AttemptDeadline } from "./AttemptDeadline.ts"
import { SmtpConnection } from "./SmtpConnection.ts"
import { SmtpStatus, type SmtpStatusSnapshot } from "./SmtpStatus.ts"
import { EmailHostSetting, EmailPortSetting } from "../config/connectionSettings.ts"
import { hasUnmatchedReplies, onNextReply, setSocketTimeout } from "./nodemailerInternals.ts"
import { messageBytes } from "./nodemailerMessage.ts"
import { describeRefusal, makeRefusalLog, type Refusal } from "../operations/refusals.ts"
import { CountSetting, DurationSetting } from "../config/settingValues.ts"

export type Encryption = "none" | "starttls" | "ssl"

export interface SmtpPoolOptions {
  readonly host: string
  /** default 25 (465 is usual with "ssl") */
  readonly port?: number | undefined
  /** empty (the default) disables authentication */
  readonly user?: string | undefined
  /** unset while a user is set is a configuration mistake (logged, no login); an empty password disables login */
  readonly password?: Redacted.Redacted<string> | undefined
  /** "starttls": STARTTLS is required, never a plaintext fallback; "ssl": TLS from the first byte. Default "none" */
  readonly encryption?: Encryption | undefined
  /** accept a certificate that does not verify (self-signed servers). Default false */
  readonly tlsInsecure?: boolean | undefined
  /** connection, greeting and socket timeout. Default 15 seconds */
  readonly timeout?: Duration.Input | undefined
  /** how many connections may be open at once. Default 4 */
  readonly connections?: number | undefined
  /** a connection idle this long must answer NOOP before it is reused. Default 5 seconds */
  readonly idleCheck?: Duration.Input | undefined
  /** a connection this old is closed and reopened before its next use. Default: no limit */
  readonly maxConnectionLifetime?: Duration.Input | undefined
  /** first delay of the backoff between the 3 tries of opening a connection. Default 1 second */
  readonly connectRetryDelay?: Duration.Input | undefined
  /** most RCPT TO commands in one SMTP transaction: a longer recipient list is sent in several. Default 100 */
  readonly maxRecipients?: number | undefined
}

/** Zulip's exact wording (two spaces before "To"). */
const missingPasswordMessage = "An SMTP username was set (EMAIL_HOST_USER), but password is unset " +
  "(EMAIL_HOST_PASSWORD).  To disable SMTP authentication, set EMAIL_HOST_USER to an empty string."

interface Session {
  readonly client: SMTPConnection
  readonly openedAt: number
  readonly lastUsedAt: number
  /** has carried a message or a check before the current one */
  readonly reused: boolean
}

interface SlotState {
  /** the connection, opened when first needed */
  readonly session: Session | undefined
  /** lent out to a send or a health check */
  readonly busy: boolean
}

/** A pool item: room for one connection. A `Ref`, since the status snapshot and `close` read it from other fibers. */
type Slot = Ref.Ref<SlotState>

const emptySlot: SlotState = { session: undefined, busy: false }

/** What failure messages name. */
interface Target {
  readonly host: string
  readonly server: string
  readonly timeoutMillis: number
}

type OpenError = DnsError | Unavailable
type SendFailure = TimeoutError | NotDelivered | Rejected | Unavailable

/**
 * A reused connection broke before any of the message went out (the server had closed it): nothing was sent, so
 * another connection may take the message, as nodemailer's own pool does.
 */
class ConnectionLost extends Data.TaggedError("ConnectionLost")<{ readonly failure: SendFailure }> {}

type Done<A> = (error: SMTPError | null | undefined, value?: A) => void

/**
 * Runs one nodemailer callback operation. When the connection fails or ends in the middle, nodemailer tells only
 * its `error` / `end` listeners (the operation's callback is never called), so those settle the operation too.
 */
const settle = <A>(client: SMTPConnection, start: (done: Done<A>) => void): Effect.Effect<A, SMTPError> =>
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
const nextReply = (client: SMTPConnection, command?: string): Effect.Effect<string, SMTPError> =>
  settle<string>(client, (done) => onNextReply(client, (reply) => done(null, reply), command))

/**
 * The message's own reply was not a final one (1xx-3xx, e.g. the 354 that answers DATA): a reply came out of turn
 * earlier in the exchange, and every reply since was taken by the command before its own. The server has the whole
 * message; its verdict is the next reply.
 */
const isOneReplyLate = (error: SMTPError): boolean =>
  error.code === "EMESSAGE" && error.responseCode !== undefined && error.responseCode < 400

/** The verdict on a message whose replies came one late; the connection is closed, since its turns are not to be trusted. */
const lateVerdict = (client: SMTPConnection, recipients: ReadonlyArray<string>): Effect.Effect<DeliveryReport, SMTPError> =>
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
const resetAfterRefusal = (client: SMTPConnection): Effect.Effect<void> =>
  client.destroyed
    ? Effect.void
    : settle<boolean>(client, (done) => client.reset(done)).pipe(
      Effect.asVoid,
      Effect.catch(() => Effect.sync(() => client.close()))
    )

// An idle connection's error only ends it (noticed before reuse); errors during an operation reach it through
// `settle`. Without a listener, an `error` event would crash the process.
const absorbIdleError = (): void => {}

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
const sendFailure = (
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

type RecipientRefusal = DeliveryReport["rejected"][number]

const deliveryReport = (info: SMTPConnectionSendInfo): DeliveryReport => ({
  accepted: info.accepted,
  rejected: (info.rejectedErrors ?? []).map((error) => ({
    address: error.recipient ?? "",
    smtpCode: error.responseCode ?? null,
    response: error.response ?? error.message
  })),
  response: info.response
})

/** How one connection is opened: where, and with which login. */
interface Opening {
  readonly target: Target
  readonly connectionOptions: SMTPConnectionOptions
  readonly user: string
  readonly password: Redacted.Redacted<string> | undefined
}

const openingOf = (options: SmtpPoolOptions): Opening => {
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
const logsIn = ({ password, user }: Opening): boolean =>
  user !== "" && password !== undefined && Redacted.value(password) !== ""

/** One connection: greeted (EHLO, STARTTLS when required) and logged in when configured. */
const connectOnce = (opening: Opening): Effect.Effect<SMTPConnection, OpenError> =>
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

const quit = (client: SMTPConnection, timeoutMillis: number): Effect.Effect<void> =>
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

const make = Effect.fnUntraced(function*(options: SmtpPoolOptions) {
  const opening = openingOf(options)
  const { target } = opening
  const { timeoutMillis } = target
  const capacity = options.connections ?? 4
  const maxRecipients = options.maxRecipients ?? 100
  const idleCheckMillis = Duration.toMillis(options.idleCheck ?? Duration.seconds(5))
  const maxLifetimeMillis = options.maxConnectionLifetime === undefined
    ? Number.POSITIVE_INFINITY
    : Duration.toMillis(options.maxConnectionLifetime)
  // the pool's own lines name the server (not every send: annotating costs, and a send's lines are the pipeline's)
  const withServer = Effect.annotateLogs({ smtpServer: target.server })
  const connectRetry = Schedule.exponential(options.connectRetryDelay ?? Duration.seconds(1)).pipe(
    // full jitter: anywhere between no wait and the exponential delay
    Schedule.modifyDelay(({ duration }) => Effect.map(Random.next, (fraction) => Duration.times(duration, fraction))),
    Schedule.upTo({ times: 2 })
  )

  const slots: ReadonlyArray<Slot> = Array.from({ length: capacity }, () => Ref.makeUnsafe(emptySlot))
  const refusals = makeRefusalLog(`SMTP server ${target.server}`)
  const lastCheck = yield* Ref.make<SmtpStatusSnapshot["lastCheck"]>(null)
  const recordCheck = (ok: boolean) => Effect.flatMap(Clock.currentTimeMillis, (at) => Ref.set(lastCheck, { ok, at }))

  const openSession = withServer(Effect.gen(function*() {
    if (opening.user !== "" && opening.password === undefined) yield* Effect.logError(missingPasswordMessage)
    const client = yield* connectOnce(opening).pipe(
      Effect.tapError((error) =>
        error._tag === "Unavailable" && error.refusal !== undefined
          ? refusals.refused(error.refusal)
          : Effect.logWarning("Opening an SMTP connection failed").pipe(
            Effect.annotateLogs({ error: error._tag, reason: error.message })
          )
      ),
      // a refusal is not retried here: the same credentials would be refused again at once
      Effect.retry({ schedule: connectRetry, while: (error) => error._tag !== "Unavailable" || error.refusal === undefined }),
      Effect.tapError(() => recordCheck(false))
    )
    yield* refusals.accepted
    yield* recordCheck(true)
    const now = yield* Clock.currentTimeMillis
    return { client, openedAt: now, lastUsedAt: now, reused: false } satisfies Session
  }))

  /** Takes the slot's connection out of it, leaving the slot as busy as it was. */
  const detach = (slot: Slot): Effect.Effect<Session | undefined> =>
    Ref.modify(slot, (state) => [state.session, { session: undefined, busy: state.busy }])

  /**
   * The connection `current` (the slot's, or none), checked for use, else a new one; the slot is left holding what
   * is returned.
   */
  const readySession = Effect.fnUntraced(function*(slot: Slot, current: Session | undefined, idleLimitMillis: number) {
    let usable = current
    if (current?.client.destroyed === true) {
      // the server ended it while it was idle
      usable = undefined
    } else if (current !== undefined) {
      setSocketTimeout(current.client, timeoutMillis)
      const now = yield* Clock.currentTimeMillis
      if (now - current.openedAt >= maxLifetimeMillis) {
        yield* withServer(Effect.logInfo("Recycling an SMTP connection that reached its maximum lifetime"))
        yield* quit(current.client, timeoutMillis)
        usable = undefined
      } else if (now - current.lastUsedAt >= idleLimitMillis) {
        const healthy = yield* nextReply(current.client, "NOOP").pipe(
          Effect.match({ onFailure: () => false, onSuccess: (reply) => reply.startsWith("250") })
        )
        yield* recordCheck(healthy)
        if (!healthy) {
          yield* withServer(Effect.logInfo("An idle SMTP connection failed its NOOP check; reconnecting"))
          current.client.close()
          usable = undefined
        }
      }
    }
    if (usable !== undefined) return usable
    if (current !== undefined) yield* Ref.set(slot, { session: undefined, busy: true })
    const session = yield* openSession
    yield* Ref.set(slot, { session, busy: true })
    return session
  })

  /**
   * After the slot's turn: parks a connection that is still sound; discards one that broke, or whose check or
   * exchange was cut short (its state is unknown). A completed exchange proves the server healthy as well as a NOOP
   * does, so readiness needs no probe.
   */
  const finishTurn = (
    slot: Slot,
    session: Session | undefined,
    exit: Exit.Exit<unknown, unknown>
  ): Effect.Effect<void> => {
    if (Exit.hasInterrupts(exit) || session?.client.destroyed === true) {
      return Effect.map(Ref.getAndSet(slot, emptySlot), (state) => state.session?.client.close())
    }
    // the check before the exchange failed, and has dealt with the connection itself
    if (session === undefined) return Ref.set(slot, emptySlot)
    // once an exchange is over, every reply has met its command; one left over or on its way came out of turn (a
    // server answering twice), and the next command would take it for its own answer, every reply one late
    if (hasUnmatchedReplies(session.client)) {
      session.client.close()
      return Effect.andThen(
        Ref.set(slot, emptySlot),
        withServer(Effect.logWarning("The SMTP server sent a reply out of turn; closing the connection"))
      )
    }
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      // nodemailer's socket timeout counts inactivity: off while parked, so a healthy idle connection lives until
      // its NOOP check, and on again while it works
      setSocketTimeout(session.client, 0)
      const parked = Ref.set(slot, { session: { ...session, lastUsedAt: now, reused: true }, busy: false })
      return Exit.isSuccess(exit) ? Effect.andThen(parked, Ref.set(lastCheck, { ok: true, at: now })) : parked
    })
  }

  // the pool hands out the slots made above, and QUITs their connections when the layer's scope closes
  const freeSlots = yield* Queue.unbounded<Slot>()
  yield* Queue.offerAll(freeSlots, slots)
  const pool = yield* Pool.make({
    acquire: Effect.acquireRelease(
      Queue.take(freeSlots),
      (slot) =>
        Effect.flatMap(
          detach(slot),
          (session) => session === undefined ? Effect.void : quit(session.client, timeoutMillis)
        )
    ),
    size: capacity
  })

  /**
   * `use` on a slot's connection, ready. The attempt's deadline does not count the wait for a free slot (other sends
   * hold them, each bounded by its own deadline); it counts getting the connection ready, then the transaction.
   */
  const withSession = <A, E>(idleLimitMillis: number, use: (session: Session) => Effect.Effect<A, E>) =>
    Effect.flatMap(Effect.service(AttemptDeadline), (deadline) => {
      deadline.enter("waiting for a connection")
      deadline.pause()
      return Pool.use(pool, (slot) => {
        deadline.resume()
        let session: Session | undefined
        return Ref.modify(slot, (state): [Session | undefined, SlotState] => [state.session, { session: state.session, busy: true }]).pipe(
          Effect.flatMap((current) => readySession(slot, current, idleLimitMillis)),
          Effect.flatMap((ready) => {
            session = ready
            deadline.enter("SMTP transaction")
            return use(ready)
          }),
          Effect.onExit((exit) => finishTurn(slot, session, exit))
        )
      })
    })

  const deliver = (session: Session, email: OutgoingEmail, recipients: ReadonlyArray<string>, bytes: Buffer) =>
    Effect.suspend(() => {
      const message = Readable.from([bytes])
      return settle<SMTPConnectionSendInfo>(
        session.client,
        (done) => session.client.send({ from: email.envelope.from, to: [...recipients] }, message, done)
      ).pipe(
        Effect.map(deliveryReport),
        Effect.catchIf(isOneReplyLate, (error) =>
          withServer(Effect.logWarning(
            `The SMTP server's replies came one late (the message was answered ${error.responseCode}); ` +
              "its verdict is the next reply, and the connection is closed"
          )).pipe(Effect.andThen(lateVerdict(session.client, recipients)))),
        Effect.catch((error): Effect.Effect<never, SendFailure | ConnectionLost> => {
          const failure = sendFailure(target, recipients, error)
          const connectionBroke = error.code === "ECONNECTION" || error.code === "ESOCKET"
          if (session.reused && connectionBroke && !message.readableDidRead) {
            // closed now, so the next try takes another connection rather than this one before it notices it is gone
            session.client.close()
            return Effect.fail(new ConnectionLost({ failure }))
          }
          return Effect.andThen(resetAfterRefusal(session.client), Effect.fail(failure))
        })
      )
    })

  /** A reused connection that broke before any of the message went out: another connection takes it, up to `capacity` times. */
  const deliverOnSomeConnection = (
    email: OutgoingEmail,
    recipients: ReadonlyArray<string>,
    bytes: Buffer,
    reconnects: number
  ): Effect.Effect<DeliveryReport, OpenError | SendFailure> =>
    withSession(idleCheckMillis, (session) => deliver(session, email, recipients, bytes)).pipe(
      Effect.catchTag("ConnectionLost", ({ failure }) =>
        reconnects > 0 ? deliverOnSomeConnection(email, recipients, bytes, reconnects - 1) : Effect.fail(failure))
    )

  /**
   * A recipient list longer than `maxRecipients` goes in several transactions of the same message (same
   * Message-ID), their reports merged. A transaction the server answered with a refusal refuses its recipients with
   * that reply, and the next one is tried; one that got no reply (the connection, a timeout, an outage) ends the
   * message, its recipients and those not tried yet deferred. The pipeline then requeues a copy for the deferred
   * ones and records the refused ones, for them alone. If no transaction was accepted, nobody has the message, and
   * it fails as a whole: with a failure that may pass later if there is one, so no recipient is given up too soon.
   * Once one is accepted the attempt's deadline stops: cutting the attempt then would send that one again.
   */
  const deliverInTransactions = Effect.fnUntraced(function*(email: OutgoingEmail, bytes: Buffer) {
    const deadline = yield* AttemptDeadline
    const recipients = email.envelope.to
    const accepted: Array<string> = []
    const rejected: Array<RecipientRefusal> = []
    const failures: Array<OpenError | SendFailure> = []
    let response = ""
    for (let start = 0; start < recipients.length; start += maxRecipients) {
      const group = recipients.slice(start, start + maxRecipients)
      const outcome = yield* Effect.result(deliverOnSomeConnection(email, group, bytes, capacity))
      if (outcome._tag === "Success") {
        deadline.stop()
        accepted.push(...outcome.success.accepted)
        rejected.push(...outcome.success.rejected)
        response = outcome.success.response
        continue
      }
      const failure = outcome.failure
      failures.push(failure)
      const smtpCode = smtpCodeOf(failure)
      rejected.push(...group.map((address) => ({ address, smtpCode, response: failure.message })))
      if (smtpCode === null) {
        const untried = recipients.slice(start + maxRecipients)
        rejected.push(...untried.map((address) => ({ address, smtpCode: null, response: `not tried after: ${failure.message}` })))
        break
      }
    }
    const decisive = failures.find((failure) => failure._tag !== "Rejected") ?? failures[0]
    if (accepted.length === 0 && decisive !== undefined) return yield* Effect.fail(decisive)
    return { accepted, rejected, response } satisfies DeliveryReport
  })

  /**
   * The message is composed before a connection is taken, so a connection waits only on the network. It goes to
   * nodemailer as one chunk: streamed as composed, each MIME part's pieces became socket writes of their own (a
   * system call each; as one chunk the worker spent ~9 % less CPU per email on a 20k backlog). A span per send
   * when tracing is on; `Effect.fn` would also record a stack frame for every email.
   */
  const send = (email: OutgoingEmail) =>
    Effect.flatMap(messageBytes(email), (bytes) =>
      email.envelope.to.length <= maxRecipients
        ? deliverOnSomeConnection(email, email.envelope.to, bytes, capacity)
        : deliverInTransactions(email, bytes)).pipe(
      withEventSpan("SmtpPool.send")
    )

  // an existing connection is always NOOPed; a newly opened one has just proved itself
  const healthCheck = withSession(0, () => Effect.void).pipe(Effect.withSpan("SmtpPool.healthCheck"))

  // only idle connections: one in use finishes its message and is QUIT when the layer closes
  const close = Effect.forEach(
    slots,
    (slot) =>
      Effect.flatMap(
        Ref.modify(slot, (state): [Session | undefined, SlotState] =>
          state.busy || state.session === undefined ? [undefined, state] : [state.session, emptySlot]),
        (session) => session === undefined ? Effect.void : quit(session.client, timeoutMillis)
      ),
    { concurrency: "unbounded", discard: true }
  )

  const snapshot = Effect.map(
    Effect.all([Effect.forEach(slots, Ref.get), Ref.get(lastCheck), refusals.current]),
    ([states, check, refusal]): SmtpStatusSnapshot => {
      let open = 0
      let busy = 0
      for (const state of states) {
        if (state.session !== undefined && !state.session.client.destroyed) open++
        if (state.busy) busy++
      }
      return { capacity, open, busy, lastCheck: check, ...(refusal === undefined ? {} : { refusal }) }
    }
  )

  return Context.make(SmtpConnection, SmtpConnection.of({ send, healthCheck, close })).pipe(
    Context.add(SmtpStatus, SmtpStatus.of({ snapshot }))
  )
})

export const layer = (options: SmtpPoolOptions): Layer.Layer<SmtpConnection | SmtpStatus> =>
  Layer.effectContext(make(options))

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.option(config).pipe(Config.map(Option.getOrUndefined))

const encryptionConfig: Config.Config<Encryption> = Config.all({
  useTls: Config.Boolean("EMAIL_USE_TLS").pipe(Config.withDefault(false)),
  useSsl: Config.Boolean("EMAIL_USE_SSL").pipe(Config.withDefault(false))
}).pipe(Config.flatMap(({ useSsl, useTls }) =>
  useTls && useSsl
    ? Config.fail(new ConfigProvider.SourceError({ message: "EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive" }))
    : Config.succeed<Encryption>(useSsl ? "ssl" : useTls ? "starttls" : "none")
))

/** The settings from the environment (names as in Zulip's settings where Zulip has them). */
export const optionsConfig: Config.Config<SmtpPoolOptions> = Config.all({
  host: EmailHostSetting,
  port: EmailPortSetting,
  user: Config.String("EMAIL_HOST_USER").pipe(Config.withDefault("")),
  password: optional(Config.Redacted("EMAIL_HOST_PASSWORD")),
  encryption: encryptionConfig,
  tlsInsecure: Config.Boolean("EMAIL_TLS_INSECURE").pipe(Config.withDefault(false)),
  timeout: DurationSetting("EMAIL_TIMEOUT").pipe(Config.withDefault(Duration.seconds(15))),
  connections: CountSetting("SMTP_CONNECTIONS", 1).pipe(Config.withDefault(4)),
  idleCheck: DurationSetting("SMTP_IDLE_CHECK").pipe(Config.withDefault(Duration.seconds(5))),
  maxConnectionLifetime: optional(DurationSetting("EMAIL_MAX_CONNECTION_LIFETIME")),
  maxRecipients: CountSetting("SMTP_MAX_RECIPIENTS", 1).pipe(Config.withDefault(100))
})

export const layerConfig: Layer.Layer<SmtpConnection | SmtpStatus, Config.ConfigError> = Layer.unwrap(
  Effect.gen(function*() {
    return layer(yield* optionsConfig)
  })
)
