/** An SMTP server in memory: keeps every sent message, and fails sends on demand (e.g. "the next 3 with 451"). */
import { Clock, Context, Effect, Layer, Ref } from "effect"
import type { DnsError, NotDelivered, Rejected, TimeoutError, Unavailable } from "../domain/errors.ts"
import type { OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { SmtpConnection } from "./SmtpConnection.ts"
import { SmtpStatus } from "./SmtpStatus.ts"

export type ScriptedSmtpFailure = DnsError | TimeoutError | NotDelivered | Rejected | Unavailable

interface SmtpState {
  readonly sent: ReadonlyArray<OutgoingEmail>
  readonly attemptTimes: ReadonlyArray<number>
  readonly script: ReadonlyArray<ScriptedSmtpFailure>
  readonly closed: boolean
}

/** Inspect and script the in-memory SMTP server. */
export class InMemorySmtp extends Context.Service<InMemorySmtp, {
  /** messages accepted, in order */
  readonly sent: Effect.Effect<ReadonlyArray<OutgoingEmail>>
  /** the `Clock` time (ms) of every call of `send`, failed or not */
  readonly attemptTimes: Effect.Effect<ReadonlyArray<number>>
  /** the next `count` sends fail with `failure`, after any failures already scripted */
  readonly failNext: (count: number, failure: ScriptedSmtpFailure) => Effect.Effect<void>
  readonly closed: Effect.Effect<boolean>
}>()("email-senders/InMemorySmtp") {
  static readonly layer: Layer.Layer<InMemorySmtp | SmtpConnection | SmtpStatus> = Layer.effectContext(
    Effect.gen(function*() {
      const state = yield* Ref.make<SmtpState>({ sent: [], attemptTimes: [], script: [], closed: false })
      const control = InMemorySmtp.of({
        sent: Effect.map(Ref.get(state), (s) => s.sent),
        attemptTimes: Effect.map(Ref.get(state), (s) => s.attemptTimes),
        failNext: (count, failure) =>
          Ref.update(state, (s) => ({ ...s, script: [...s.script, ...Array.from({ length: count }, () => failure)] })),
        closed: Effect.map(Ref.get(state), (s) => s.closed)
      })
      const connection = SmtpConnection.of({
        send: (message) =>
          Clock.currentTimeMillis.pipe(
            Effect.flatMap((now) =>
              Ref.modify(state, (s): [ScriptedSmtpFailure | undefined, SmtpState] => {
                const [failure, ...rest] = s.script
                const attemptTimes = [...s.attemptTimes, now]
                return failure === undefined
                  ? [undefined, { ...s, attemptTimes, sent: [...s.sent, message] }]
                  : [failure, { ...s, attemptTimes, script: rest }]
              })
            ),
            Effect.flatMap((failure) =>
              failure === undefined
                ? Effect.succeed({ accepted: message.envelope.to, rejected: [], response: "250 OK queued" })
                : Effect.fail(failure)
            )
          ),
        healthCheck: Effect.void,
        close: Ref.update(state, (s) => ({ ...s, closed: true }))
      })
      // healthy unless the next scripted outcome is an outage, as a health check would find it
      const snapshot = Effect.all([Ref.get(state), Clock.currentTimeMillis]).pipe(
        Effect.map(([s, at]) => ({
          capacity: 1,
          open: s.closed ? 0 : 1,
          busy: 0,
          waiting: 0,
          lastCheck: { ok: s.script[0]?._tag !== "Unavailable", at }
        }))
      )
      return Context.make(InMemorySmtp, control).pipe(
        Context.add(SmtpConnection, connection),
        Context.add(SmtpStatus, SmtpStatus.of({ snapshot }))
      )
    })
  )
}
