/**
 * A scripted SMTP server on plain TCP, for misbehaviour `smtp-server` will not produce: `yield* rawSmtpServer(options)`
 * (closed, every connection cut, when the scope ends). It listens on 127.0.0.1, on a random free port unless
 * `options.port` is given; `close()` stops it sooner (its port can then take another server).
 *
 * Without options it speaks just enough SMTP for nodemailer (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no
 * PIPELINING, no AUTH, no STARTTLS); it refuses a recipient whose address starts with `refused` with 550. Options:
 * - `silent: true`: accept connections and never send a byte (a server that never greets);
 * - `stallLogin: true`: offer AUTH PLAIN and LOGIN, and never answer AUTH;
 * - `stallNoop: true`: never answer NOOP;
 * - `extraReply`: after the reply to the end of each message, send this reply as well, out of turn (as a server
 *   that answers twice does): in the same write, or with `extraReplyLate: true` just before its reply to the next
 *   command (so it reaches the client after that command was sent).
 *
 * Records: `messages` (each message's recipients and text), `connections` (accepted since start).
 */
import { Effect } from "effect"
import { createServer, type Socket } from "node:net"

export interface RawSmtpServerOptions {
  readonly port?: number
  readonly silent?: boolean
  readonly stallLogin?: boolean
  readonly stallNoop?: boolean
  readonly extraReply?: string
  readonly extraReplyLate?: boolean
}

export interface RawSmtpServer {
  readonly host: string
  readonly port: number
  readonly messages: ReadonlyArray<{ readonly to: ReadonlyArray<string>; readonly text: string }>
  readonly connections: number
  readonly close: () => Promise<void>
}

const host = "127.0.0.1"

export const rawSmtpServer = (options: RawSmtpServerOptions = {}) =>
  Effect.acquireRelease(
    Effect.callback<RawSmtpServer>((resume) => {
      const messages: Array<{ readonly to: ReadonlyArray<string>; readonly text: string }> = []
      const sockets = new Set<Socket>()
      let connections = 0

      const converse = (socket: Socket) => {
        let buffered = ""
        let recipients: Array<string> = []
        let data: Array<string> | null = null
        let late: string | null = null
        const reply = (line: string) => {
          socket.write(late === null ? `${line}\r\n` : `${late}\r\n${line}\r\n`)
          late = null
        }
        const onLine = (line: string) => {
          if (data !== null) {
            if (line !== ".") return data.push(line.startsWith("..") ? line.slice(1) : line)
            messages.push({ to: recipients, text: data.join("\r\n") })
            data = null
            recipients = []
            const verdict = `250 OK: queued as ${messages.length}`
            const extra = options.extraReply
            if (extra === undefined) return reply(verdict)
            if (options.extraReplyLate !== true) return reply(`${verdict}\r\n${extra}`)
            reply(verdict)
            late = extra
            return
          }
          const verb = line.slice(0, 4).toUpperCase()
          if (verb === "EHLO" || verb === "HELO") {
            return reply(options.stallLogin === true ? "250-raw.test\r\n250 AUTH PLAIN LOGIN" : "250 raw.test")
          }
          if (verb === "AUTH" && options.stallLogin === true) return
          if (verb === "NOOP" && options.stallNoop === true) return
          if (verb === "MAIL" || verb === "NOOP") return reply("250 OK")
          if (verb === "RSET") {
            recipients = []
            return reply("250 OK")
          }
          if (verb === "RCPT") {
            const address = /<([^>]*)>/.exec(line)?.[1] ?? ""
            if (address.startsWith("refused")) return reply("550 No such user")
            recipients.push(address)
            return reply("250 OK")
          }
          if (verb === "DATA") {
            data = []
            return reply("354 End data with <CR><LF>.<CR><LF>")
          }
          if (verb === "QUIT") {
            reply("221 Bye")
            return socket.end()
          }
          reply("500 Unknown command")
        }
        socket.on("data", (chunk) => {
          buffered += chunk.toString("utf8")
          const lines = buffered.split("\r\n")
          buffered = lines.pop() ?? ""
          for (const line of lines) onLine(line)
        })
        reply("220 raw.test ESMTP")
      }

      const tcp = createServer((socket) => {
        connections++
        sockets.add(socket)
        socket.on("error", () => undefined)
        socket.on("close", () => sockets.delete(socket))
        if (options.silent !== true) converse(socket)
      })
      // a second call (the scope's, after the test's) finds it closed, and its callback says so
      const close = () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy()
          tcp.close(() => resolve())
        })
      tcp.listen(options.port ?? 0, host, () => {
        const address = tcp.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({
          host,
          port,
          messages,
          get connections() {
            return connections
          },
          close
        }))
      })
    }),
    (server) => Effect.promise(server.close)
  )
