/**
 * `/failures`: the errors file read, counted and filtered (`records/failureListing.ts`), and the page in headless
 * Chromium next to a worker composed in process on RabbitMQ (a queue of its own) and a loopback SMTP server: log
 * in, filter, open a failure (context masked until asked), replay it and see the email arrive; the replay mark
 * shows. Without the token a request gets 401; a POST from another site or another origin is refused.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, FileSystem, Layer, Redacted } from "effect"
import { HttpServer } from "effect/http"
import { createServer } from "node:http"
import { join } from "node:path"
import { chromium, type Page } from "playwright-core"
import * as DevelopmentCapture from "../src/smtp/DevelopmentCapture.ts"
import * as InMemoryEmailBuilder from "../src/email/InMemoryEmailBuilder.ts"
import * as OperationsHttp from "../src/operations/OperationsHttp.ts"
import { runWorker } from "../src/pipeline/worker.ts"
import * as RabbitMq from "../src/queue/RabbitMqConnection.ts"
import * as RabbitMqConsumer from "../src/queue/RabbitMqConsumer.ts"
import { InMemoryRealms } from "../src/realms/InMemoryRealmRepository.ts"
import { listFailures } from "../src/records/failureListing.ts"
import { InMemoryFailures } from "../src/records/InMemoryFailureStore.ts"
import { InMemoryStats } from "../src/records/InMemoryStatsWriter.ts"
import { replayedMarksPath } from "../src/records/replayFailures.ts"
import * as SesSuppressionList from "../src/smtp/SesSuppressionList.ts"
import * as SmtpPool from "../src/smtp/SmtpPool.ts"
import { defaultWorkerSettings, WorkerSettings } from "../src/config/WorkerSettings.ts"
import { loopbackHttpServer } from "./support/listener.ts"
import { connectionOptions, makeAdmin } from "./support/rabbitmq.ts"
import { smtpServer } from "./support/smtpServer.ts"

const token = "operator-token-for-the-failures-test"
const secretContextValue = "SECRET-reset-key-7f3a9c"

const weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
const two = (n: number) => String(n).padStart(2, "0")
const asctime = (date: Date) =>
  `${weekdays[date.getDay()]} ${months[date.getMonth()]} ${String(date.getDate()).padStart(2, " ")} ` +
  `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())} ${date.getFullYear()}`

/** One record as the worker writes it: asctime TAB [event] TAB reason. */
const record = (time: Date, event: unknown, reason: { tag: string; message: string; attempts: number; smtpCode: number | null }) =>
  `${asctime(time)}\t${JSON.stringify([event])}\t${JSON.stringify(reason)}\n`

const resetEvent = (to: string) => ({
  template_prefix: "zerver/emails/password_reset",
  to_emails: [to],
  from_name: "Zulip Account Security",
  context: { reset_url: `https://zulip.example/reset/${secretContextValue}` },
  failed_tries: 3
})

const hoursAgo = (now: number, hours: number) => new Date(now - hours * 3600 * 1000)

/** An errors file: three TemplateErrors of password_reset, two Rejected of invitation, a raw-text InvalidEvent. */
const errorsFileText = (now: number) =>
  [
    record(hoursAgo(now, 5), resetEvent("first@example.com"), { tag: "TemplateError", message: "template zerver/emails/password_reset does not exist", attempts: 1, smtpCode: null }),
    record(hoursAgo(now, 4), { template_prefix: "zerver/emails/invitation", to_emails: ["inv1@example.com"] }, { tag: "Rejected", message: "550 5.1.1 <inv1@example.com>: unknown <b>user</b>", attempts: 1, smtpCode: 550 }),
    record(hoursAgo(now, 3), resetEvent("replay-me@example.com"), { tag: "TemplateError", message: "template zerver/emails/password_reset does not exist", attempts: 1, smtpCode: null }),
    record(hoursAgo(now, 2), { template_prefix: "zerver/emails/invitation", to_emails: ["inv2@example.com"] }, { tag: "Rejected", message: "550 <script>alert(1)</script>", attempts: 1, smtpCode: 550 }),
    record(hoursAgo(now, 1), "not json at all", { tag: "InvalidEvent", message: "invalid email event: not JSON", attempts: 0, smtpCode: null }),
    record(hoursAgo(now, 0.5), resetEvent("third@example.com"), { tag: "TemplateError", message: "template zerver/emails/password_reset does not exist", attempts: 1, smtpCode: null })
  ].join("")

const withErrorsFile = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const directory = yield* fs.makeTempDirectoryScoped({ prefix: "es-failures-" })
  const file = join(directory, "email_senders.errors")
  yield* fs.writeFileString(file, errorsFileText(Date.now()))
  return file
}).pipe(Effect.provide(NodeFileSystem.layer))

