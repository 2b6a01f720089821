/**
 * The broker connection the RabbitMQ consumer and publisher share. It stays open for the life of the layer: a lost
 * connection (broker restart, forced close, network cut noticed by heartbeats) is reopened with a capped, jittered
 * exponential backoff, forever, and every session built on it (channels, declarations, consumers) is built again
 * on the new connection. `AMQP_URL` may list the nodes of a cluster: each reopening tries them in turn, starting
 * with the one after the node that was lost, and takes the first that answers.
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
import { AmqpUrlSetting, amqpNodeUrls, redactAmqpUrl, redactUrl } from "../config/connectionSettings.ts"
import { describeRefusal, makeRefusalLog, type Refusal } from "../operations/refusals.ts"
import { QueueNameSetting } from "../config/settingValues.ts"
import { closeQuietly, isFatal, messageOf, tryAmqp } from "./amqpOperations.ts"

// the broker operations and queue declarations the consumer, the publisher and the commands use through this module
export * from "./amqpOperations.ts"
export * from "./queueDeclaration.ts"

export interface ConnectionOptions {
  /**
   * `amqp://user:password@host:port/vhost`, or several such URLs separated by commas (the nodes of a cluster, tried in
   * turn); query settings such as `heartbeat` or `frameMax` are honoured
   */
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
   * Why a session cannot be built on the open connection (e.g. the node that holds a classic queue is down), named
   * by the session; undefined while every session is open or being opened for the first time.
   */
  readonly sessionProblem: Effect.Effect<string | undefined>
  /** the node URLs of `AMQP_URL`, passwords hidden, in the order they are tried */
  readonly nodes: ReadonlyArray<string>
  /** the node the connection is open to (one of `nodes`), undefined while it is not open */
  readonly node: Effect.Effect<string | undefined>
  /**
   * Keep a session on the connection for as long as the calling scope lives: `open` builds it on every new
   * connection, and again whenever it ends (one of its channels closed). Gives the effect that returns the live
   * session, waiting while it is being built. A failure that no retry mends (`isFatal`: the queue exists with another
   * type) ends the rebuilding: the effect then fails with it, and `onFatal` is told.
   */
  readonly keepSession: <S>(
    name: string,
    open: (context: SessionContext) => Effect.Effect<S, QueueError, Scope.Scope>,
    onFatal?: (error: QueueError) => Effect.Effect<void>
  ) => Effect.Effect<Effect.Effect<S, QueueError>, never, Scope.Scope>
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
  hooks: {
    readonly onChange?: (up: boolean) => Effect.Effect<void>
    /** where the value is, for the line that says it is open */
    readonly describe?: (value: A) => string
    readonly onFatal?: (error: QueueError) => Effect.Effect<void>
  } = {}
): Effect.Effect<Effect.Effect<A, QueueError>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const current = yield* Ref.make(yield* Deferred.make<A, QueueError>())
    const onChange = hooks.onChange ?? (() => Effect.void)
    const cycle = Effect.gen(function*() {
      const lost = yield* Deferred.make<string>()
      const value = yield* build(lost)
      yield* onChange(true)
      yield* Deferred.succeed(yield* Ref.get(current), value)
      yield* Effect.logInfo(`${name} open${hooks.describe === undefined ? "" : ` on ${hooks.describe(value)}`}`)
      const reason = yield* Deferred.await(lost)
      yield* Ref.set(current, yield* Deferred.make<A, QueueError>())
      yield* onChange(false)
      yield* Effect.logWarning(`${name} lost (${reason}); reopening`)
    }).pipe(Effect.scoped)
    const fatal = (error: QueueError) =>
      Effect.gen(function*() {
        yield* Effect.logError(`${name} cannot be opened: ${error.message}`)
        yield* Deferred.fail(yield* Ref.get(current), error)
        if (hooks.onFatal !== undefined) yield* hooks.onFatal(error)
      })
    // a cycle ends normally when what it built is lost, so the backoff starts afresh for the next one
    yield* cycle.pipe(
      Effect.retry(retry),
      Effect.forever,
      Effect.catch(fatal),
      Effect.annotateLogs({ broker }),
      Effect.forkScoped
    )
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

/**
 * Try each node once, from the one at `first` on, and give what `open` made of the first that answers; else fail
 * with every node's failure (named by node when there are several).
 */
export const openFirstNode = <A>(
  urls: ReadonlyArray<string>,
  first: number,
  open: (node: number) => Effect.Effect<A, QueueError>
): Effect.Effect<A, QueueError> =>
  Effect.gen(function*() {
    const failures: Array<string> = []
    for (let step = 0; step < urls.length; step++) {
      const node = (first + step) % urls.length
      const opened = yield* Effect.result(open(node))
      if (opened._tag === "Success") return opened.success
      failures.push(urls.length === 1 ? opened.failure.message : `${redactUrl(urls[node]!)}: ${opened.failure.message}`)
    }
    return yield* new QueueError({ message: failures.join("; "), operation: "connect" })
  })

