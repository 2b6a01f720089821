import { Context, type Effect } from "effect"

/** Redis as the limits and the ledger see it, for `/readyz` and `/metrics`. */
export interface RedisStatusSnapshot {
  /** the connection is up */
  readonly reachable: boolean
  /** why not, when it is not */
  readonly problem: string | null
  /** `REDIS_OUTAGE`: `fallback` keeps mail flowing (Redis down is "degraded"), `stop` waits for it (down is not ready) */
  readonly onOutage: "fallback" | "stop"
}

/** Provided with the Redis connection (`RedisConnection.ts`) when `REDIS_URL` is set. */
export class RedisStatus extends Context.Service<RedisStatus, {
  readonly snapshot: Effect.Effect<RedisStatusSnapshot>
}>()("email-senders/RedisStatus") {}
