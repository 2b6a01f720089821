/**
 * Live `SmtpConnection`: persistent SMTP connections to one server (nodemailer's `SMTPConnection`).
 *
 * The items of an Effect `Pool` are the connections themselves. The pool opens one (EHLO, STARTTLS, login) only
 * when a send finds none free, holds at most `SMTP_CONNECTIONS`, queues senders fairly when all are busy, retires
 * a connection `EMAIL_MAX_CONNECTION_LIFETIME` after it opened, and QUITs every one when the layer's scope closes.
 * nodemailer's own pool is not used: it cannot NOOP a connection before reuse, has no maximum lifetime, and
 * requeues a message without bound when connections keep dropping.
 *
 * Before a connection idle for `idleCheck` is reused it must answer NOOP with 250 (Zulip's health check), else it
 * is invalidated and another is taken. Opening gets 3 tries with full-jitter exponential backoff (Zulip); a failure
 * to open, a timeout included, is an outage (`Unavailable`). A send that leaves the connection in doubt (socket
 * error, timeout, interruption, a reply out of turn) invalidates it; a refused message only resets it with RSET. A
 * recipient list longer than `SMTP_MAX_RECIPIENTS` goes as several transactions of the one message. */
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
  Random,
  Redacted,
  Ref,
  Schedule
} from "effect"
import type { SMTPConnectionSendInfo } from "nodemailer/lib/smtp-connection"
import { Readable } from "node:stream"
import SMTPConnection from "nodemailer/lib/smtp-connection"
import { smtpCodeOf } from "../domain/errors.ts"
import { withEventSpan } from "../operations/eventSpan.ts"
import type { DeliveryReport, OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { AttemptDeadline } from "./AttemptDeadline.ts"
import { SmtpConnection } from "./SmtpConnection.ts"
import { SmtpStatus, type SmtpStatusSnapshot } from "./SmtpStatus.ts"
import { EmailHostSetting, EmailPortSetting } from "../config/connectionSettings.ts"
import { hasUnmatchedReplies, setSocketTimeout } from "./nodemailerInternals.ts"
import { messageBytes } from "./nodemailerMessage.ts"
import {
  connectOnce,
  ConnectionLost,
  deliveryReport,
  isOneReplyLate,
  lateVerdict,
  nextReply,
  type OpenError,
  openingOf,
  quit,
  type RecipientRefusal,
  resetAfterRefusal,
  sendFailure,
  type SendFailure,
  settle
} from "./smtpSession.ts"
import { makeRefusalLog } from "../operations/refusals.ts"
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
  /** no connection this old carries a message: the pool QUITs it at that age (after its turn, if busy). Default: no limit */
  readonly maxConnectionLifetime?: Duration.Input | undefined
  /** first delay of the backoff between the 3 tries of opening a connection. Default 1 second */
  readonly connectRetryDelay?: Duration.Input | undefined
  /** most RCPT TO commands in one SMTP transaction: a longer recipient list is sent in several. Default 100 */
  readonly maxRecipients?: number | undefined
}

/** Zulip's exact wording (two spaces before "To"). */
const missingPasswordMessage = "An SMTP username was set (EMAIL_HOST_USER), but password is unset " +
  "(EMAIL_HOST_PASSWORD).  To disable SMTP authentication, set EMAIL_HOST_USER to an empty string."

/**
 * A pool item: one open connection. When its last turn ended is a `Ref`, read by whichever fiber borrows it next.
 */
interface Connection {
  readonly client: SMTPConnection
  readonly openedAt: number
  /** when its latest turn (a message or a check) ended; null until its first one ends */
  readonly lastUsedAt: Ref.Ref<number | null>
}

/** The connection lent out may not take a turn: it is invalidated once given back, and another is taken. */
class NotReady extends Data.TaggedError("NotReady") {}

const notReady = new NotReady()

