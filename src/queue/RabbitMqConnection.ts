/**
 * The broker connection the RabbitMQ consumer and publisher share. It stays open for the life of the layer: a lost
 * connection (broker restart, forced close, network cut noticed by heartbeats) is reopened with a capped, jittered
 * exponential backoff, forever, and every session built on it (channels, declarations, consumers) is built again
 * on the new connection.
 */
import { type Channel, type ChannelModel, type ConfirmChannel, connect } from "amqplib"
import {
  Config,
  Context,
  Deferred,
  Duration,
  Effect,
  Layer,
  Redacted,
  Ref,
  Schedule,
  type Scope,
  SubscriptionRef
} from "effect"
import { QueueError } from "../domain/errors.ts"
import { AmqpUrlSetting, redactUrl } from "../config/connectionSettings.ts"
import { describeRefusal, makeRefusalLog, type Refusal } from "../operations/refusals.ts"
import { QueueNameSetting } from "../config/settingValues.ts"

export interface ConnectionOptions {
  /** `amqp://user:password@host:port/vhost`; query settings such as `heartbeat` or `frameMax` are honoured */
  readonly url: Redacted.Redacted<string>
  /** used when the URL sets no `heartbeat`; a dead peer is noticed after about two intervals (default 30 seconds) */
  readonly heartbeat?: Duration.Input
  /** the name the broker shows for this connection (management UI, `rabbitmqctl list_connections`) */
  readonly connectionName?: string
  /** how long opening a connection may go without an answer from the broker (default 10 seconds) */
  readonly connectTimeout?: Duration.Input
  /** the first reconnect delay (default 100 ms); it doubles per failed attempt, jittered, up to `reconnectMaxDelay` */
  readonly reconnectBaseDelay?: Duration.Input
  /** the longest wait between reconnect attempts (default 30 seconds) */
  readonly reconnectMaxDelay?: Duration.Input
}

/** What a session is built from: the open connection, and channels whose closing ends the session. */
export interface SessionContext {
  readonly connection: ChannelModel
  readonly channel: Effect.Effect<Channel, QueueError, Scope.Scope>
  readonly confirmChannel: Effect.Effect<ConfirmChannel, QueueError, Scope.Scope>
  /** end the session now (e.g. the broker cancelled its consumer); it is then built again */
  readonly end: (reason: string) => void
}

export class RabbitMqConnection extends Context.Service<RabbitMqConnection, {
  /** whether the broker connection is open right now (for readiness checks and metrics) */
  readonly connected: SubscriptionRef.SubscriptionRef<boolean>
  /**
   * Why the connection is not open: the latest failure to open it (a refusal names the setting to fix), or that no
   * answer came yet; undefined while it is open.
   */
  readonly problem: Effect.Effect<string | undefined>
  /**
   * Keep a session on the connection for as long as the calling scope lives: `open` builds it on every new
   * connection, and again whenever it ends (one of its channels closed). Gives the effect that returns the live
   * session, waiting while it is being built.
   */
  readonly keepSession: <S>(
    name: string,
    open: (context: SessionContext) => Effect.Effect<S, QueueError, Scope.Scope>
  ) => Effect.Effect<Effect.Effect<S>, never, Scope.Scope>
}>()("email-senders/RabbitMqConnection") {}

export const defaultQueueName = "email_senders"

export const queueNameConfig = QueueNameSetting

const withHeartbeat = (url: string, heartbeat: Duration.Input): string => {
  if (!URL.canParse(url)) return url
  const parsed = new URL(url)
  if (!parsed.searchParams.has("heartbeat")) {
    parsed.searchParams.set("heartbeat", String(Math.round(Duration.toSeconds(heartbeat))))
  }
  return parsed.toString()
}

const messageOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

/** The vhost an AMQP URL names: its path without the leading slash, `/` when there is none. */
const vhostOf = (url: string): string => {
  const path = URL.canParse(url) ? decodeURIComponent(new URL(url).pathname.slice(1)) : ""
  return path === "" ? "/" : path
}

/** A failure to connect that only a change of `AMQP_URL` (or of the broker's users) ends. */
export const amqpRefusal = (error: QueueError, url: string): Refusal | undefined => {
  if (error.message.includes("403 (ACCESS-REFUSED)")) return { setting: "AMQP_URL (user/password)", reason: error.message }
  // refused at `connection.open` (530 NOT_ALLOWED: no such vhost; 403: no access to it); amqplib drops the broker's text
  if (error.message.includes("Expected ConnectionOpenOk; got <ConnectionClose")) {
    const reason = `the broker would not open vhost ${vhostOf(url)} (it does not exist, or the user has no access to it)`
    return { setting: "AMQP_URL (vhost)", reason }
  }
  return undefined
}

/** Run an amqplib promise, mapping its failure to a `QueueError` naming the operation. */
export const tryAmqp = <A>(operation: string, run: () => Promise<A>): Effect.Effect<A, QueueError> =>
  Effect.tryPromise({
    try: run,
    catch: (error) => new QueueError({ message: `${operation}: ${messageOf(error)}`, operation })
  })

