/** Spans for code that runs for every event. */
import { Effect, References } from "effect"

/**
 * `Effect.withSpan(name)`, except that with tracing off (no exporter configured, see `operations/Tracing.ts`) no span is
 * made at all: `withSpan` would still make a no-op span and provide it to everything inside, for every event.
 */
export const withEventSpan = (name: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => fiber.getRef(References.TracerEnabled) ? Effect.withSpan(effect, name) : effect)
