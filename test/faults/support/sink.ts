/**
 * The SMTP sink of the fault scenarios: a loopback `smtp-server` that counts every message it accepted by
 * Message-ID and every RCPT TO by address, so a scenario can tell a delivery from a duplicate and count attempts.
 *
 * Recipients script the replies to RCPT TO: an address with `+NNN` (e.g. `a+550@x`) is refused with that code every
 * time; one with `+NNNfirst` (e.g. `a+451first@x`) only the first time it is seen, then accepted. `delayMillis`
 * holds each message's final reply that long, so emails are in flight when a fault strikes. `throttleAbovePerSecond`
 * makes it a provider with a rate limit: a message beyond that many accepted in the last second is answered
 * `454 Throttling failure`, as Amazon SES answers. `stop()` cuts every
 * connection and stops listening; `start()` listens again on the same port.
 */
import { Effect, type Scope } from "effect"
import { SMTPServer, type SMTPServerDataStream } from "smtp-server"
import { type Listener, restartableListener } from "../../support/listener.ts"

export interface SinkOptions {
  /** wait before answering each message's DATA (default 0) */
  readonly delayMillis?: number
  /** answer `454 Throttling failure` to a message when this many were accepted within the last second */
  readonly throttleAbovePerSecond?: number
}

export interface Sink extends Listener {
  /** accepted messages per Message-ID (without angle brackets) */
  readonly deliveries: ReadonlyMap<string, number>
  /** `Date.now()` of each accepted message, in order */
  readonly acceptedAt: ReadonlyArray<number>
  /** `Date.now()` of the first acceptance of each Message-ID */
  readonly firstAcceptedAt: ReadonlyMap<string, number>
  /** `Date.now()` of each message answered 454 (`throttleAbovePerSecond`), in order */
  readonly throttledAt: ReadonlyArray<number>
  /** RCPT TO commands received for this address */
  readonly rcptAttempts: (address: string) => number
}

const scriptedReply = /\+([45]\d\d)(first)?@/

const messageIdOf = (raw: string): string | undefined => {
  const [head = ""] = raw.split(/\r?\n\r?\n/, 1)
  const match = /^message-id:[ \t]*(?:\r?\n[ \t]+)?<?([^>\r\n]+)>?/im.exec(head)
  return match?.[1]?.trim()
}

const refusal = (code: number, address: string): Error =>
  Object.assign(new Error(`Scripted refusal of ${address}`), { responseCode: code })

export const makeSink = (options: SinkOptions = {}): Effect.Effect<Sink, never, Scope.Scope> =>
  Effect.gen(function*() {
    const deliveries = new Map<string, number>()
    const acceptedAt: Array<number> = []
    const throttledAt: Array<number> = []
    const firstAcceptedAt = new Map<string, number>()
    /** accepted within the last second, as `throttleAbovePerSecond` counts them */
    const acceptedLastSecond = (now: number): number => {
      let count = 0
      for (let i = acceptedAt.length - 1; i >= 0 && acceptedAt[i]! > now - 1000; i--) count++
      return count
    }
    const rcptAttempts = new Map<string, number>()

    /** `isOpen` turns false when the server is stopped: a message whose reply cannot reach the client is not accepted */
    const makeServer = (isOpen: () => boolean) => {
      const server = new SMTPServer({
        disabledCommands: ["AUTH", "STARTTLS"],
        authOptional: true,
        disableReverseLookup: true,
        logger: false,
        onRcptTo: ({ address }, _session, callback) => {
          const seen = rcptAttempts.get(address) ?? 0
          rcptAttempts.set(address, seen + 1)
          const scripted = scriptedReply.exec(address)
          const refuses = scripted !== null && (scripted[2] === undefined || seen === 0)
          callback(refuses ? refusal(Number(scripted[1]), address) : null)
        },
        onData: (stream: SMTPServerDataStream, _session, callback) => {
          const chunks: Array<Buffer> = []
          stream.on("data", (chunk: Buffer) => chunks.push(chunk))
          stream.on("end", () =>
            setTimeout(() => {
              if (!isOpen()) return
              const now = Date.now()
              if (options.throttleAbovePerSecond !== undefined && acceptedLastSecond(now) >= options.throttleAbovePerSecond) {
                throttledAt.push(now)
                callback(Object.assign(new Error("Throttling failure: Maximum sending rate exceeded."), { responseCode: 454 }))
                return
              }
              const id = messageIdOf(Buffer.concat(chunks).toString("utf8")) ?? "(no Message-ID)"
              deliveries.set(id, (deliveries.get(id) ?? 0) + 1)
              acceptedAt.push(now)
              if (!firstAcceptedAt.has(id)) firstAcceptedAt.set(id, now)
              callback(null, "OK")
            }, options.delayMillis ?? 0))
        }
      })
      // clients cut off by stop() or by their own crash are routine here
      server.on("error", () => undefined)
      return server
    }

    const listener = yield* restartableListener(() => {
      let open = true
      const server = makeServer(() => open)
      return {
        server: server.server,
        cutConnections: () => {
          open = false
          for (const connection of server.connections) connection._socket.destroy()
        }
      }
    })

    return {
      ...listener,
      deliveries,
      acceptedAt,
      throttledAt,
      firstAcceptedAt,
      rcptAttempts: (address) => rcptAttempts.get(address) ?? 0
    }
  })