/** Close or cancel without failing: the peer may be gone already, and a hung network must not stall shutdown. */
const quietly = (operation: string, run: () => Promise<unknown>): Effect.Effect<void> =>
  tryAmqp(operation, run).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)

export const cancelQuietly = (channel: Channel, consumerTag: string): Effect.Effect<void> =>
  quietly("cancel consumer", () => channel.cancel(consumerTag))

export const closeQuietly = (closable: Channel | ChannelModel): Effect.Effect<void> => quietly("close", () => closable.close())

const isPreconditionFailed = (error: unknown): boolean =>
  typeof error === "object" && error !== null && (error as { readonly code?: unknown }).code === 406

/**
 * Use a channel of its own for `use`, so a refused declaration (the broker closes the channel on it) harms none of
 * the session's channels.
 */
export const withScratchChannel = <A>(
  connection: ChannelModel,
  operation: string,
  use: (channel: Channel) => Promise<A>
): Effect.Effect<A, QueueError> =>
  Effect.acquireUseRelease(
    tryAmqp("open channel", () =>
      connection.createChannel().then((channel) => {
        // the refusal arrives as an 'error' event too; without a listener amqplib would throw it
        channel.on("error", () => {})
        return channel
      })),
    (channel) => tryAmqp(operation, () => use(channel)),
    closeQuietly
  )

/**
 * Declare `queue` exactly as Zulip does (durable, no arguments), since Zulip's producers redeclare it on every
 * connect. When it already exists with other arguments the broker refuses (406); then it is used as it is.
 */
export const declareQueue = Effect.fnUntraced(function*(connection: ChannelModel, queue: string) {
  const declared = yield* withScratchChannel(
    connection,
    `declare queue ${queue}`,
    (channel) =>
      channel.assertQueue(queue, { durable: true }).then(
        () => true,
        (error: unknown) => {
          if (isPreconditionFailed(error)) return false
          throw error
        }
      )
  )
  if (!declared) {
    yield* Effect.logWarning(`queue ${queue} exists with other arguments; using it as it is`)
    yield* withScratchChannel(connection, `check queue ${queue}`, (channel) => channel.checkQueue(queue))
  }
})

/** Publish a persistent message to `queue` through the default exchange; succeeds once the broker confirmed it. */
export const publishPersistent = (channel: ConfirmChannel, queue: string, body: string): Effect.Effect<void, QueueError> =>
  Effect.callback<void, QueueError>((resume) => {
    const fail = (error: unknown) =>
      resume(
        Effect.fail(new QueueError({ message: `publish to ${queue} not confirmed: ${messageOf(error)}`, operation: "publish" }))
      )
    try {
      channel.sendToQueue(queue, Buffer.from(body), { persistent: true }, (error) => {
        if (error) fail(error)
        else resume(Effect.void)
      })
    } catch (error) {
      // the channel closed before the publish left
      fail(error)
    }
  })

const unconfirmedRetry = Schedule.exponential("100 millis").pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 5 }),
  Schedule.setInputType<QueueError>(),
  Schedule.tap(({ input }) => Effect.logWarning(`${input.message}; publishing again`))
)

/**
 * Publish through the live session, again when the broker did not confirm (the channel or connection went away
 * meanwhile): each attempt waits for the session to be rebuilt, so only attempts that reached a channel count.
 */
export const publishReliably = <S>(
  session: Effect.Effect<S>,
  publish: (live: S) => Effect.Effect<void, QueueError>
): Effect.Effect<void, QueueError> => session.pipe(Effect.flatMap(publish), Effect.retry(unconfirmedRetry))

/**
 * Keep one live instance of something that can be lost: `build` makes it in a scope that is closed once it is
 * lost (it completes `lost` with the reason), and then it is built again. Failed builds are retried with `retry`.
 * Gives the effect that returns the live instance, waiting while there is none.
 */
const supervise = <A>(
  name: string,
  broker: string,
  retry: Schedule.Schedule<unknown, QueueError>,
  build: (lost: Deferred.Deferred<string>) => Effect.Effect<A, QueueError, Scope.Scope>,
  onChange: (up: boolean) => Effect.Effect<void> = () => Effect.void
): Effect.Effect<Effect.Effect<A>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const current = yield* Ref.make(yield* Deferred.make<A>())
    const cycle = Effect.gen(function*() {
      const lost = yield* Deferred.make<string>()
      const value = yield* build(lost)
      yield* Deferred.succeed(yield* Ref.get(current), value)
      yield* onChange(true)
      yield* Effect.logInfo(`${name} open`)
      const reason = yield* Deferred.await(lost)
      yield* Ref.set(current, yield* Deferred.make<A>())
      yield* onChange(false)
      yield* Effect.logWarning(`${name} lost (${reason}); reopening`)
    }).pipe(Effect.scoped)
    // a cycle ends normally when what it built is lost, so the backoff starts afresh for the next one
    yield* cycle.pipe(Effect.retry(retry), Effect.forever, Effect.annotateLogs({ broker }), Effect.forkScoped)
    return Ref.get(current).pipe(Effect.flatMap(Deferred.await))
  })