describe("the errors file, listed", () => {
  it.live("counts by tag and template per hour, filters as replay does, lists the newest first and shows marks", () =>
    Effect.gen(function*() {
      const file = yield* withErrorsFile
      const all = yield* listFailures(file, {}, 100)
      assert.strictEqual(all.matching, 6)
      assert.strictEqual(all.period, "hour")
      assert.deepStrictEqual(all.tags, ["InvalidEvent", "Rejected", "TemplateError"])
      assert.deepStrictEqual(all.templates, ["(not an event)", "zerver/emails/invitation", "zerver/emails/password_reset"])
      assert.strictEqual(all.counts.reduce((sum, period) => sum + period.total, 0), 6)
      assert.strictEqual(all.counts.reduce((sum, period) => sum + (period.byTemplate.get("zerver/emails/password_reset") ?? 0), 0), 3)
      assert.deepStrictEqual(all.failures.map((failure) => failure.lineNumber), [6, 5, 4, 3, 2, 1])

      const templateErrors = yield* listFailures(file, { tag: "TemplateError", template: "password_reset" }, 2)
      assert.strictEqual(templateErrors.matching, 3)
      assert.deepStrictEqual(templateErrors.failures.map((failure) => failure.lineNumber), [6, 3], "the newest 2")
      const recent = yield* listFailures(file, { since: hoursAgo(Date.now(), 2.5) }, 100)
      assert.deepStrictEqual(recent.failures.map((failure) => failure.lineNumber), [6, 5, 4])

      const fs = yield* FileSystem.FileSystem
      yield* fs.writeFileString(replayedMarksPath(file), `${all.failures[3]!.key}\t2026-12-03T07:00:00.000Z\n`)
      const marked = yield* listFailures(file, {}, 100)
      assert.strictEqual(marked.replayed, 1)
      assert.strictEqual(marked.failures.find((failure) => failure.lineNumber === 3)!.replayedAt, "2026-12-03T07:00:00.000Z")
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

/** A worker on a queue of its own sending to a loopback SMTP server, with the endpoint serving `/failures`. */
const startWorkerWithPage = (errorsFile: string) =>
  Effect.gen(function*() {
    const smtp = yield* smtpServer()
    const admin = yield* makeAdmin
    const queueName = yield* admin.declareQueue()
    const services = Layer.mergeAll(
      RabbitMqConsumer.layerNoDeps({ queueName, prefetch: 10 }),
      SmtpPool.layer({ host: smtp.host, port: smtp.port, connections: 1, timeout: "5 seconds" }),
      InMemoryRealms.layer({ realms: [], users: [] }),
      InMemoryEmailBuilder.layer({ "zerver/emails/password_reset": { subject: "Reset your password", text: "Reset it" } }),
      SesSuppressionList.layerDisabled,
      InMemoryFailures.layer,
      InMemoryStats.layer,
      Layer.succeed(WorkerSettings, { ...defaultWorkerSettings, queueName, batchTimeout: Duration.millis(100) })
    ).pipe(Layer.provideMerge(RabbitMq.layer(connectionOptions(`failures-page-${queueName}`))))
    const context = yield* Layer.build(OperationsHttp.layer({
      port: 0,
      failures: {
        token: Redacted.make(token),
        errorsFile,
        queueName,
        maxEventDepth: 64,
        messageIdHost: "failures.test",
        publishTimeout: "10 seconds"
      }
    }).pipe(Layer.provideMerge(services)))
    yield* runWorker.pipe(Effect.provide(context), Effect.forkScoped)
    yield* admin.awaitConsumer(queueName)
    const address = Context.get(context, HttpServer.HttpServer).address
    return { base: HttpServer.formatAddress(address), port: "port" in address ? address.port : 0, smtp }
  })

/** A page of another origin that posts a replay form to its `target` query parameter as soon as it loads. */
const attackerSite = Effect.map(
  loopbackHttpServer(createServer((request, response) => {
    const target = new URL(request.url ?? "/", "http://attacker.invalid").searchParams.get("target") ?? ""
    response.writeHead(200, { "content-type": "text/html" }).end(
      `<form method="post" action="${target.replace(/[^A-Za-z0-9:/._-]/g, "")}"><input name="all" value="1"></form>` +
        "<script>document.forms[0].submit()</script>"
    )
  })),
  (port) => ({ port })
)

const browserPage = Effect.gen(function*() {
  const browser = yield* Effect.acquireRelease(
    Effect.promise(() =>
      chromium.launch({
        executablePath: "/usr/bin/chromium",
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]
      })
    ),
    (browser) => Effect.promise(() => browser.close())
  )
  return yield* Effect.promise(() => browser.newPage())
})

const statusOf = (base: string, path: string, init: RequestInit = {}) =>
  Effect.promise(() => fetch(`${base}${path}`, { redirect: "manual", ...init }).then((response) => response.status))

/** Submit a form from a page of `origin` to the page's replay, and give the status the browser got. */
const crossOriginReplay = (page: Page, site: { readonly port: number }, origin: string, base: string) =>
  Effect.promise(async () => {
    const answered = page.waitForResponse((response) => response.url().endsWith("/failures/replay"))
    await page.goto(`${origin}:${site.port}/?target=${encodeURIComponent(`${base}/failures/replay`)}`)
    return (await answered).status()
  })

/** The endpoint alone (capturing emails, no worker), with `/failures` on `errorsFile` when given; gives its base URL. */
const endpointOnly = (errorsFile: string | undefined) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped({ prefix: "es-endpoint-" })
    const failures: Partial<OperationsHttp.OperationsHttpOptions> = errorsFile === undefined ? {} : {
      failures: {
        token: Redacted.make(token),
        errorsFile,
        queueName: "unused",
        maxEventDepth: 64,
        messageIdHost: "failures.test",
        publishTimeout: "1 second"
      }
    }
    const context = yield* Layer.build(OperationsHttp.layer({ port: 0, ...failures }).pipe(
      Layer.provideMerge(Layer.mergeAll(
        RabbitMq.layer(connectionOptions("failures-page-endpoint")),
        DevelopmentCapture.layer({ directory }),
        InMemoryRealms.layer({ realms: [], users: [] })
      ))
    ))
    return HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
  }).pipe(Effect.provide(NodeFileSystem.layer))

describe("/failures without OPERATIONS_TOKEN, or without an errors file yet", () => {
  it.live("is not served at all without the token", () =>
    Effect.gen(function*() {
      const base = yield* endpointOnly(undefined)
      assert.strictEqual(yield* statusOf(base, "/failures"), 404)
      assert.strictEqual(yield* statusOf(base, "/failures/login"), 404)
      assert.strictEqual(yield* statusOf(base, "/failures", { headers: { authorization: `Bearer ${token}` } }), 404)
    }))

  it.live("says that nothing was recorded yet while the errors file does not exist", () =>
    Effect.gen(function*() {
      const base = yield* endpointOnly("/nonexistent/queue_error/email_senders.errors")
      const page = yield* Effect.promise(() =>
        fetch(`${base}/failures`, { headers: { authorization: `Bearer ${token}` } }).then(async (response) => ({
          status: response.status,
          text: await response.text()
        }))
      )
      assert.strictEqual(page.status, 200)
      assert.include(page.text, "No failures recorded: /nonexistent/queue_error/email_senders.errors does not exist yet.")
    }))
})

describe("/failures in Chromium", () => {
  it.live("log in, filter, open a failure, replay it: the email arrives and the failure reads as replayed", () =>
    Effect.gen(function*() {
      const errorsFile = yield* withErrorsFile
      const { base, port, smtp } = yield* startWorkerWithPage(errorsFile)
      const page = yield* browserPage
      const site = yield* attackerSite

      // without the token: 401, for pages and POSTs alike; with it as a bearer token: the page
      assert.strictEqual(yield* statusOf(base, "/failures"), 401)
      assert.strictEqual(yield* statusOf(base, "/failures/event?key=x"), 401)
      assert.strictEqual(yield* statusOf(base, "/failures/replay", { method: "POST", body: new URLSearchParams({ all: "1" }) }), 401)
      assert.strictEqual(yield* statusOf(base, "/failures", { headers: { authorization: "Bearer wrong-token-wrong-token" } }), 401)
      assert.strictEqual(yield* statusOf(base, "/failures", { headers: { authorization: `Bearer ${token}` } }), 200)

      yield* Effect.promise(async () => {
        const first = await page.goto(`${base}/failures`)
        assert.strictEqual(first?.status(), 401)
        assert.include(first?.headers()["content-security-policy"] ?? "", "default-src 'none'")
        await page.getByLabel("Operations token").fill(token)
        await page.getByRole("button", { name: "Log in" }).click()
        await page.getByRole("heading", { name: "Failed emails", exact: true }).waitFor()
        const [cookie] = await page.context().cookies()
        assert.strictEqual(cookie?.httpOnly, true)
        assert.strictEqual(cookie?.sameSite, "Strict")
        assert.notStrictEqual(cookie?.value, token, "the cookie is a session, not the token")

        assert.include(await page.locator("body").innerText(), "6 failure(s) match, 0 of them replayed")
        assert.strictEqual(await page.getByRole("table", { name: "By reason tag" }).count(), 1)
        assert.strictEqual(await page.getByRole("table", { name: "By template" }).count(), 1)
        // what a record says is text, never markup of the page
        assert.strictEqual(await page.locator("td script, td b").count(), 0)
        assert.isTrue(await page.getByText("550 <script>alert(1)</script>").isVisible())

        await page.getByRole("combobox", { name: /^Tag/ }).selectOption("TemplateError")
        await page.getByRole("combobox", { name: /^Template/ }).selectOption("zerver/emails/password_reset")
        await page.getByRole("button", { name: "Filter" }).click()
        await page.waitForURL(/tag=TemplateError/)
        assert.include(await page.locator("body").innerText(), "3 failure(s) match")
        assert.strictEqual(await page.locator("tbody tr", { hasText: "line" }).count(), 3)

        await page.getByRole("link", { name: "line 3", exact: true }).click()
        await page.getByRole("heading", { name: "Headers" }).waitFor()
        const detail = await page.locator("body").innerText()
        assert.include(detail, "replay-me@example.com")
        assert.include(detail, "TemplateError")
        assert.notInclude(detail, secretContextValue, "context values are masked")
        await page.getByRole("link", { name: "Show the values" }).click()
        await page.getByRole("link", { name: "Mask the values" }).waitFor()
        assert.include(await page.locator("body").innerText(), secretContextValue)

        await page.getByRole("button", { name: "Replay" }).click()
        await page.getByRole("heading", { name: "Replayed" }).waitFor()
        const result = await page.locator("body").innerText()
        assert.include(result, "Published 1 event(s)")
        assert.include(result, "zerver/emails/password_reset")
      })
      yield* Effect.promise(async () => {
        for (let waited = 0; smtp.messages.length === 0 && waited < 20_000; waited += 50) await new Promise((r) => setTimeout(r, 50))
      })
      assert.deepStrictEqual(smtp.messages.map((message) => message.envelope.to), [["replay-me@example.com"]])
      const fs = yield* FileSystem.FileSystem
      const marks = (yield* fs.readFileString(replayedMarksPath(errorsFile))).trim().split("\n")
      assert.strictEqual(marks.length, 1)

      yield* Effect.promise(async () => {
        await page.goto(`${base}/failures?tag=TemplateError`)
        assert.include(await page.locator("body").innerText(), "3 failure(s) match, 1 of them replayed")
        assert.strictEqual(await page.locator("tbody tr", { hasText: "line 3" }).locator(".replayed").count(), 1)
        assert.strictEqual(await page.locator("tbody tr", { hasText: "line 3" }).getByRole("button", { name: "Replay" }).count(), 0)

        // the filtered set: the two not replayed yet, each once
        await page.getByRole("button", { name: "Replay all 2 matching failure(s) not replayed yet" }).click()
        await page.getByRole("heading", { name: "Replayed" }).waitFor()
        const result = await page.locator("body").innerText()
        assert.include(result, "Published 2 event(s)")
        assert.include(result, "already replayed before: 1")
        assert.include(result, "line 1")
        assert.include(result, "line 6")
      })
      yield* Effect.promise(async () => {
        for (let waited = 0; smtp.messages.length < 3 && waited < 20_000; waited += 50) await new Promise((r) => setTimeout(r, 50))
      })
      assert.sameMembers(smtp.messages.map((message) => message.envelope.to[0]), ["replay-me@example.com", "first@example.com", "third@example.com"])

      // another site (localhost is not 127.0.0.1): the SameSite cookie is not sent, so no operator
      assert.strictEqual(yield* crossOriginReplay(page, site, "http://localhost", `http://127.0.0.1:${port}`), 401)
      // the same site on another port: the cookie is sent, the CSRF check refuses the form
      assert.strictEqual(yield* crossOriginReplay(page, site, "http://127.0.0.1", `http://127.0.0.1:${port}`), 403)
      // a session cookie without the page's CSRF token, from outside a browser
      const cookies = yield* Effect.promise(() => page.context().cookies())
      assert.strictEqual(
        yield* statusOf(base, "/failures/replay", {
          method: "POST",
          headers: { cookie: `${cookies[0]!.name}=${cookies[0]!.value}` },
          body: new URLSearchParams({ all: "1" })
        }),
        403
      )
      assert.strictEqual(smtp.messages.length, 3, "nothing refused was replayed")
      assert.strictEqual((yield* fs.readFileString(replayedMarksPath(errorsFile))).trim().split("\n").length, 3)
    }).pipe(Effect.provide(NodeFileSystem.layer)), { timeout: 120_000 })
})
