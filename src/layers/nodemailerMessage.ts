/**
 * Turns an `OutgoingEmail` into the MIME message nodemailer writes on the wire. Shared by the SMTP pool (which
 * sends it to the server) and the development capture (which writes it to a file), so both hold exactly the same
 * bytes.
 */
import { Effect } from "effect"
import MailComposer from "nodemailer/lib/mail-composer"
import { randomBytes } from "node:crypto"
import type MimeNode from "nodemailer/lib/mime-node"
import type { OutgoingEmail } from "../domain/OutgoingEmail.ts"

/**
 * Multipart boundaries: a random part drawn once per process and a counter, so no two messages share one and no
 * producer can guess one to forge a part. nodemailer would draw fresh random bytes for every part of every message,
 * a system call each.
 */
const boundaryPrefix = randomBytes(12).toString("hex")
let boundaryCounter = 0

/**
 * The message as a MIME tree. Message-ID and Date are ours, so nodemailer never invents its own; the extra headers
 * keep their order and their spelling (nodemailer would write `List-ID` for `List-Id`); `html`, when present,
 * becomes the `multipart/alternative` part next to the text.
 */
const composeMessage = (email: OutgoingEmail): MimeNode => {
  const extraNames = new Map(email.headers.map(([name]) => [name.toLowerCase(), name]))
  return new MailComposer({
    baseBoundary: `${boundaryPrefix}${(++boundaryCounter).toString(36)}`,
    messageId: email.messageId,
    date: email.date,
    from: email.from,
    to: [...email.to],
    replyTo: [...email.replyTo],
    subject: email.subject,
    text: email.text,
    html: email.html ?? undefined,
    headers: email.headers.map(([key, value]) => ({ key, value })),
    envelope: { from: email.envelope.from, to: [...email.envelope.to] },
    normalizeHeaderKey: (key) => extraNames.get(key.toLowerCase()) ?? key
  }).compile()
}

/** The message's bytes, exactly as they go on the wire. Composing a valid `OutgoingEmail` cannot fail: a failure is a bug. */
export const messageBytes = (email: OutgoingEmail): Effect.Effect<Buffer> =>
  Effect.callback<Buffer>((resume) => {
    composeMessage(email).build((error, bytes) => resume(error ? Effect.die(error) : Effect.succeed(bytes)))
  })