const attachChannel = <C extends Channel>(channel: C, end: (reason: string) => void): C => {
  let reason = "channel closed"
  channel.on("error", (error: Error) => {
    reason = error.message
  })
  channel.on("close", () => end(reason))
  return channel
}

export const make = Effect.fnUntraced(function*(options: ConnectionOptions) {
  const url = withHeartbeat(Redacted.value(options.url), options.heartbeat ?? "30 seconds")
  const shownUrl = redactUrl(url)
  const socketOptions = {
    timeout: Duration.toMillis(Duration.fromInputUnsafe(options.connectTimeout ?? "10 seconds")),
    clientProperties: { connection_name: options.connectionName ?? "email-senders" }
  }
  const retry = (
    name: string,
    failed: (error: QueueError, line: string) => Effect.Effect<void> = (_, line) => Effect.logWarning(line)
  ): Schedule.Schedule<unknown, QueueError> =>
    Schedule.min([
      Schedule.exponential(options.reconnectBaseDelay ?? "100 millis"),
      Schedule.spaced(options.reconnectMaxDelay ?? "30 seconds")
    ]).pipe(
      Schedule.jittered,
      Schedule.setInputType<QueueError>(),
      Schedule.tap(({ attempt, duration, input }) =>
        failed(input, `${name} failed (${input.message}); retry ${attempt} in ${Math.round(Duration.toMillis(duration))} ms`)
      )
    )
  const connected = yield* SubscriptionRef.make(false)
  const refusals = makeRefusalLog("broker")
  let problem: string | undefined = `no answer yet from ${shownUrl}`
  const connectionFailed = (error: QueueError, line: string) =>
    Effect.suspend(() => {
      const refusal = amqpRefusal(error, url)
      problem = refusal === undefined ? error.message : describeRefusal(refusal)
      return refusal === undefined ? Effect.logWarning(line) : refusals.refused(refusal)
    })
  const connectionChanged = (up: boolean) =>
    Effect.suspend(() => {
      problem = up ? undefined : "connection lost; reopening"
      return Effect.andThen(SubscriptionRef.set(connected, up), up ? refusals.accepted : Effect.void)
    })
  const services = yield* Effect.context<never>()
  const logFromCallback = (message: string) =>
    Effect.runForkWith(services)(Effect.logWarning(message).pipe(Effect.annotateLogs({ broker: shownUrl })))

  const openConnection = (lost: Deferred.Deferred<string>) =>
    Effect.acquireRelease(
      Effect.tryPromise({
        try: (signal) =>
          connect(url, socketOptions).then((connection) => {
            if (signal.aborted) {
              void connection.close().catch(() => {})
              throw new Error("interrupted")
            }
            // the error that closes the connection also comes with 'close'; this listener only keeps amqplib from throwing it
            connection.on("error", () => {})
            connection.on("close", (error?: Error) => {
              Deferred.doneUnsafe(lost, Effect.succeed(error?.message ?? "closed"))
            })
            connection.on("blocked", (reason: string) => logFromCallback(`broker blocked the connection: ${reason}`))
            connection.on("unblocked", () => logFromCallback("broker unblocked the connection"))
            return { connection, lost }
          }),
        catch: (error) => new QueueError({ message: messageOf(error), operation: "connect" })
      }),
      ({ connection }) => closeQuietly(connection)
    )

  const live = yield* supervise(
    "broker connection",
    shownUrl,
    retry("broker connection", connectionFailed),
    openConnection,
    connectionChanged
  )

  const keepSession = <S>(
    name: string,
    open: (context: SessionContext) => Effect.Effect<S, QueueError, Scope.Scope>
  ): Effect.Effect<Effect.Effect<S>, never, Scope.Scope> =>
    supervise(name, shownUrl, retry(name), (lost) =>
      Effect.gen(function*() {
        const { connection, lost: connectionLost } = yield* live
        const end = (reason: string) => {
          Deferred.doneUnsafe(lost, Effect.succeed(reason))
        }
        yield* Deferred.await(connectionLost).pipe(
          Effect.map((reason) => end(`connection lost: ${reason}`)),
          Effect.forkScoped
        )
        const openChannel = <C extends Channel>(create: () => Promise<C>) =>
          Effect.acquireRelease(
            tryAmqp("open channel", () => create().then((channel) => attachChannel(channel, end))),
            closeQuietly
          )
        return yield* open({
          connection,
          channel: openChannel(() => connection.createChannel()),
          confirmChannel: openChannel(() => connection.createConfirmChannel()),
          end
        })
      }))

  return RabbitMqConnection.of({ connected, problem: Effect.sync(() => problem), keepSession })
})

export const layer = (options: ConnectionOptions): Layer.Layer<RabbitMqConnection> =>
  Layer.effect(RabbitMqConnection, make(options))

/** Reads `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672`); `options` gives the rest. */
export const layerConfigWith = (options: Omit<ConnectionOptions, "url">): Layer.Layer<RabbitMqConnection, Config.ConfigError> =>
  Layer.unwrap(
    Effect.gen(function*() {
      const url = yield* AmqpUrlSetting
      return layer({ ...options, url })
    })
  )

export const layerConfig = layerConfigWith({})
