/**
 * The built CLI as real processes, at its edges: every command but the worker writes its log lines to stderr, so
 * its stdout is exactly its output; `publish` and `replay` give an event without `message_id` a Message-ID in the
 * worker's own form; and a worker process answers on its operations endpoint only requests addressed to its own
 * host names, and records events whose header values are not what their header allows.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { request } from "node:http"
import { createServer } from "node:net"
import { join } from "node:path"
import { beforeAll } from "vitest"
import { buildCli, type CliEnv, type CliResult, runCli, startCli, waitUntil } from "./support/processes.ts"
import { makeAdmin } from "./support/rabbitmq.ts"
import { smtpServer } from "./support/smtpServer.ts"
import { templateTree } from "./support/templateTree.ts"

beforeAll(buildCli, 120_000)

const scratchDirectory = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "command-surface-" }))

/** A queue and a scratch directory of the test's own, both removed at the end. */
const queueAndDirectory = Effect.gen(function*() {
  const admin = yield* makeAdmin
  return { admin, queue: yield* admin.declareQueue(), directory: yield* scratchDirectory }
})

const writeFile = (file: string, content: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.writeFileString(file, content)).pipe(Effect.orDie)

/** The JSON log lines in `text`, as `[level, message]`. */
const logLines = (text: string): Array<readonly [string, string]> =>
  text.split("\n").flatMap((line) => {
    if (!line.startsWith("{")) return []
    const parsed = JSON.parse(line) as { level?: string; message?: unknown }
    return parsed.level === undefined ? [] : [[parsed.level, String(parsed.message)] as const]
  })

/**
 * Runs a command twice, logging at the default level and with logging off: stdout must be the same both times
 * (the command's output, nothing else), and the log lines, `expectedLog` among them when given, are on stderr.
 */
const stdoutIsOutputOnly = (
  args: ReadonlyArray<string>,
  env: CliEnv,
  expectedLog: readonly [level: string, message: RegExp] | null,
  options: { readonly stdin?: string } = {}
) =>
  Effect.gen(function*() {
    const logged = yield* runCli(args, env, options)
    const quiet = yield* runCli(args, { ...env, LOG_LEVEL: "None" }, options)
    assert.strictEqual(logged.stdout, quiet.stdout, `${args.join(" ")}: stdout differs when logging\n${logged.output}`)
    assert.deepStrictEqual(logLines(logged.stdout), [], `${args.join(" ")}: log lines on stdout`)
    if (expectedLog === null) return logged
    const [level, message] = expectedLog
    assert.isTrue(
      logLines(logged.stderr).some(([l, m]) => l === level && message.test(m)),
      `${args.join(" ")}: no ${level} log line ${message} on stderr:\n${logged.stderr}`
    )
    return logged
  })

const zulipLine = (events: ReadonlyArray<unknown>) => `Tue Mar  4 16:09:25 2025\t${JSON.stringify(events)}\n`

