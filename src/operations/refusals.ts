/**
 * Permanent refusals: a peer that refuses this configuration (a login refused, an unknown vhost) and will go on
 * refusing it until an operator changes a setting. The worker keeps trying with backoff, since the setting may be
 * fixed without a restart, but says so once at ERROR naming the setting, repeats at DEBUG only, and says at INFO
 * when the peer accepts again.
 */
import { Effect, Ref } from "effect"

export interface Refusal {
  /** the setting to fix, as the operator writes it, e.g. `AMQP_URL (user/password)` */
  readonly setting: string
  /** the peer's answer */
  readonly reason: string
}

/** One line for logs, `/readyz` and failures: the answer, then the setting to fix. */
export const describeRefusal = (refusal: Refusal): string => `refused: ${refusal.reason}; fix ${refusal.setting}`

export interface RefusalLog {
  /** the refusal in force, until an attempt is accepted */
  readonly current: Effect.Effect<Refusal | undefined>
  /** an attempt was refused: ERROR the first time this refusal is met, DEBUG while it repeats */
  readonly refused: (refusal: Refusal) => Effect.Effect<void>
  /** an attempt was accepted: INFO when that ends a refusal */
  readonly accepted: Effect.Effect<void>
}

/** The refusals of one peer (`dependency` starts each line, e.g. `broker` or `SMTP server 10.0.0.5:587`). */
export const makeRefusalLog = (dependency: string): RefusalLog => {
  // a `Ref`: the connections that are refused or accepted run on fibers of their own, and a status reads it
  const current = Ref.makeUnsafe<Refusal | undefined>(undefined)
  return {
    current: Ref.get(current),
    refused: (refusal) =>
      Effect.flatMap(Ref.getAndSet(current, refusal), (previous) => {
        const repeated = previous?.setting === refusal.setting && previous.reason === refusal.reason
        const line = `${dependency} ${describeRefusal(refusal)} (trying again with backoff)`
        return repeated ? Effect.logDebug(line) : Effect.logError(line)
      }),
    accepted: Effect.flatMap(
      Ref.getAndSet(current, undefined),
      (ended) => ended === undefined ? Effect.void : Effect.logInfo(`${dependency} accepts ${ended.setting} again`)
    )
  }
}
