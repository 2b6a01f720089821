/**
 * The benchmark's SMTP sink: a separate process on loopback that accepts every message, optionally waiting
 * `SINK_REPLY_DELAY_MS` before each reply it can delay (greeting, MAIL, RCPT, end of DATA) and refusing
 * `SINK_REFUSE_PERCENT` % of recipients with 451 on their first RCPT (chosen by a hash of the address, so every
 * implementation gets the same ones).
 *
 * Talks to its parent over the IPC channel of `child_process.fork`: it sends `listening` (the port), then
 * `progress` (distinct and total accepted) while messages arrive; on `report` it answers with every accepted
 * Message-ID, its acceptance time (epoch ms) and whether a recipient of it was refused once; on `close` it exits.
 */
import { SMTPServer, type SMTPServerDataStream } from "smtp-server"
import { isRefusedOnFirstTry, type SinkMessage, type SinkReport, type SinkRequest, wallClockMillis } from "./protocol.ts"

const replyDelayMillis = Number(process.env["SINK_REPLY_DELAY_MS"] ?? "0")
const refusePercent = Number(process.env["SINK_REFUSE_PERCENT"] ?? "0")

const messageIds: Array<string> = []
const acceptedAt: Array<number> = []
const retried: Array<boolean> = []
const distinct = new Set<string>()
const refusedOnce = new Set<string>()
let refusals = 0

/** Answers after the injected delay (none: at once, without a timer). */
const reply = (callback: (error?: Error | null) => void, error: Error | null = null): void => {
  if (replyDelayMillis > 0) setTimeout(() => callback(error), replyDelayMillis)
  else callback(error)
}

const messageIdHeader = /^message-id:[ \t]*<?([^>\r\n]+)>?/im
const headerEnd = "\r\n\r\n"
/** a long Message-ID is folded onto the next line */
const foldedLine = /\r\n[ \t]+/g

const server = new SMTPServer({
  disabledCommands: ["AUTH", "STARTTLS"],
  authOptional: true,
  disableReverseLookup: true,
  logger: false,
  onConnect: (_session, callback) => reply(callback),
  onMailFrom: (_address, _session, callback) => reply(callback),
  onRcptTo: (address, _session, callback) => {
    const recipient = address.address
    if (refusePercent > 0 && !refusedOnce.has(recipient) && isRefusedOnFirstTry(recipient, refusePercent)) {
      refusedOnce.add(recipient)
      refusals++
      return reply(callback, Object.assign(new Error("Try again later"), { responseCode: 451 }))
    }
    reply(callback)
  },
  onData: (stream: SMTPServerDataStream, session, callback) => {
    // only the header block is kept, to find the Message-ID; the body is read and dropped
    let head = ""
    let headComplete = false
    stream.on("data", (chunk: Buffer) => {
      if (headComplete) return
      head += chunk.toString("latin1")
      headComplete = head.includes(headerEnd)
    })
    stream.on("end", () =>
      reply(() => {
        // recorded as the 250 goes out
        const headers = (head.split(headerEnd, 1)[0] ?? "").replace(foldedLine, " ")
        const messageId = messageIdHeader.exec(headers)?.[1] ?? "(none)"
        messageIds.push(messageId)
        acceptedAt.push(wallClockMillis())
        retried.push(session.envelope.rcptTo.some((recipient) => refusedOnce.has(recipient.address)))
        distinct.add(messageId)
        callback(null, "OK queued")
      }))
  }
})
server.on("error", () => undefined)

const send = (message: SinkMessage): void => {
  process.send?.(message)
}

let reported = -1
const progress = setInterval(() => {
  if (messageIds.length === reported) return
  reported = messageIds.length
  send({ type: "progress", distinct: distinct.size, total: messageIds.length })
}, 50)

process.on("message", (request: SinkRequest) => {
  if (request.type === "report") {
    const report: SinkReport = { type: "report", messageIds, acceptedAt, retried, refusals }
    send(report)
  } else {
    clearInterval(progress)
    server.close(() => process.exit(0))
    // open client connections would keep close() waiting
    setTimeout(() => process.exit(0), 500).unref()
  }
})
process.on("disconnect", () => process.exit(0))

server.listen(0, "127.0.0.1", () => {
  const address = server.server.address()
  send({ type: "listening", port: typeof address === "object" && address !== null ? address.port : 0 })
})
