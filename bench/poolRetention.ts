/**
 * What an Effect `Pool` keeps of the items it has retired, by how it is made: `makeWithTTL` with the "creation"
 * strategy (an unlimited lifetime, or one of an hour) against `makeWithStrategy` with a strategy that retires
 * nothing. Each of N borrows invalidates its item (a connection that broke), so the pool opens N items in all; each
 * holds 10 kB. Prints the memory still held after the pool retired them (after a full GC).
 *
 * usage: node --expose-gc --experimental-transform-types bench/poolRetention.ts unlimited|hour|none [N]
 * (one pool per process: what one pool frees would count against the next)
 * Measured in bench/FINDINGS.md ("SMTP pool items").
 */
import { Duration, Effect, Pool } from "effect"

const [which = "unlimited", count = "20000"] = process.argv.slice(2)
const N = Number(count)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with --expose-gc")

const acquire = Effect.sync(() => ({ payload: Buffer.alloc(10_000) }))
type Item = Effect.Success<typeof acquire>

const makers: Record<string, Effect.Effect<Pool.Pool<Item>, never, import("effect").Scope.Scope>> = {
  unlimited: Pool.makeWithTTL({ acquire, min: 0, max: 4, timeToLive: Duration.infinity, timeToLiveStrategy: "creation" }),
  hour: Pool.makeWithTTL({ acquire, min: 0, max: 4, timeToLive: Duration.hours(1), timeToLiveStrategy: "creation" }),
  none: Pool.makeWithStrategy({
    acquire,
    min: 0,
    max: 4,
    strategy: { run: () => Effect.void, onAcquire: () => Effect.void, reclaim: () => Effect.undefined }
  })
}

const retained = (make: Effect.Effect<Pool.Pool<Item>, never, import("effect").Scope.Scope>) =>
  Effect.scoped(Effect.gen(function*() {
    const pool = yield* make
    gc()
    const before = process.memoryUsage()
    for (let i = 0; i < N; i++) yield* Pool.use(pool, (item) => Pool.invalidate(pool, item))
    yield* Effect.sleep("50 millis")
    gc()
    const after = process.memoryUsage()
    return (after.heapUsed + after.external - before.heapUsed - before.external) / 1e6
  }))

const labels: Record<string, string> = {
  unlimited: "makeWithTTL, creation, unlimited lifetime",
  hour: "makeWithTTL, creation, 1 hour lifetime",
  none: "makeWithStrategy, a strategy that retires nothing"
}
const make = makers[which]
if (make === undefined) throw new Error(`unknown pool ${which}: unlimited, hour or none`)
const megabytes = await Effect.runPromise(retained(make))
console.log(`${labels[which]}: ${N} items retired, ${megabytes.toFixed(1)} MB still held`)
