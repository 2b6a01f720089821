/**
 * Turns an `OutgoingEmail` into the MIME message nodemailer writes on the wire. Shared by the SMTP pool (which
 * sends it to the server) and the development capture (which writes it to a file), so both hold exactly the same
 * bytes.
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import * as base64 from "nodemailer/lib/base64"
import MimeNode from "nodemailer/lib/mime-node"
import * as qp from "nodemailer/lib/qp"
import type { OutgoingEmail } from "../domain/OutgoingEmail.ts"
import { hasStreamSteps } from "./nodemailerInternals.ts"

/**
 * Multipart boundaries: a random part drawn once per process and a counter, so no two messages share one and no
 * producer can guess one to forge a part. nodemailer would draw fresh random bytes for every part of every message,
 * a system call each.
 */
const boundaryPrefix = randomBytes(12).toString("hex")
let boundaryCounter = 0

/** The body parts, as nodemailer's `MailComposer` takes them: an empty text or HTML is no part. */
const bodyParts = (email: OutgoingEmail): ReadonlyArray<readonly [contentType: string, content: string]> => {
  const parts: Array<readonly [string, string]> = []
  if (email.text !== "") parts.push(["text/plain; charset=utf-8", email.text])
  if (email.html !== null && email.html !== "") parts.push(["text/html; charset=utf-8", email.html])
  return parts
}

/**
 * The message as a MIME tree, node for node the tree nodemailer's `MailComposer` makes of the same fields (a test
 * holds the bytes equal): the text, then the HTML as a `multipart/alternative` next to it when there is one.
 * Message-ID and Date are ours, so nodemailer never invents its own; the extra headers keep their order and their
 * spelling (nodemailer would write `List-ID` for `List-Id`). Built here rather than by `MailComposer`, because it
 * draws random bytes (`crypto.randomBytes`) for a boundary of each part that only the root's boundary is ever taken
 * from (~20 µs a message here), and it is given no envelope: the bytes never read it, and parsing its addresses
 * again cost as much (bench/FINDINGS.md, "What was done").
 */
export const mimeTreeOf = (email: OutgoingEmail): MimeNode => {
  const extraNames = new Map(email.headers.map(([name]) => [name.toLowerCase(), name]))
  const options = {
    baseBoundary: `${boundaryPrefix}${(++boundaryCounter).toString(36)}`,
    normalizeHeaderKey: (key: string) => extraNames.get(key.toLowerCase()) ?? key
  }
  const parts = bodyParts(email)
  let root: MimeNode
  if (parts.length === 2) {
    root = new MimeNode("multipart/alternative", options)
    for (const [contentType, content] of parts) root.createChild(contentType, options).setContent(content)
  } else {
    const [contentType, content] = parts[0] ?? ["text/plain", ""]
    root = new MimeNode(contentType, options).setContent(content)
  }
  root.addHeader(email.headers.map(([key, value]) => ({ key, value })))
  // in MailComposer's order, and as it does, an empty value is no header
  const fields: ReadonlyArray<readonly [string, string | ReadonlyArray<string>]> = [
    ["from", email.from],
    ["to", email.to],
    ["reply-to", email.replyTo],
    ["subject", email.subject],
    ["message-id", email.messageId],
    ["date", email.date]
  ]
  for (const [name, value] of fields) {
    if (value !== "") root.setHeader(name, typeof value === "string" ? value : [...value])
  }
  // MailComposer's last step: nodemailer makes a Message-ID only where there is none
  root.messageId()
  return root
}

/** The largest body serialised in place: nodemailer's QP encoder works in slices of this size, with carry-over. */
const inlineBodyLimit = 64 * 1024

/** Nodes whose body is a string of at most `inlineBodyLimit` bytes: all a composed `OutgoingEmail` holds. */
const isInlineTree = (node: MimeNode): boolean => {
  const content = node.content
  return !hasStreamSteps(node) &&
    (content === undefined || (typeof content === "string" && Buffer.byteLength(content) <= inlineBodyLimit)) &&
    node.childNodes.every(isInlineTree)
}

