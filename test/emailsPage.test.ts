/**
 * The development `/emails` page in a real browser (headless Chromium from Debian's `chromium` package): emails
 * captured by the development backend are listed newest first, their HTML renders in a sandboxed frame, their text
 * is shown, and nothing in an email is taken as markup of the page.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, SubscriptionRef } from "effect"
import { HttpServer } from "effect/http"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium } from "playwright-core"
import type { OutgoingEmail } from "../src/domain/OutgoingEmail.ts"
import * as DevelopmentCapture from "../src/smtp/DevelopmentCapture.ts"
import { InMemoryRealms } from "../src/realms/InMemoryRealmRepository.ts"
import * as OperationsHttp from "../src/operations/OperationsHttp.ts"
import { RabbitMqConnection } from "../src/queue/RabbitMqConnection.ts"
import { SmtpConnection } from "../src/smtp/SmtpConnection.ts"

const email = (n: number, overrides: Partial<OutgoingEmail> = {}): OutgoingEmail => ({
  messageId: `<email-${n}@zulip.example>`,
  envelope: { from: "noreply@zulip.example", to: [`user${n}@example.com`] },
  from: "Zulip <noreply@zulip.example>",
  to: [`User ${n} <user${n}@example.com>`],
  replyTo: [],
  subject: `Email number ${n}`,
  text: `Text part of email ${n}`,
  html: `<p id="greeting">HTML part of email ${n}</p>`,
  date: "Sun, 29 Nov 2026 12:00:00 -0000",
  headers: [],
  template: "password_reset",
  realm: null,
  ...overrides
})

const connectedBroker = Layer.effect(
  RabbitMqConnection,
  Effect.map(SubscriptionRef.make(true), (connected) =>
    RabbitMqConnection.of({ connected, problem: Effect.succeed("not connected"), sessionProblem: Effect.succeed(undefined), nodes: [], node: Effect.succeed(undefined), keepSession: () => Effect.die("no session in this test") }))
)

/** The endpoint over a capture directory of its own; gives its base URL and the capture's `send`. */
const endpoint = (options: { readonly servesEmails: boolean }) =>
  Effect.gen(function*() {
    const directory = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "emails-page-"))),
      (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
    )
    const context = yield* Layer.build(
      OperationsHttp.layer({ port: 0, ...(options.servesEmails ? { capturedEmailsDirectory: directory } : {}) }).pipe(
        Layer.provideMerge(Layer.mergeAll(
          connectedBroker,
          DevelopmentCapture.layer({ directory }),
          InMemoryRealms.layer({ realms: [], users: [] })
        ))
      )
    )
    return {
      base: HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address),
      send: Context.get(context, SmtpConnection).send
    }
  })

const browserPage = Effect.gen(function*() {
  const browser = yield* Effect.acquireRelease(
    Effect.promise(() =>
      chromium.launch({
        executablePath: "/usr/bin/chromium",
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync"
        ]
      })
    ),
    (browser) => Effect.promise(() => browser.close())
  )
  return yield* Effect.promise(() => browser.newPage())
})

describe("/emails", () => {
  it.live("lists captured emails newest first, renders each HTML part in a sandboxed frame and shows the text", () =>
    Effect.gen(function*() {
      const { base, send } = yield* endpoint({ servesEmails: true })
      yield* send(email(1, {
        subject: "<b>Not bold</b> & \"quoted\"",
        html: "<p id=\"greeting\">HTML part of email 1</p>" +
          "<script>document.body.insertAdjacentHTML('beforeend', '<p id=\"injected\">script ran</p>')</script>"
      }))
      // capture files are named by time: let the clock move on so the second one is newer
      yield* Effect.sleep("20 millis")
      yield* send(email(2))

      const page = yield* browserPage
      yield* Effect.promise(async () => {
        const response = await page.goto(`${base}/emails`)
        assert.strictEqual(response?.status(), 200)
        assert.deepStrictEqual(await page.locator("h2").allTextContents(), [
          "Email number 2",
          "<b>Not bold</b> & \"quoted\""
        ])
        // the subject's markup is text, not markup of the page
        assert.strictEqual(await page.locator("h2 b").count(), 0)
        assert.isTrue(await page.getByText("User 2 <user2@example.com>").isVisible())
        assert.isTrue(await page.getByText("Text part of email 1").isVisible())

        const frames = page.frameLocator("iframe")
        await frames.nth(0).locator("#greeting").waitFor({ state: "visible" })
        assert.strictEqual(await frames.nth(0).locator("#greeting").textContent(), "HTML part of email 2")
        assert.strictEqual(await frames.nth(1).locator("#greeting").textContent(), "HTML part of email 1")
        assert.isTrue(await frames.nth(1).locator("#greeting").isVisible())
        // the frame is sandboxed: the email's script did not run
        assert.strictEqual(await frames.nth(1).locator("#injected").count(), 0)
        assert.strictEqual(await page.locator("iframe").first().getAttribute("sandbox"), "")
      })
    }), { timeout: 120_000 })

  it.live("is not served when emails are sent over SMTP", () =>
    Effect.gen(function*() {
      const { base } = yield* endpoint({ servesEmails: false })
      const status = yield* Effect.promise(() => fetch(`${base}/emails`).then((response) => response.status))
      assert.strictEqual(status, 404)
    }))
})
