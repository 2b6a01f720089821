import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Redacted } from "effect"
import type { OutgoingEmail } from "../src/domain/OutgoingEmail.ts"
import * as SmtpPool from "../src/smtp/SmtpPool.ts"
import { SmtpConnection } from "../src/smtp/SmtpConnection.ts"
import { SmtpStatus } from "../src/smtp/SmtpStatus.ts"
import { withCapturedLogs } from "./support/logCapture.ts"
import { smtpServer, type SmtpTestServer } from "./support/smtpServer.ts"

const email = (to: ReadonlyArray<string> = ["alice@example.com"]): OutgoingEmail => ({
  messageId: "<a1b2c3@zulip.example.com>",
  envelope: { from: "noreply@zulip.example.com", to },
  from: "Example Org <noreply@zulip.example.com>",
  to: to.map((address) => `Someone <${address}>`),
  replyTo: ["support@zulip.example.com"],
  subject: "Welcome to Example Org",
  text: "Hello, welcome aboard.",
  html: "<p>Hello, welcome aboard.</p>",
  date: "Sun, 29 Nov 2026 10:15:30 +0000",
  headers: [
    ["List-Id", "Example Org <example.zulip.example.com>"],
    ["X-Auto-Response-Suppress", "All"]
  ],
  template: "zerver/emails/followup_day1",
  realm: "example"
})

/** Short timeouts and backoff, so failing paths stay fast. */
const optionsFor = (
  server: SmtpTestServer,
  overrides: Partial<SmtpPool.SmtpPoolOptions> = {}
): SmtpPool.SmtpPoolOptions => ({
  host: server.host,
  port: server.port,
  timeout: "2 seconds",
  connectRetryDelay: "10 millis",
  ...overrides
})

/** Runs `use` with a pool built from `options`; the pool is released (QUIT) when `use` ends. */
const withPool = <A, E>(
  options: SmtpPool.SmtpPoolOptions,
  use: (smtp: SmtpConnection["Service"], status: SmtpStatus["Service"]) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    return yield* use(yield* SmtpConnection, yield* SmtpStatus)
  }).pipe(Effect.provide(SmtpPool.layer(options)))