/** Open a connection of its own to the first node of `AMQP_URL` that answers (for the operator commands). */
export const connectToFirstNode = (url: Redacted.Redacted<string>, timeout: Duration.Duration) => {
  const urls = amqpNodeUrls(Redacted.value(url))
  return openFirstNode(urls, 0, (node) =>
    tryAmqp("connect", () => connect(urls[node]!, { timeout: Duration.toMillis(timeout) })).pipe(
      Effect.map((connection) => ({ connection, node: redactUrl(urls[node]!) }))
    ))
}

export const make = Effect.fnUntraced(function*(options: ConnectionOptions) {
  const given = amqpNodeUrls(Redacted.value(options.url))
  const urls = given.map((url) => withHeartbeat(url, options.heartbeat ?? "30 seconds"))
  const nodes = given.map(redactUrl)
  const shownUrl = redactAmqpUrl(Redacted.value(options.url))
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
      // what no retry mends ends the rebuilding (supervise)
      Schedule.while(({ input }) => !isFatal(input)),
      Schedule.tap(({ attempt, duration, input }) =>
        failed(input, `${name} failed (${input.message}); retry ${attempt} in ${Math.round(Duration.toMillis(duration))} ms`)
      )
    )
  const connected = yield* SubscriptionRef.make(false)
  const refusals = makeRefusalLog("broker")
  let problem: string | undefined = `no answer yet from ${shownUrl}`
  /** why each session that failed to open since its last opening could not be built */
  const sessionProblems = new Map<string, string>()
  /** the node open now (an index of `urls`), and the one the next opening tries first */
  let openNode: number | undefined
  let firstTried = 0
  const connectionFailed = (error: QueueError, line: string) =>
    Effect.suspend(() => {
      const refusal = amqpRefusal(error, urls[0]!)
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

  const connectTo = (node: number, lost: Deferred.Deferred<string>) =>
    Effect.tryPromise({
      try: (signal) =>
        connect(urls[node]!, socketOptions).then((connection) => {
          if (signal.aborted) {
            void connection.close().catch(() => {})
            throw new Error("interrupted")
          }
          // the error that closes the connection also comes with 'close'; this listener only keeps amqplib from throwing it
          connection.on("error", () => {})
          connection.on("close", (error?: Error) => {
            openNode = undefined
            Deferred.doneUnsafe(lost, Effect.succeed(error?.message ?? "closed"))
          })
          connection.on("blocked", (reason: string) => logFromCallback(`broker blocked the connection: ${reason}`))
          connection.on("unblocked", () => logFromCallback("broker unblocked the connection"))
          return { connection, lost, node }
        }),
      catch: (error) => new QueueError({ message: messageOf(error), operation: "connect" })
    })

  const openConnection = (lost: Deferred.Deferred<string>) =>
    Effect.acquireRelease(
      openFirstNode(urls, firstTried, (node) => connectTo(node, lost)).pipe(
        Effect.tap(({ node }) =>
          Effect.sync(() => {
            openNode = node
            // once this one is lost, the next opening starts with the node after it
            firstTried = (node + 1) % urls.length
          })
        )
      ),
      ({ connection }) => closeQuietly(connection)
    )

  const live = yield* supervise(
    "broker connection",
    shownUrl,
    retry("broker connection", connectionFailed),
    openConnection,
    { onChange: connectionChanged, describe: ({ node }) => nodes[node]! }
  )

  const keepSession = <S>(
    name: string,
    open: (context: SessionContext) => Effect.Effect<S, QueueError, Scope.Scope>,
    onFatal?: (error: QueueError) => Effect.Effect<void>
  ): Effect.Effect<Effect.Effect<S, QueueError>, never, Scope.Scope> =>
    supervise(
      name,
      shownUrl,
      retry(name, (error, line) => Effect.andThen(Effect.sync(() => sessionProblems.set(name, error.message)), Effect.logWarning(line))),
      (lost) =>
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
          const session = yield* open({
            connection,
            channel: openChannel(() => connection.createChannel()),
            confirmChannel: openChannel(() => connection.createConfirmChannel()),
            end
          })
          sessionProblems.delete(name)
          return session
        }),
      {
        onFatal: (error) =>
          Effect.andThen(Effect.sync(() => sessionProblems.set(name, error.message)), onFatal?.(error) ?? Effect.void)
      }
    )

  return RabbitMqConnection.of({
    connected,
    problem: Effect.sync(() => problem),
    sessionProblem: Effect.sync(() => {
      const [session] = sessionProblems
      return session === undefined ? undefined : `${session[0]}: ${session[1]}`
    }),
    nodes,
    node: Effect.sync(() => openNode === undefined ? undefined : nodes[openNode]),
    keepSession
  })
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