/** The pool's strategy when connections have no maximum lifetime: it keeps nothing and retires nothing. */
const retiresNothing: Pool.Strategy<Connection, OpenError> = {
  run: () => Effect.void,
  onAcquire: () => Effect.void,
  reclaim: () => Effect.undefined
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

  const refusals = makeRefusalLog(`SMTP server ${target.server}`)
  const lastCheck = yield* Ref.make<SmtpStatusSnapshot["lastCheck"]>(null)
  const recordCheck = (ok: boolean) => Effect.flatMap(Clock.currentTimeMillis, (at) => Ref.set(lastCheck, { ok, at }))

  /** Opens one connection (Zulip's 3 tries); the pool runs it in its own fiber, and QUITs the connection when it retires it. */
  const openConnection = Effect.acquireRelease(
    withServer(Effect.gen(function*() {
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
      const openedAt = yield* Clock.currentTimeMillis
      return { client, openedAt, lastUsedAt: Ref.makeUnsafe<number | null>(null) } satisfies Connection
    })),
    (connection) => quit(connection.client, timeoutMillis)
  )

  // lazy (nothing opens until a send needs it), at most `capacity` connections, each retired `maxConnectionLifetime`
  // after it opened (closed in the background when idle, after its turn when busy); all QUIT when the layer's scope
  // closes. Without a lifetime, a strategy that retires nothing: the "creation" strategy keeps every connection it
  // has seen until its lifetime ends, which would be never (bench/poolRetention.ts)
  const sizes = { acquire: openConnection, min: 0, max: capacity }
  const pool = yield* options.maxConnectionLifetime === undefined
    ? Pool.makeWithStrategy({ ...sizes, strategy: retiresNothing })
    : Pool.makeWithTTL({ ...sizes, timeToLive: options.maxConnectionLifetime, timeToLiveStrategy: "creation" })

  /**
   * Whether the connection lent out may take a turn: not one the server ended while it was idle, nor one past its
   * lifetime (the pool's timer may not have retired it yet), and one idle for `idleLimitMillis` must answer NOOP
   * with 250. A new connection has just proved itself: it is checked only once idle as long as `idleCheck`. One
   * that failed its check is closed at once; one past its lifetime is left for the pool to QUIT.
   */
  const ready = (connection: Connection, idleLimitMillis: number): Effect.Effect<boolean> => {
    const { client } = connection
    if (client.destroyed) return Effect.succeed(false)
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (now - connection.openedAt >= maxLifetimeMillis) {
        return Effect.as(withServer(Effect.logInfo("Recycling an SMTP connection that reached its maximum lifetime")), false)
      }
      return Effect.flatMap(Ref.get(connection.lastUsedAt), (lastUsedAt) => {
        const idleFor = now - (lastUsedAt ?? connection.openedAt)
        if (idleFor < (lastUsedAt === null ? idleCheckMillis : idleLimitMillis)) return Effect.succeed(true)
        setSocketTimeout(client, timeoutMillis)
        return nextReply(client, "NOOP").pipe(
          // a check cut short leaves the connection's state unknown
          Effect.onInterrupt(() => Effect.sync(() => client.close())),
          Effect.match({ onFailure: () => false, onSuccess: (reply) => reply.startsWith("250") }),
          Effect.tap(recordCheck),
          Effect.tap((healthy) =>
            healthy ? Effect.void : withServer(Effect.logInfo("An idle SMTP connection failed its NOOP check; reconnecting")).pipe(
              Effect.andThen(Effect.sync(() => client.close()))
            )
          )
        )
      })
    })
  }

  /**
   * After a turn: keeps a connection that is still sound; closes at once one that broke, or whose exchange was cut
   * short (its state is unknown). A completed exchange proves the server healthy as well as a NOOP does, so
   * readiness needs no probe.
   */
  const finishTurn = (connection: Connection, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> => {
    const { client } = connection
    if (Exit.hasInterrupts(exit) || client.destroyed) return Effect.sync(() => client.close())
    // once an exchange is over, every reply has met its command; one left over or on its way came out of turn (a
    // server answering twice), and the next command would take it for its own answer, every reply one late
    if (hasUnmatchedReplies(client)) {
      client.close()
      return withServer(Effect.logWarning("The SMTP server sent a reply out of turn; closing the connection"))
    }
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      // nodemailer's socket timeout counts inactivity: off while idle in the pool, so a healthy idle connection
      // lives until its NOOP check, and on again while it works
      setSocketTimeout(client, 0)
      const used = Ref.set(connection.lastUsedAt, now)
      return Exit.isSuccess(exit) ? Effect.andThen(used, Ref.set(lastCheck, { ok: true, at: now })) : used
    })
  }

  /**
   * `use` on a pooled connection, ready. A connection that is not ready, or not sound after its turn, is invalidated
   * once given back (invalidated while lent out, the pool would open its replacement at once, needed or not); one
   * that was not ready leaves the turn to another connection. The attempt's deadline does not count the time spent
   * in the pool: waiting for a connection other sends hold (each bounded by its own deadline), or for the pool to
   * open one (bounded by `timeout` per step and 3 tries, in the pool's own fiber). It counts getting the borrowed
   * connection ready (the NOOP check), then the transaction.
   */
  const withConnection = <A, E>(
    idleLimitMillis: number,
    use: (connection: Connection) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | OpenError> =>
    Effect.flatMap(Effect.service(AttemptDeadline), (deadline) => {
      deadline.enter("getting the connection ready")
      deadline.pause()
      // this call's own: the connection lent out, and whether it was turned away before its turn
      let lent: Connection | undefined
      let turnedAway = false
      const turn = (connection: Connection) => {
        lent = connection
        deadline.resume()
        return Effect.flatMap(ready(connection, idleLimitMillis), (isReady): Effect.Effect<A, E | NotReady> => {
          if (!isReady) {
            turnedAway = true
            return Effect.fail(notReady)
          }
          deadline.enter("SMTP transaction")
          return Effect.onExit(use(connection), (exit) => finishTurn(connection, exit))
        })
      }
      // invalidated once given back: one turned away, or closed (broken, or in doubt) during its turn
      return Pool.use(pool, turn).pipe(
        Effect.onExit(() =>
          lent !== undefined && (turnedAway || lent.client.destroyed) ? Pool.invalidate(pool, lent) : Effect.void
        ),
        Effect.catchTag("NotReady", () => withConnection(idleLimitMillis, use))
      )
    })

  const deliver = (connection: Connection, email: OutgoingEmail, recipients: ReadonlyArray<string>, bytes: Buffer) =>
    Effect.suspend(() => {
      const { client } = connection
      const message = Readable.from([bytes])
      return settle<SMTPConnectionSendInfo>(
        client,
        (done) => client.send({ from: email.envelope.from, to: [...recipients] }, message, done)
      ).pipe(
        Effect.map(deliveryReport),
        Effect.catchIf(isOneReplyLate, (error) =>
          withServer(Effect.logWarning(
            `The SMTP server's replies came one late (the message was answered ${error.responseCode}); ` +
              "its verdict is the next reply, and the connection is closed"
          )).pipe(Effect.andThen(lateVerdict(client, recipients)))),
        Effect.catch((error): Effect.Effect<never, SendFailure | ConnectionLost> => {
          const failure = sendFailure(target, recipients, error)
          const connectionBroke = error.code === "ECONNECTION" || error.code === "ESOCKET"
          const refused = () => Effect.andThen(resetAfterRefusal(client), Effect.fail(failure))
          if (!connectionBroke || message.readableDidRead) return refused()
          return Effect.flatMap(Ref.get(connection.lastUsedAt), (lastUsedAt): Effect.Effect<never, SendFailure | ConnectionLost> => {
            if (lastUsedAt === null) return refused()
            // a connection that had turns before: closed now (the pool then retires it), so the next try takes
            // another connection rather than this one before it notices it is gone
            client.close()
            return Effect.fail(new ConnectionLost({ failure }))
          })
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
    withConnection(idleCheckMillis, (connection) => deliver(connection, email, recipients, bytes)).pipe(
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
  const healthCheck = withConnection(0, () => Effect.void).pipe(Effect.withSpan("SmtpPool.healthCheck"))

  // only idle connections: one in use finishes its message and is QUIT when the layer closes. The pool's state is
  // read for them, since `Pool` offers no way to take only the idle items
  const close = Effect.suspend(() =>
    Effect.forEach(
      Array.from(pool.state.items).flatMap((item) => item.refCount === 0 && Exit.isSuccess(item.exit) ? [item.exit.value] : []),
      (connection) => Pool.invalidate(pool, connection),
      { concurrency: "unbounded", discard: true }
    )
  )

  const snapshot = Effect.map(
    Effect.all([Pool.stats(pool), Ref.get(lastCheck), refusals.current]),
    ([stats, check, refusal]): SmtpStatusSnapshot => ({
      capacity,
      open: stats.idle + stats.used,
      busy: stats.used,
      waiting: stats.pending,
      lastCheck: check,
      ...(refusal === undefined ? {} : { refusal })
    })
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