describe("SmtpPool", () => {
  it.live("delivers exactly our headers, the text + html alternative and the envelope", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      const report = yield* withPool(optionsFor(server), (smtp) => smtp.send(email()))
      assert.deepStrictEqual(report.accepted, ["alice@example.com"])
      assert.deepStrictEqual(report.rejected, [])
      assert.match(report.response, /^250 /)

      const [message] = server.messages
      assert.deepStrictEqual(message?.envelope, { from: "noreply@zulip.example.com", to: ["alice@example.com"] })
      const header = (name: string) => message?.header(name)
      assert.strictEqual(header("Message-ID"), "<a1b2c3@zulip.example.com>")
      assert.strictEqual(header("Date"), "Sun, 29 Nov 2026 10:15:30 +0000")
      assert.strictEqual(header("From"), "Example Org <noreply@zulip.example.com>")
      assert.strictEqual(header("To"), "Someone <alice@example.com>")
      assert.strictEqual(header("Reply-To"), "support@zulip.example.com")
      assert.strictEqual(header("Subject"), "Welcome to Example Org")
      assert.strictEqual(header("List-Id"), "Example Org <example.zulip.example.com>")
      assert.strictEqual(header("X-Auto-Response-Suppress"), "All")
      const names = message?.headers.map(([name]) => name.toLowerCase()) ?? []
      assert.strictEqual(names.filter((name) => name === "message-id").length, 1)
      assert.strictEqual(names.filter((name) => name === "date").length, 1)
      assert.isBelow(names.indexOf("list-id"), names.indexOf("x-auto-response-suppress"))
      assert.match(header("Content-Type") ?? "", /^multipart\/alternative;/)
      assert.match(
        message?.raw ?? "",
        /Content-Type: text\/plain[\s\S]*Hello, welcome aboard\.[\s\S]*text\/html[\s\S]*<p>Hello, welcome aboard\.<\/p>/
      )
    }))

  it.live("a 451 recipient is NotDelivered with code 451", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      const error = yield* withPool(optionsFor(server), (smtp) =>
        Effect.flip(smtp.send(email(["bob+451@example.com"]))))
      assert.strictEqual(error._tag, "NotDelivered")
      assert.strictEqual(error._tag === "NotDelivered" ? error.smtpCode : null, 451)
      assert.strictEqual(server.messages.length, 0)
    }))

  it.live("a 550 recipient is Rejected with the code, the server's text and the recipients", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      const error = yield* withPool(optionsFor(server), (smtp) =>
        Effect.flip(smtp.send(email(["carol+550@example.com"]))))
      assert.strictEqual(error._tag, "Rejected")
      if (error._tag === "Rejected") {
        assert.strictEqual(error.smtpCode, 550)
        assert.include(error.response, "Scripted refusal of carol+550@example.com")
        assert.deepStrictEqual(error.recipients, ["carol+550@example.com"])
      }
    }))

  it.live("a message some recipients refused succeeds and lists the refused ones", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      const report = yield* withPool(
        optionsFor(server),
        (smtp) => smtp.send(email(["alice@example.com", "bob+451@example.com", "carol+550@example.com"]))
      )
      assert.deepStrictEqual(report.accepted, ["alice@example.com"])
      assert.deepStrictEqual(report.rejected.map(({ address, smtpCode }) => [address, smtpCode]), [
        ["bob+451@example.com", 451],
        ["carol+550@example.com", 550]
      ])
      assert.deepStrictEqual(server.messages.map((message) => message.envelope.to), [["alice@example.com"]])
    }))

  it.live("a message refused after DATA fails, and the connection is reset and reused", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      server.failNextMessages(1, 452, "Insufficient system storage")
      const [error] = yield* withPool(optionsFor(server), (smtp) =>
        Effect.all([Effect.flip(smtp.send(email())), smtp.send(email())]))
      assert.strictEqual(error._tag, "NotDelivered")
      assert.strictEqual(error._tag === "NotDelivered" ? error.response : null, "452 Insufficient system storage")
      assert.strictEqual(server.commandCount("RSET"), 1)
      assert.strictEqual(server.connections, 1)
      assert.strictEqual(server.messages.length, 1)
    }))

  it.live("a connection dropped during DATA is NotDelivered and replaced for the next message", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      server.dropNextMessages(1)
      const [error] = yield* withPool(optionsFor(server), (smtp) =>
        Effect.all([Effect.flip(smtp.send(email())), smtp.send(email())]))
      assert.strictEqual(error._tag, "NotDelivered")
      assert.strictEqual(error._tag === "NotDelivered" ? error.smtpCode : undefined, null)
      assert.strictEqual(server.connections, 2)
      assert.strictEqual(server.messages.length, 1)
    }))

  it.live("a greeting slower than the timeout is Unavailable (an outage), after Zulip's 3 tries", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer({ greetingDelayMillis: 1_000 })
      const error = yield* withPool(
        optionsFor(server, { timeout: "300 millis" }),
        (smtp) => Effect.flip(smtp.send(email()))
      )
      assert.strictEqual(error._tag, "Unavailable")
      assert.include(error.message, "no answer within 300 ms")
      assert.strictEqual(server.connections, 3)
    }))

  it.live("a stopped server is Unavailable for send and healthCheck, and mail flows again once it is back", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      yield* withPool(optionsFor(server), (smtp, status) =>
        Effect.gen(function*() {
          yield* smtp.send(email())
          yield* Effect.promise(() => server.stop())
          const sendError = yield* Effect.flip(smtp.send(email()))
          assert.strictEqual(sendError._tag, "Unavailable")
          assert.strictEqual(sendError._tag === "Unavailable" ? sendError.dependency : null, "smtp")
          assert.strictEqual((yield* Effect.flip(smtp.healthCheck))._tag, "Unavailable")
          assert.strictEqual((yield* status.snapshot).lastCheck?.ok, false)
          yield* Effect.promise(() => server.start())
          yield* smtp.send(email())
          assert.strictEqual((yield* status.snapshot).lastCheck?.ok, true)
        }))
      assert.strictEqual(server.messages.length, 2)
    }))

  it.live("a server that greets with 421 or 554 is Unavailable, never Rejected", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      const refusedWith = (code: number) => {
        server.refuseConnections(code)
        return withPool(optionsFor(server), (smtp) => Effect.flip(smtp.send(email())))
      }
      assert.strictEqual((yield* refusedWith(421))._tag, "Unavailable")
      assert.strictEqual((yield* refusedWith(554))._tag, "Unavailable")
      assert.strictEqual(server.commandCount("MAIL"), 0)
    }))

  it.live("a login with the wrong password is Unavailable; the right one delivers", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer({ auth: { user: "worker", password: "s3cret" } })
      const error = yield* withPool(
        optionsFor(server, { user: "worker", password: Redacted.make("wrong") }),
        (smtp) => Effect.flip(smtp.send(email()))
      )
      assert.strictEqual(error._tag, "Unavailable")
      assert.notInclude(error.message, "wrong")
      yield* withPool(
        optionsFor(server, { user: "worker", password: Redacted.make("s3cret") }),
        (smtp) => smtp.send(email())
      )
      assert.strictEqual(server.messages.length, 1)
    }))

  it.live("an unresolvable host is a DnsError", () =>
    Effect.gen(function*() {
      const error = yield* withPool(
        { host: "nonexistent.invalid", port: 25, timeout: "2 seconds", connectRetryDelay: "10 millis" },
        (smtp) => Effect.flip(smtp.send(email()))
      )
      assert.strictEqual(error._tag, "DnsError")
      if (error._tag === "DnsError") {
        assert.strictEqual(error.host, "nonexistent.invalid")
        assert.oneOf(error.code, ["ENOTFOUND", "EAI_AGAIN", "EDNS"])
      }
    }))

  it.live("an idle connection answers NOOP before reuse; a busy one is reused without", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      yield* withPool(optionsFor(server, { idleCheck: "150 millis" }), (smtp) =>
        Effect.gen(function*() {
          yield* smtp.send(email())
          yield* smtp.send(email())
          assert.strictEqual(server.commandCount("NOOP"), 0)
          yield* Effect.sleep("300 millis")
          yield* smtp.send(email())
          assert.strictEqual(server.commandCount("NOOP"), 1)
        }))
      assert.strictEqual(server.connections, 1)
      assert.strictEqual(server.messages.length, 3)
    }))

  it.live("an idle connection the server closed is replaced without failing the send", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      yield* withPool(optionsFor(server), (smtp) =>
        Effect.gen(function*() {
          yield* smtp.send(email())
          server.dropConnections()
          yield* Effect.sleep("100 millis")
          // noticed while idle
          yield* smtp.send(email())
          server.dropConnections()
          // not noticed yet: the send breaks before any of the message goes out, and another connection takes it
          yield* smtp.send(email())
        }))
      assert.strictEqual(server.connections, 3)
      assert.strictEqual(server.messages.length, 3)
    }))

  it.live("an idle connection whose NOOP is not answered with 250 is replaced", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer({ refuseNoop: true })
      yield* withPool(optionsFor(server, { idleCheck: "100 millis" }), (smtp) =>
        Effect.gen(function*() {
          yield* smtp.send(email())
          yield* Effect.sleep("200 millis")
          yield* smtp.send(email())
        }))
      assert.strictEqual(server.commandCount("NOOP"), 1)
      assert.strictEqual(server.connections, 2)
      assert.strictEqual(server.messages.length, 2)
    }))

  it.live("an idle connection whose NOOP fails is invalidated, and the message goes on another connection", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer({ refuseNoop: true })
      yield* withPool(optionsFor(server, { idleCheck: "100 millis", connections: 2 }), (smtp, status) =>
        Effect.gen(function*() {
          // two connections, both idle past the check
          yield* Effect.all([smtp.send(email(["one@example.com"])), smtp.send(email(["two@example.com"]))], {
            concurrency: "unbounded"
          })
          assert.strictEqual(server.connections, 2)
          yield* Effect.sleep("200 millis")
          yield* smtp.send(email(["three@example.com"]))
          // both failed their check and left the pool; a third connection carried the message
          assert.strictEqual(server.commandCount("NOOP"), 2)
          assert.strictEqual((yield* status.snapshot).open, 1)
        }))
      assert.strictEqual(server.connections, 3)
      assert.deepStrictEqual(server.messages.map((message) => message.envelope.to[0]).sort(), [
        "one@example.com",
        "three@example.com",
        "two@example.com"
      ])
      assert.strictEqual(server.messages.find((message) => message.envelope.to[0] === "three@example.com")?.connection, 3)
    }))

  it.live("no connection older than the maximum lifetime carries a message: the pool QUITs it and opens another", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      yield* withPool(optionsFor(server, { maxConnectionLifetime: "100 millis" }), (smtp, status) =>
        Effect.gen(function*() {
          yield* smtp.send(email())
          yield* Effect.sleep("200 millis")
          // retired while idle, in the background, and not replaced until a send needs one
          assert.strictEqual(server.commandCount("QUIT"), 1)
          assert.strictEqual(server.connections, 1)
          assert.strictEqual((yield* status.snapshot).open, 0)
          // a steady flow of sends across several lifetimes
          for (let n = 0; n < 25; n++) {
            yield* smtp.send(email())
            yield* Effect.sleep("20 millis")
          }
        }))
      assert.strictEqual(server.messages.length, 26)
      assert.isAtLeast(server.connections, 4)
      // the server counts from its accept, before the greeting and EHLO that the pool counts after, and a message
      // begins (MAIL FROM) one step after the pool's check: a few milliseconds over on loopback
      for (const message of server.messages) assert.isBelow(message.connectionAgeMillis, 100 + 50)
      assert.strictEqual(server.commandCount("QUIT"), server.connections)
    }))

  it.live("is lazy: no connection before the first send, however long the pool has been up", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      yield* withPool(optionsFor(server, { maxConnectionLifetime: "1 second", idleCheck: "50 millis" }), (smtp, status) =>
        Effect.gen(function*() {
          yield* Effect.sleep("300 millis")
          assert.strictEqual(server.connections, 0)
          assert.deepStrictEqual(yield* status.snapshot, { capacity: 4, open: 0, busy: 0, waiting: 0, lastCheck: null })
          yield* smtp.send(email())
          assert.strictEqual(server.connections, 1)
          assert.strictEqual((yield* status.snapshot).open, 1)
        }))
      assert.strictEqual(server.messages.length, 1)
    }))

  it.live("opens nothing at start, at most SMTP_CONNECTIONS at once, and QUITs them all on release", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      yield* withPool(optionsFor(server, { connections: 2 }), (smtp, status) =>
        Effect.gen(function*() {
          assert.strictEqual(server.connections, 0)
          assert.deepStrictEqual(yield* status.snapshot, { capacity: 2, open: 0, busy: 0, waiting: 0, lastCheck: null })
          yield* Effect.forEach(
            Array.from({ length: 8 }, (_, i) => email([`user${i}@example.com`])),
            (message) => smtp.send(message),
            { concurrency: "unbounded" }
          )
          const snapshot = yield* status.snapshot
          assert.deepStrictEqual([snapshot.open, snapshot.busy, snapshot.lastCheck?.ok], [2, 0, true])
        }))
      assert.strictEqual(server.messages.length, 8)
      assert.strictEqual(server.connections, 2)
      assert.strictEqual(server.peakConnections, 2)
      assert.strictEqual(server.commandCount("QUIT"), 2)
      assert.strictEqual(server.openConnections, 0)
    }))

  it.live("close QUITs the idle connections; healthCheck opens one when there is none", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer()
      yield* withPool(optionsFor(server), (smtp, status) =>
        Effect.gen(function*() {
          yield* smtp.healthCheck
          assert.strictEqual(server.connections, 1)
          assert.strictEqual(server.commandCount("NOOP"), 0)
          yield* smtp.healthCheck
          assert.strictEqual(server.commandCount("NOOP"), 1)
          yield* smtp.close
          assert.strictEqual(server.commandCount("QUIT"), 1)
          assert.strictEqual((yield* status.snapshot).open, 0)
        }))
      assert.strictEqual(server.commandCount("QUIT"), 1)
    }))

  it.live("requires STARTTLS: never falls back to plaintext, and verifies the certificate unless told not to", () =>
    Effect.gen(function*() {
      const plain = yield* smtpServer()
      const noStartTls = yield* withPool(
        optionsFor(plain, { encryption: "starttls", tlsInsecure: true }),
        (smtp) => Effect.flip(smtp.send(email()))
      )
      assert.strictEqual(noStartTls._tag, "Unavailable")
      assert.strictEqual(plain.commandCount("MAIL"), 0)

      const selfSigned = yield* smtpServer({ startTls: true })
      const untrusted = yield* withPool(
        optionsFor(selfSigned, { encryption: "starttls" }),
        (smtp) => Effect.flip(smtp.send(email()))
      )
      assert.strictEqual(untrusted._tag, "Unavailable")
      yield* withPool(
        optionsFor(selfSigned, { encryption: "starttls", tlsInsecure: true }),
        (smtp) => smtp.send(email())
      )
      assert.strictEqual(selfSigned.commandCount("STARTTLS"), 4)
      assert.strictEqual(selfSigned.messages.length, 1)
    }))

  it.live("speaks TLS from the first byte with encryption \"ssl\"", () =>
    Effect.gen(function*() {
      const server = yield* smtpServer({ implicitTls: true })
      yield* withPool(optionsFor(server, { encryption: "ssl", tlsInsecure: true }), (smtp) => smtp.send(email()))
      assert.strictEqual(server.messages.length, 1)
    }))

  it.live("a user without a password logs Zulip's error and sends without logging in", () =>
    withCapturedLogs((lines) =>
      Effect.gen(function*() {
        const server = yield* smtpServer()
        yield* withPool(optionsFor(server, { user: "worker" }), (smtp) => smtp.send(email()))
        assert.strictEqual(server.messages.length, 1)
        assert.deepInclude(lines, {
          level: "Error",
          message: "An SMTP username was set (EMAIL_HOST_USER), but password is unset (EMAIL_HOST_PASSWORD).  " +
            "To disable SMTP authentication, set EMAIL_HOST_USER to an empty string."
        })
        yield* withPool(
          optionsFor(server, { user: "worker", password: Redacted.make("") }),
          (smtp) => smtp.send(email())
        )
        assert.strictEqual(lines.filter((line) => line.level === "Error").length, 1)
      })
    ))

  it.effect("reads its settings from the environment", () =>
    Effect.gen(function*() {
      const read = (env: Record<string, string>) =>
        SmtpPool.optionsConfig.parse(ConfigProvider.fromEnv({ env }))
      const defaults = yield* read({ EMAIL_HOST: "smtp.example.com" })
      assert.deepStrictEqual(
        {
          ...defaults,
          timeout: Duration.toMillis(defaults.timeout!),
          idleCheck: Duration.toMillis(defaults.idleCheck!)
        },
        {
          host: "smtp.example.com",
          port: 25,
          user: "",
          password: undefined,
          encryption: "none",
          tlsInsecure: false,
          timeout: 15_000,
          connections: 4,
          idleCheck: 5_000,
          maxConnectionLifetime: undefined,
          maxRecipients: 100
        }
      )
      const set = yield* read({
        EMAIL_HOST: "smtp.example.com",
        EMAIL_PORT: "465",
        EMAIL_HOST_USER: "worker",
        EMAIL_HOST_PASSWORD: "s3cret",
        EMAIL_USE_SSL: "true",
        EMAIL_TIMEOUT: "30",
        SMTP_CONNECTIONS: "8",
        EMAIL_MAX_CONNECTION_LIFETIME: "10 minutes",
        SMTP_MAX_RECIPIENTS: "50"
      })
      assert.deepStrictEqual([set.port, set.encryption, set.connections, set.maxRecipients], [465, "ssl", 8, 50])
      assert.deepStrictEqual(
        [Duration.toMillis(set.timeout!), Duration.toMillis(set.maxConnectionLifetime!)],
        [30_000, 600_000]
      )
      assert.strictEqual(set.password === undefined ? undefined : Redacted.value(set.password), "s3cret")
      assert.strictEqual((yield* read({ EMAIL_HOST: "h", EMAIL_USE_TLS: "true" })).encryption, "starttls")
      const both = yield* Effect.flip(read({ EMAIL_HOST: "h", EMAIL_USE_TLS: "true", EMAIL_USE_SSL: "true" }))
      assert.include(both.message, "mutually exclusive")
      yield* Effect.flip(read({ EMAIL_HOST: "h", SMTP_CONNECTIONS: "0" }))
      yield* Effect.flip(read({ EMAIL_HOST: "h", SMTP_MAX_RECIPIENTS: "0" }))
    }))
})
