/**
 * A scriptable SMTP server on loopback (`smtp-server`), for tests that need a real server.
 *
 * Start: `await startSmtpServer(options)` (plain tests) or `yield* smtpServer(options)` (Effect tests; closed when
 * the scope ends). It listens on 127.0.0.1, on a random free port unless `options.port` is given.
 *
 * Options (all optional):
 * - `auth: { user, password }`: require AUTH PLAIN/LOGIN with exactly these credentials (allowed without TLS);
 *   without it AUTH is not offered and mail is taken from anyone.
 * - `startTls: true`: offer STARTTLS with a self-signed certificate made by `openssl` (off by default, so a
 *   client that requires STARTTLS fails); `implicitTls: true`: speak TLS from the first byte (like port 465).
 * - `greetingDelayMillis`: wait this long before the 220 banner (slow-greeting tests).
 * - `refuseNoop: true`: answer NOOP with 500, as a server that no longer knows the session would.
 * - `maxRecipients`: answer RCPT TO with 452 "Too many recipients" past this many in one transaction.
 * - `messageDelayMillis`: wait this long before answering the end of each message (a slow transaction).
 *
 * Scripted replies:
 * - a recipient whose address contains `+NNN` (a 4xx or 5xx code, e.g. `user+451@x`, `user+550@x`) is refused at
 *   RCPT TO with that code;
 * - `failNextMessages(count, code, text?)`: the next `count` messages are refused with `code` after DATA;
 * - `dropNextMessages(count, after?)`: the next `count` messages (after `after` more are taken, default none) lose
 *   their connection in the middle of DATA;
 * - `dropConnections()`: every open connection is cut (the server keeps listening);
 * - `refuseConnections(code)`: greet new connections with `code` (e.g. 421) and close them; `null` stops it;
 * - `changePassword(password)`: from now on AUTH takes this password (an operator fixing the account);
 * - `stop()` cuts every connection and stops listening; `start()` listens again on the same port (outage tests).
 *
 * Records: `messages` (each accepted message: envelope, raw text, headers in order, `header(name)`),
 * `connections` (sessions opened since start), `openConnections`, `peakConnections` (most open at once) and
 * `commandCount(name)` (how many times clients sent a command, e.g. "NOOP", "QUIT", "RSET", "MAIL").
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from "smtp-server"

export interface SmtpServerOptions {
  readonly port?: number
  readonly auth?: { readonly user: string; readonly password: string }
  readonly startTls?: boolean
  readonly implicitTls?: boolean
  readonly greetingDelayMillis?: number
  readonly refuseNoop?: boolean
  readonly maxRecipients?: number
  readonly messageDelayMillis?: number
}

export interface ReceivedMessage {
  readonly envelope: { readonly from: string; readonly to: ReadonlyArray<string> }
  /** the message as received, CRLF line ends, dot-stuffing removed */
  readonly raw: string
  /** the header fields in order, unfolded */
  readonly headers: ReadonlyArray<readonly [name: string, value: string]>
  /** the first header of that name (case-insensitive) */
  readonly header: (name: string) => string | undefined
  /** the connection that carried it, numbered from 1 in the order they were opened */
  readonly connection: number
  /** how long that connection had been open when the message began (MAIL FROM) */
  readonly connectionAgeMillis: number
}

export interface SmtpTestServer {
  readonly host: string
  readonly port: number
  readonly messages: ReadonlyArray<ReceivedMessage>
  readonly connections: number
  readonly openConnections: number
  readonly peakConnections: number
  readonly commandCount: (command: string) => number
  readonly failNextMessages: (count: number, code: number, text?: string) => void
  readonly dropNextMessages: (count: number, after?: number) => void
  readonly dropConnections: () => void
  readonly refuseConnections: (code: number | null) => void
  readonly changePassword: (password: string) => void
  readonly stop: () => Promise<void>
  readonly start: () => Promise<void>
  readonly close: () => Promise<void>
}

const host = "127.0.0.1"

/** A throwaway self-signed certificate for `localhost`. */
const selfSignedCertificate = (): { readonly key: string; readonly cert: string } => {
  const directory = mkdtempSync(join(tmpdir(), "smtp-test-cert-"))
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=localhost", "-keyout", join(directory, "key.pem"), "-out", join(directory, "cert.pem")
    ], { stdio: "ignore" })
    const read = (name: string) => readFileSync(join(directory, name), "utf8")
    return { key: read("key.pem"), cert: read("cert.pem") }
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}

const parseHeaders = (raw: string): ReadonlyArray<readonly [string, string]> => {
  const [block = ""] = raw.split(/\r?\n\r?\n/, 1)
  return block.replace(/\r?\n(?=[ \t])/g, "").split(/\r?\n/).map((line) => {
    const colon = line.indexOf(":")
    return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()] as const
  })
}

const receivedMessage = (
  session: SMTPServerSession,
  raw: string,
  carrier: { readonly connection: number; readonly connectionAgeMillis: number }
): ReceivedMessage => {
  const headers = parseHeaders(raw)
  return {
    ...carrier,
    envelope: {
      from: session.envelope.mailFrom === false ? "" : session.envelope.mailFrom.address,
      to: session.envelope.rcptTo.map((recipient) => recipient.address)
    },
    raw,
    headers,
    header: (name) => headers.find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1]
  }
}

const smtpError = (code: number, text: string): Error & { responseCode: number } =>
  Object.assign(new Error(text), { responseCode: code })

const scriptedRecipientCode = /\+([45]\d\d)\b/

