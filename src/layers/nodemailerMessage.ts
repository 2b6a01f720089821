/**
 * Turns an `OutgoingEmail` into the MIME message nodemailer writes on the wire. Shared by the SMTP pool (which
 * streams it to the server) and the development capture (which writes it to a file), so both hold exactly the
 * same bytes.
 */
import MailComposer from "nodemailer/lib/mail-composer"
import type MimeNode from "nodemailer/lib/mime-node"
import type { OutgoingEmail } from "../domain/OutgoingEmail.ts"

/**
 * The message as a MIME tree. Message-ID and Date are ours, so nodemailer never invents its own; the extra headers
 * keep their order and their spelling (nodemailer would write `List-ID` for `List-Id`); `html`, when present,
 * becomes the `multipart/alternative` part next to the text.
 */
export const composeMessage = (email: OutgoingEmail): MimeNode => {
  const extraNames = new Map(email.headers.map(([name]) => [name.toLowerCase(), name]))
  return new MailComposer({
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