describe("commands whose stdout is their output log to stderr", () => {
  it.live("render: the email alone on stdout, the missing-language warning on stderr (JSON and pretty)", () =>
    Effect.gen(function*() {
      const directory = yield* scratchDirectory
      const eventFile = join(directory, "event.json")
      yield* writeFile(eventFile, JSON.stringify({
        template_prefix: "zerver/emails/password_reset",
        to_emails: ["you@zulip.example"],
        context: { reset_url: "https://zulip.example/reset/abc" },
        date: "Sun, 29 Nov 2026 12:00:00 -0000"
      }))
      const rendered = yield* stdoutIsOutputOnly(
        ["render", "--file", eventFile],
        {},
        ["WARN", /^Missing language for email template 'zerver\/emails\/password_reset'$/]
      )
      assert.match(rendered.stdout, /^From: /)
      const pretty = yield* runCli(["render", "--file", eventFile], { LOG_FORMAT: "pretty" })
      assert.strictEqual(pretty.stdout, rendered.stdout)
      assert.include(pretty.stderr, "Missing language for email template")
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))

  // the check silences its own log lines (it prints each problem once), so this guards stdout only
  it.live("templates check: the problems alone on stdout", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "zerver/emails/filter.subject.txt": "Filter",
        "zerver/emails/filter.txt": "Hello\n{{ name | no_such_filter }}\n"
      })
      const checked = yield* stdoutIsOutputOnly(["templates", "check"], { TEMPLATES_DIR: dir }, null)
      assert.strictEqual(checked.exitCode, 1)
      assert.match(checked.stdout, new RegExp(`^${join(dir, "zerver/emails/filter.txt")}:2: [^\n]*no_such_filter[^\n]*\n$`))
    }).pipe(Effect.scoped))

  // stats logs nothing today; this guards stdout, which a Nagios check parses
  it.live("stats: one Nagios line on stdout", () =>
    Effect.gen(function*() {
      const { directory, queue } = yield* queueAndDirectory
      const stats = yield* stdoutIsOutputOnly(
        ["stats"],
        { QUEUE_NAME: queue, QUEUE_STATS_DIR: directory },
        null
      )
      assert.strictEqual(stats.exitCode, 3)
      assert.match(stats.stdout, new RegExp(`^UNKNOWN: ${queue}: [^\n]+\n$`))
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))

  it.live("replay --dry-run and replay: their report on stdout, the skipped record's warning on stderr", () =>
    Effect.gen(function*() {
      const { admin, directory, queue } = yield* queueAndDirectory
      const errorsFile = join(directory, "email_senders.errors")
      yield* writeFile(
        errorsFile,
        zulipLine([{ subject: "Hi", text: "t", to_emails: ["a@zulip.example"] }]) + zulipLine([{ no: "event" }])
      )
      const env = { QUEUE_NAME: queue }
      const skipped: readonly [string, RegExp] = ["WARN", /^line 2: skipped/]
      const dryRun = yield* stdoutIsOutputOnly(["replay", errorsFile, "--dry-run"], env, skipped)
      assert.match(dryRun.stdout, new RegExp(`would replay 1 event\\(s\\) from ${errorsFile} to ${queue} `))
      assert.strictEqual(yield* admin.messageCount(queue), 0)

      // a real replay marks what it sent, so it runs once, and its stdout is compared with the exact report
      const replayed = yield* runCli(["replay", errorsFile], env)
      assert.strictEqual(
        replayed.stdout,
        `replayed 1 event(s) from ${errorsFile} to ${queue} (2 line(s) read; already replayed: 0; filtered out: 0; ` +
          `invalid, skipped: 1)\nreplayed events are marked in ${errorsFile}.replayed\n`
      )
      assert.isTrue(logLines(replayed.stderr).some(([level, message]) => level === skipped[0] && skipped[1].test(message)))
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))

  it.live("publish: nothing on stdout, the warning about the queue's arguments on stderr", () =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      // a queue declared with arguments Zulip's declaration does not have: the publisher warns and uses it
      const queue = yield* admin.declareQueue({ "x-max-length": 100 })
      const event = JSON.stringify({ subject: "Hi", text: "t", to_emails: ["a@zulip.example"] })
      const published = yield* stdoutIsOutputOnly(
        ["publish"],
        { QUEUE_NAME: queue },
        ["WARN", /exists with other arguments; using it as it is$/],
        { stdin: event }
      )
      assert.strictEqual(published.exitCode, 0, published.output)
      assert.strictEqual(published.stdout, "")
    }).pipe(Effect.scoped))
})

/** The `message_id` of the next message on `queue`. */
const nextMessageId = (admin: Effect.Success<typeof makeAdmin>, queue: string) =>
  Effect.map(admin.get(queue), (message) => {
    assert.isNotFalse(message)
    return (JSON.parse((message as { content: Buffer }).content.toString()) as { message_id?: unknown }).message_id
  })

const succeeded = (result: CliResult) => assert.strictEqual(result.exitCode, 0, result.output)

