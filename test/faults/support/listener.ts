/** A loopback server that a scenario can take away and bring back on the same port, as an outage does. */
import { Effect, type Scope } from "effect"
import type { Server } from "node:net"

export interface Listener {
  readonly port: number
  /** cut every open connection and stop listening: new connections are refused */
  readonly stop: Effect.Effect<void>
  /** listen again on the same port, with a fresh server */
  readonly start: Effect.Effect<void>
}

export interface Listening {
  readonly server: Server
  /** destroy the connections this server has open */
  readonly cutConnections: () => void
}

/** Listen on a free loopback port with a server from `make`; stopped for good when the scope closes. */
export const restartableListener = (make: () => Listening): Effect.Effect<Listener, never, Scope.Scope> =>
  Effect.gen(function*() {
    let current = make()
    const listen = (port: number) =>
      Effect.callback<number>((resume) => {
        current.server.listen(port, "127.0.0.1", () => {
          const address = current.server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : port))
        })
      })
    const port = yield* listen(0)
    const stop = Effect.callback<void>((resume) => {
      current.server.close(() => resume(Effect.void))
      current.cutConnections()
    })
    yield* Effect.addFinalizer(() => current.server.listening ? stop : Effect.void)
    return {
      port,
      stop,
      start: Effect.suspend(() => {
        current = make()
        return Effect.asVoid(listen(port))
      })
    }
  })
