import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { type AddressInfo, createServer, Socket } from "node:net"
import { PassThrough } from "node:stream"
import MimeNode from "nodemailer/lib/mime-node"
import SMTPConnection from "nodemailer/lib/smtp-connection"
import { hasStreamSteps, hasUnmatchedReplies, onNextReply, setSocketTimeout } from "../src/smtp/nodemailerInternals.ts"
import { mimeTreeOf } from "../src/smtp/nodemailerMessage.ts"
import { startSmtpServer, type SmtpTestServer } from "./support/smtpServer.ts"

const versionOf = (path: string): unknown =>
  JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"))

/** A greeted connection to `server`. */
const connected = (server: Pick<SmtpTestServer, "host" | "port">): Promise<SMTPConnection> =>
  new Promise((resolve, reject) => {
    const client = new SMTPConnection({ host: server.host, port: server.port, ignoreTLS: true })
    client.once("error", reject)
    client.connect(() => resolve(client))
  })

/** The next reply, to `command` when given, through the internals module. */
const reply = (client: SMTPConnection, command?: string): Promise<string> =>
  new Promise((resolve) => onNextReply(client, resolve, command))

const quit = (client: SMTPConnection): Promise<void> =>
  new Promise((resolve) => {
    client.once("end", resolve)
    client.quit()
  })

describe("nodemailer internals (the members nodemailer does not publish)", () => {
  it("nodemailer is the exact version they were checked against", () => {
    const installed = versionOf("../node_modules/nodemailer/package.json") as { version: string }
    const project = versionOf("../package.json") as { dependencies: Record<string, string> }
    assert.strictEqual(installed.version, "10.6.1")
    assert.strictEqual(project.dependencies["nodemailer"], "10.6.1")
  })

  it("SMTPConnection has the command channel and socket members, of the expected types", async () => {
    const server = await startSmtpServer()
    try {
      const fresh = new SMTPConnection({ host: server.host, port: server.port }) as unknown as Record<string, unknown>
      assert.strictEqual(typeof fresh["_sendCommand"], "function")
      assert.isTrue(Array.isArray(fresh["_responseActions"]))
      assert.isTrue(Array.isArray(fresh["_responseQueue"]))
      assert.strictEqual(fresh["_remainder"], "")
      assert.isNotOk(fresh["_socket"])
      const client = await connected(server)
      assert.instanceOf(client._socket, Socket)
      setSocketTimeout(client, 1234)
      assert.strictEqual((client._socket as Socket).timeout, 1234)
      setSocketTimeout(client, 0)
      assert.strictEqual((client._socket as Socket).timeout, 0)
      await quit(client)
    } finally {
      await server.close()
    }
  })

  it("a NOOP sent through them gets its reply, and leaves no reply unmatched once answered", async () => {
    const server = await startSmtpServer()
    try {
      const client = await connected(server)
      assert.isFalse(hasUnmatchedReplies(client))
      const answer = reply(client, "NOOP")
      assert.isTrue(hasUnmatchedReplies(client), "a reply is awaited")
      assert.match(await answer, /^250/)
      assert.isFalse(hasUnmatchedReplies(client))
      assert.strictEqual(server.commandCount("NOOP"), 1)
      await quit(client)
    } finally {
      await server.close()
    }
    const refusing = await startSmtpServer({ refuseNoop: true })
    try {
      const client = await connected(refusing)
      assert.match(await reply(client, "NOOP"), /^5/)
      await quit(client)
    } finally {
      await refusing.close()
    }
  })

  it("a second reply in the same read waits, unmatched, for the next reader", async () => {
    // answers NOOP twice in one write, as a server that answers out of turn does
    const server = createServer((socket) => {
      socket.write("220 test ESMTP\r\n")
      socket.on("data", (data) => {
        const command = data.toString().trim().split(" ")[0]?.toUpperCase()
        socket.write(command === "NOOP" ? "250 OK\r\n250 again\r\n" : command === "QUIT" ? "221 Bye\r\n" : "250 test\r\n")
        if (command === "QUIT") socket.end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    try {
      const { port } = server.address() as AddressInfo
      const client = await connected({ host: "127.0.0.1", port })
      const unmatchedOnReply = await new Promise<boolean>((resolve) =>
        onNextReply(client, () => resolve(hasUnmatchedReplies(client)), "NOOP")
      )
      assert.isTrue(unmatchedOnReply)
      assert.match(await reply(client), /^250 again/, "the extra reply is the next one read")
      assert.isFalse(hasUnmatchedReplies(client))
      await quit(client)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it("MimeNode's stream steps: none in a composed email, each of raw, transform and processFunc seen", () => {
    const tree = mimeTreeOf({
      messageId: "<1.test@zulip.example.com>",
      envelope: { from: "noreply@zulip.example.com", to: ["hamlet@zulip.example"] },
      from: "noreply@zulip.example.com",
      to: ["hamlet@zulip.example"],
      replyTo: [],
      subject: "Hello",
      text: "Plain",
      html: "<p>Plain</p>",
      date: "Wed, 02 Dec 2026 08:00:00 +0000",
      headers: [],
      template: "test",
      realm: null
    })
    assert.isFalse([tree, ...tree.childNodes].some(hasStreamSteps))
    assert.isTrue(hasStreamSteps(new MimeNode("text/plain").setRaw("Subject: raw\r\n\r\nbody")))
    const transformed = new MimeNode("text/plain")
    transformed.transform(new PassThrough())
    assert.isTrue(hasStreamSteps(transformed))
    const processed = new MimeNode("text/plain")
    processed.processFunc((input) => input)
    assert.isTrue(hasStreamSteps(processed))
  })
})