describe("Message-IDs given by publish and replay", () => {
  it.live("are <32 hex digits@EXTERNAL_HOST without its port>, as the worker makes them, and differ per event", () =>
    Effect.gen(function*() {
      const { admin, directory, queue } = yield* queueAndDirectory
      const env = { QUEUE_NAME: queue, EXTERNAL_HOST: "chat.zulip.example:9991" }
      const event = { subject: "Hi", text: "t", to_emails: ["a@zulip.example"] }
      succeeded(yield* runCli(["publish"], env, { stdin: JSON.stringify(event) }))
      succeeded(yield* runCli(["publish"], env, { stdin: JSON.stringify(event) }))
      const errorsFile = join(directory, "email_senders.errors")
      yield* writeFile(errorsFile, zulipLine([event]))
      succeeded(yield* runCli(["replay", errorsFile], env))
      const ids = [yield* nextMessageId(admin, queue), yield* nextMessageId(admin, queue), yield* nextMessageId(admin, queue)]
      for (const id of ids) assert.match(String(id), /^<[0-9a-f]{32}@chat\.zulip\.example>$/)
      assert.strictEqual(new Set(ids).size, 3)
      // without EXTERNAL_HOST, the worker's default host
      succeeded(yield* runCli(["publish"], { QUEUE_NAME: queue }, { stdin: JSON.stringify(event) }))
      assert.match(String(yield* nextMessageId(admin, queue)), /^<[0-9a-f]{32}@localhost>$/)
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))
})

/** A port free right now on loopback, for a process's operations endpoint. */
const freePort = Effect.promise(() =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
)

/** A GET to `127.0.0.1:port` addressed to `host`; gives the status. */
const statusFor = (port: number, path: string, host: string) =>
  Effect.callback<number>((resume) => {
    const outgoing = request({ hostname: "127.0.0.1", port, path, headers: { host } }, (response) => {
      response.resume().on("end", () => resume(Effect.succeed(response.statusCode ?? 0)))
    })
    outgoing.on("error", (error) => resume(Effect.die(error)))
    outgoing.end()
  })

describe("a worker process", () => {
  it.live("logs to stdout; answers its endpoint only for its own names; records bad header values, sends the rest", () =>
    Effect.gen(function*() {
      const { admin, directory, queue } = yield* queueAndDirectory
      const smtp = yield* smtpServer()
      const port = yield* freePort
      const worker = yield* startCli(["worker"], {
        QUEUE_NAME: queue,
        EMAIL_HOST: smtp.host,
        EMAIL_PORT: String(smtp.port),
        QUEUE_STATS_DIR: join(directory, "queue_stats"),
        QUEUE_ERROR_DIR: join(directory, "queue_error"),
        HTTP_PORT: String(port),
        HTTP_ALLOWED_HOSTS: "ops.internal, metrics.internal"
      })
      yield* worker.waitForOutput(`consumer of ${queue} open`)
      assert.isTrue(logLines(worker.stdout()).some(([, message]) => message === "email-senders starting"))

      for (const path of ["/metrics", "/readyz", "/healthz", "/emails"]) {
        assert.strictEqual(yield* statusFor(port, path, "evil.example"), 421, path)
        assert.strictEqual(yield* statusFor(port, path, `evil.example:${port}`), 421, path)
      }
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, "ops.internal", `metrics.internal:${port}`]) {
        assert.strictEqual(yield* statusFor(port, "/metrics", host), 200, host)
      }

      const bad = [
        ["message_id", { message_id: "<a b@x.example>" }],
        ["message_id", { message_id: `<${"a".repeat(100_000)}@x.example>` }],
        ["date", { date: "Bcc: 2020" }],
        ["context", { context: { unsubscribe_link: "https://x.example/u>,<mailto:a@evil.example" } }],
        ["to_emails", { to_emails: ["a@[127.0.0.1]"] }],
        ["to_emails", { to_emails: ["a@-x.example"] }]
      ] as const
      for (const [, fields] of bad) {
        yield* admin.publish(queue, JSON.stringify({ subject: "Bad", text: "t", to_emails: ["v@zulip.example"], ...fields }))
      }
      yield* admin.publish(queue, JSON.stringify({ subject: "Good", text: "t", to_emails: ["v@zulip.example"] }))

      const errorsFile = join(directory, "queue_error", `${queue}.errors`)
      const fs = yield* FileSystem.FileSystem
      const records = () =>
        fs.readFileString(errorsFile).pipe(
          Effect.map((text) => text.split("\n").filter((line) => line !== "")),
          Effect.orElseSucceed((): Array<string> => [])
        )
      yield* waitUntil(
        () => Effect.map(records(), (lines) => lines.length === bad.length && smtp.messages.length === 1),
        () => `${bad.length} records and 1 email; worker said:\n${worker.output().slice(-2000)}`
      )
      assert.strictEqual(smtp.messages[0]!.header("Subject"), "Good")
      const reasons = (yield* records()).map((line) => JSON.parse(line.split("\t")[2]!) as { tag: string; message: string })
      assert.deepStrictEqual(reasons.map((reason) => reason.tag), bad.map(() => "InvalidEvent"))
      // events settle concurrently: the records come in any order, each naming its field first
      const fieldsNamed = reasons.map((reason) => /^invalid email event: ([a-z_]+)/.exec(reason.message)?.[1])
      assert.deepStrictEqual(fieldsNamed.sort(), bad.map(([field]) => field).sort())
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))
})
