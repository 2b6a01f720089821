import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import MailComposer from "nodemailer/lib/mail-composer"
import type MimeNode from "nodemailer/lib/mime-node"
import * as qp from "nodemailer/lib/qp"
import type { OutgoingEmail } from "../src/domain/OutgoingEmail.ts"
import { encodeQuotedPrintable, messageBytes, mimeTreeOf, serializeInline } from "../src/smtp/nodemailerMessage.ts"

/** nodemailer's own streaming build of a tree. */
const streamed = (tree: MimeNode): Promise<Buffer> =>
  new Promise((resolve, reject) => tree.build((error, bytes) => error ? reject(error) : resolve(bytes)))

const emailWith = (fields: Partial<OutgoingEmail>): OutgoingEmail => ({
  messageId: "<1.test@zulip.example.com>",
  envelope: { from: "noreply@zulip.example.com", to: ["hamlet@zulip.example"] },
  from: "Zulip <noreply@zulip.example.com>",
  to: ["King Hamlet <hamlet@zulip.example>"],
  replyTo: [],
  subject: "Hello",
  text: "Plain",
  html: null,
  date: "Wed, 02 Dec 2026 08:00:00 +0000",
  headers: [],
  template: "test",
  realm: null,
  ...fields
})

/** The one-pass bytes of the email and nodemailer's streamed bytes of the same tree (building is repeatable). */
const bothBuilds = async (email: OutgoingEmail) => {
  const tree = mimeTreeOf(email)
  const inline = serializeInline(tree)
  return { inline, streamed: await streamed(tree) }
}

// pieces that steer nodemailer's choices: 7bit / quoted-printable / base64, soft line breaks next to encoded
// multi-byte characters, trailing whitespace (held back by its QP encoder), bare CR and LF, dots at line starts
const piece = fc.constantFrom(
  "a", "word ", "Zulip", " ", "  ", "\t", "\n", "\r\n", "\r", ".", "\n.\n", "=", "=3D", "é", "澳", "😀", "ü".repeat(30),
  "x".repeat(75), "y".repeat(76), "z".repeat(77), "long-".repeat(40), "<p style=\"color: #333\">", "</p>",
  "https://chat.example.com/#narrow/stream/1-general"
)
const body = fc.array(piece, { maxLength: 60 }).map((pieces) => pieces.join(""))
const headerText = fc.array(fc.constantFrom("a", "Z", " ", "é", "澳", "=?utf-8?q?x?=", ",", "\"", "long ".repeat(20)), {
  maxLength: 12
}).map((pieces) => pieces.join(""))

/** The tree nodemailer's `MailComposer` makes of the email's fields (what `mimeTreeOf` once was), on `baseBoundary`. */
const composedTreeOf = (email: OutgoingEmail, baseBoundary: string): MimeNode => {
  const extraNames = new Map(email.headers.map(([name]) => [name.toLowerCase(), name]))
  return new MailComposer({
    baseBoundary,
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

describe("quoted-printable", () => {
  it("escapes exactly what nodemailer's encoder escapes", () => {
    // any code units (lone surrogates too), and runs of the characters its rules are about
    const text = fc.array(fc.oneof(fc.string({ unit: "binary" }), piece, fc.constantFrom(" \r\n", "\t\n", "=", "\x7f", "\x00", "~", "\ud800")), {
      maxLength: 40
    }).map((pieces) => pieces.join(""))
    fc.assert(fc.property(text, (value) => encodeQuotedPrintable(value) === qp.encode(Buffer.from(value, "utf8"))), { numRuns: 3000 })
  })
})

describe("the MIME tree", () => {
  it("is the one nodemailer's MailComposer makes of the same fields", async () => {
    const optionalBody = fc.oneof(fc.constant(""), body)
    const addresses = fc.array(fc.constantFrom("King Hamlet <hamlet@zulip.example>", "\"Ünï, Code\" <u@zulip.example>", "x@bücher.example"), {
      maxLength: 2
    })
    await fc.assert(
      fc.asyncProperty(
        optionalBody,
        fc.option(optionalBody),
        fc.oneof(fc.constant(""), headerText),
        addresses,
        addresses,
        fc.boolean(),
        async (text, html, subject, to, replyTo, withHeaders) => {
          const email = emailWith({
            text,
            html,
            subject,
            to,
            replyTo,
            headers: withHeaders ? [["List-Id", `${subject} <list.zulip.example.com>`], ["X-Auto-Response-Suppress", "All"]] : []
          })
          const tree = mimeTreeOf(email)
          const [built, composed] = await Promise.all([streamed(tree), streamed(composedTreeOf(email, tree.baseBoundary))])
          assert.strictEqual(built.toString("latin1"), composed.toString("latin1"))
        }
      ),
      { numRuns: 300 }
    )
  })
})

describe("composing a message in one pass", () => {
  it("writes exactly the bytes of nodemailer's streaming build", async () => {
    await fc.assert(
      fc.asyncProperty(body, fc.option(body), headerText, headerText, async (text, html, subject, listName) => {
        const email = emailWith({
          text,
          html,
          subject,
          headers: [["List-Id", `${listName} <list.zulip.example.com>`], ["X-Auto-Response-Suppress", "All"]]
        })
        const { inline, streamed } = await bothBuilds(email)
        assert.isDefined(inline)
        assert.strictEqual(inline!.toString("latin1"), streamed.toString("latin1"))
      }),
      { numRuns: 400 }
    )
  })

  it("takes each transfer encoding nodemailer chooses", async () => {
    const encodings = new Set<string>()
    for (const text of ["Plain ASCII", `${"a ".repeat(60)}\n`, "澳".repeat(200), `Grüße ${"x".repeat(100)} `]) {
      const { inline, streamed } = await bothBuilds(emailWith({ text }))
      assert.strictEqual(inline?.toString("latin1"), streamed.toString("latin1"))
      encodings.add(/Content-Transfer-Encoding: (\S+)/.exec(streamed.toString("latin1"))?.[1] ?? "none")
    }
    assert.sameMembers([...encodings], ["7bit", "quoted-printable", "base64"])
  })

  it.effect("leaves a body over 64 KB to nodemailer's streams, with the same result", () =>
    Effect.gen(function*() {
      const limit = 64 * 1024
      // the largest body done in one pass: trailing whitespace right at the encoder's slice size
      const largest = emailWith({ text: `${"é word ".repeat(limit / 8 - 1)}ab      `, html: "<p>x</p>" })
      assert.strictEqual(Buffer.byteLength(largest.text), limit)
      const atLimit = yield* Effect.promise(() => bothBuilds(largest))
      assert.strictEqual(atLimit.inline?.toString("latin1"), atLimit.streamed.toString("latin1"))

      const larger = emailWith({ html: `<p>${"word ".repeat(limit / 5)}</p>` })
      assert.isUndefined(serializeInline(mimeTreeOf(larger)))
      const bytes = (yield* messageBytes(larger)).toString("latin1")
      const boundary = /boundary="([^"]+)"/.exec(bytes)?.[1]
      assert.isDefined(boundary)
      assert.isTrue(bytes.endsWith(`\r\n--${boundary}--\r\n`))
      assert.include(bytes, "Content-Transfer-Encoding: quoted-printable")
      assert.isAbove(bytes.length, limit)
    }))
})
