/**
 * A TCP forwarder on loopback, to take a dependency away without touching the machine's own server: `stop` cuts
 * every forwarded connection and refuses new ones, `stopListening` only refuses new ones, until `start` listens again
 * on the same port. Connections forwarded by earlier servers are cut too, by `stop` and when the scope closes.
 */
import { Effect, type Scope } from "effect"
import { createConnection, createServer, type Socket } from "node:net"
import { type Listener, restartableListener } from "./listener.ts"

export const makeTcpProxy = (targetPort: number): Effect.Effect<Listener, never, Scope.Scope> =>
  Effect.suspend(() => {
    const open = new Set<Socket>()
    const forward = (client: Socket) => {
      const upstream = createConnection({ host: "127.0.0.1", port: targetPort })
      for (const [socket, peer] of [[client, upstream], [upstream, client]] as const) {
        open.add(socket)
        socket.on("error", () => socket.destroy())
        socket.on("close", () => {
          open.delete(socket)
          peer.destroy()
        })
        socket.pipe(peer)
      }
    }
    return restartableListener(() => ({
      server: createServer(forward),
      cutConnections: () => {
        for (const socket of open) socket.destroy()
      }
    }))
  })