/** `=XX` for each byte value, as nodemailer's QP encoder writes it. */
const escapedBytes = Array.from({ length: 256 }, (_, byte) => `=${byte.toString(16).toUpperCase().padStart(2, "0")}`)

/**
 * What quoted-printable escapes: every character but tab, CR, LF and the printable ASCII other than `=`, and the
 * space or tab that ends a line or the text.
 */
const escaped = /[^\t\n\r\x20-\x3c\x3e-\x7e]+|[ \t](?=[\r\n]|$)/g

/**
 * nodemailer's `qp.encode` of the text's UTF-8 bytes, the same characters (a test holds them equal), from the text
 * itself: its encoder looks at every byte in turn, ~6 ns each, where this leaves the runs that need no escape to a
 * regular expression (bench/FINDINGS.md, "What was done").
 */
export const encodeQuotedPrintable = (text: string): string =>
  text.replace(escaped, (run) => {
    let out = ""
    for (const byte of Buffer.from(run, "utf8")) out += escapedBytes[byte]
    return out
  })

/**
 * Quoted-printable as nodemailer's `qp.Encoder` writes a body that comes in one piece: trailing spaces and tabs are
 * held back and encoded after the rest, and each stretch is wrapped to 76 columns from the last unfinished line.
 */
const quotedPrintable = (body: string): string => {
  let end = body.length
  while (end > 0 && (body[end - 1] === " " || body[end - 1] === "\t")) end--
  const wrapped = qp.wrap(encodeQuotedPrintable(body.slice(0, end)), 76)
  if (end === body.length) return wrapped
  const lastLineStart = wrapped.lastIndexOf("\n") + 1
  return wrapped.slice(0, lastLineStart) + qp.wrap(wrapped.slice(lastLineStart) + encodeQuotedPrintable(body.slice(end)), 76)
}

const encodedBody = (node: MimeNode, body: string): string => {
  switch (node.getTransferEncoding()) {
    case "quoted-printable":
      return quotedPrintable(body)
    case "base64":
      return base64.wrap(base64.encode(body), 76)
    default:
      return body
  }
}

/** `MimeNode.stream` without its streams: the headers, the encoded body, then the parts between boundaries. */
const serializeNode = (node: MimeNode, out: Array<string>): void => {
  out.push(node.buildHeaders(), "\r\n\r\n")
  if (typeof node.content === "string" && node.content !== "") out.push(encodedBody(node, node.content))
  if (node.multipart) {
    node.childNodes.forEach((child, index) => {
      out.push(index === 0 ? "--" : "\r\n--", node.boundary as string, "\r\n")
      serializeNode(child, out)
    })
    out.push("\r\n--", node.boundary as string, "--\r\n")
  }
}

/**
 * The message, serialised in one pass when its bodies are strings of at most 64 KB (all an `OutgoingEmail` makes
 * but the largest), ending in a line break as nodemailer's `LastNewline` ensures; else `undefined`.
 */
export const serializeInline = (root: MimeNode): Buffer | undefined => {
  if (root.newline !== undefined || !isInlineTree(root)) return undefined
  const out: Array<string> = []
  serializeNode(root, out)
  const last = out.findLast((piece) => piece !== "") ?? ""
  if (!last.endsWith("\n")) out.push(last.endsWith("\r") ? "\n" : "\r\n")
  return Buffer.from(out.join(""), "utf8")
}

/**
 * The message's bytes, exactly as they go on the wire. Composing a valid `OutgoingEmail` cannot fail: a failure is a
 * bug. nodemailer builds a message through a stream per part, an encoder stream per body and a `setImmediate` per
 * step; `serializeInline` writes the same bytes with nodemailer's own header builder and encoders in one pass (a
 * test holds the two equal), for about half the CPU. A body over 64 KB goes through nodemailer's streams.
 */
export const messageBytes = (email: OutgoingEmail): Effect.Effect<Buffer> =>
  Effect.suspend(() => {
    const root = mimeTreeOf(email)
    const inline = serializeInline(root)
    return inline !== undefined ? Effect.succeed(inline) : Effect.callback<Buffer>((resume) => {
      root.build((error, bytes) => resume(error ? Effect.die(error) : Effect.succeed(bytes)))
    })
  })
