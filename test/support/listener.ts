/** A loopback server that a test can take away and bring back on the same port, as an outage does. */
import { Effect, type Scope } from "effect"
import type { Server as HttpServer } from "node:http"
import type { Server } from "node:net"

export interface Listener {
  readonly port: number
  /** cut every open connection and stop listening: new connections are refused */
  readonly stop: Effect.Effect<void>
  /** stop listening at once but leave the open connections be, so one that is lost cannot come back */
  readonly stopListening: Effect.Effect<void>
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
    // connections left open by `stopListening` are cut too
    yield* Effect.addFinalizer(() => current.server.listening ? stop : Effect.sync(current.cutConnections))
    return {
      port,
      stop,
      // `close`'s callback would wait for the open connections too
      stopListening: Effect.sync(() => void current.server.close()),
      start: Effect.suspend(() => {
        current = make()
        return Effect.asVoid(listen(port))
      })
    }
  })

/**
 * `server` listening on a free loopback port, for as long as the scope lives; gives the port. At the end its open
 * connections are cut, so a client waiting on an answer does not hold the close.
 */
export const loopbackHttpServer = (server: HttpServer): Effect.Effect<number, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<number>((resume) => {
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
      })
    }),
    () =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  )