const listen = (server: SMTPServer, port: number): Promise<number> =>
  new Promise((resolve, reject) => {
    server.server.once("error", reject)
    server.listen(port, host, () => {
      const address = server.server.address()
      resolve(typeof address === "object" && address !== null ? address.port : port)
    })
  })

export const startSmtpServer = async (options: SmtpServerOptions = {}): Promise<SmtpTestServer> => {
  const messages: Array<ReceivedMessage> = []
  const commands = new Map<string, number>()
  const failures: Array<{ readonly code: number; readonly text: string }> = []
  let drops = 0
  let takenBeforeDrops = 0
  let refusal: number | null = null
  let password = options.auth?.password
  let connections = 0
  let peakConnections = 0
  // by session id: which connection it is and when it opened, then how old it was when its message began
  const sessions = new Map<string, { readonly connection: number; readonly openedAt: number; connectionAgeMillis: number }>()
  const tls = options.startTls === true || options.implicitTls === true ? selfSignedCertificate() : {}
  const disabledCommands = [
    ...(options.startTls === true ? [] : ["STARTTLS"]),
    ...(options.auth === undefined ? ["AUTH"] : []),
    ...(options.refuseNoop === true ? ["NOOP"] : [])
  ]

  const makeServer = (): SMTPServer => {
    const server: SMTPServer = new SMTPServer({
      ...tls,
      secure: options.implicitTls === true,
      disabledCommands,
      authOptional: options.auth === undefined,
      allowInsecureAuth: true,
      disableReverseLookup: true,
      // smtp-server reports each command it reads to its logger: the only place that sees NOOP and QUIT
      logger: {
        debug: (entry: { readonly tnx?: string; readonly command?: string }) => {
          if (entry.tnx === "command" && entry.command !== undefined) {
            commands.set(entry.command, (commands.get(entry.command) ?? 0) + 1)
          }
        },
        info: () => undefined,
        warn: () => undefined,
        error: () => undefined
      } as unknown as SMTPServerOptions["logger"],
      onConnect: (session, callback) => {
        connections++
        sessions.set(session.id, { connection: connections, openedAt: Date.now(), connectionAgeMillis: 0 })
        peakConnections = Math.max(peakConnections, server.connections.size)
        const error = refusal === null ? null : smtpError(refusal, "Service not available, closing channel")
        setTimeout(() => callback(error), options.greetingDelayMillis ?? 0)
      },
      onAuth: (auth, _session, callback) =>
        auth.username === options.auth?.user && auth.password === password
          ? callback(null, { user: auth.username })
          : callback(smtpError(535, "Authentication credentials invalid")),
      onMailFrom: (_address, session, callback) => {
        const carrier = sessions.get(session.id)
        if (carrier !== undefined) carrier.connectionAgeMillis = Date.now() - carrier.openedAt
        callback()
      },
      onRcptTo: (address, session, callback) => {
        if (session.envelope.rcptTo.length >= (options.maxRecipients ?? Number.POSITIVE_INFINITY)) {
          return callback(smtpError(452, "4.5.3 Too many recipients"))
        }
        const scripted = scriptedRecipientCode.exec(address.address)
        callback(scripted === null ? null : smtpError(Number(scripted[1]), `Scripted refusal of ${address.address}`))
      },
      onData: (stream: SMTPServerDataStream, session, callback) => {
        if (takenBeforeDrops > 0) {
          takenBeforeDrops--
        } else if (drops > 0) {
          drops--
          stream.once("data", () => {
            for (const connection of server.connections) {
              if (connection.session === session) connection._socket.destroy()
            }
          })
          return
        }
        const chunks: Array<Buffer> = []
        stream.on("data", (chunk: Buffer) => chunks.push(chunk))
        stream.on("end", () =>
          setTimeout(() => {
            const failure = failures.shift()
            if (failure !== undefined) return callback(smtpError(failure.code, failure.text))
            const carrier = sessions.get(session.id) ?? { connection: 0, connectionAgeMillis: 0 }
            messages.push(receivedMessage(session, Buffer.concat(chunks).toString("utf8"), carrier))
            callback(null, `OK: queued as ${messages.length}`)
          }, options.messageDelayMillis ?? 0))
      }
    })
    // a client cutting its connection is routine in these tests
    server.on("error", () => undefined)
    return server
  }

  let current = makeServer()
  const port = await listen(current, options.port ?? 0)

  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      for (const connection of current.connections) connection._socket.destroy()
      current.server.close(() => resolve())
    })

  return {
    host,
    port,
    messages,
    get connections() {
      return connections
    },
    get openConnections() {
      return current.connections.size
    },
    get peakConnections() {
      return peakConnections
    },
    commandCount: (command) => commands.get(command.toUpperCase()) ?? 0,
    failNextMessages: (count, code, text = "Scripted failure") => {
      for (let i = 0; i < count; i++) failures.push({ code, text })
    },
    dropNextMessages: (count, after = 0) => {
      drops += count
      takenBeforeDrops = after
    },
    dropConnections: () => {
      for (const connection of current.connections) connection._socket.destroy()
    },
    refuseConnections: (code) => {
      refusal = code
    },
    changePassword: (newPassword) => {
      password = newPassword
    },
    stop,
    start: async () => {
      current = makeServer()
      await listen(current, port)
    },
    close: stop
  }
}

/** `startSmtpServer` for Effect tests: the server closes when the scope does. */
export const smtpServer = (options: SmtpServerOptions = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => startSmtpServer(options)),
    (server) => Effect.promise(() => server.close())
  )
