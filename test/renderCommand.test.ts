/**
 * `render` (Zulip's dry run) and `templates check`, run in process: the command itself with its flags, on the live
 * template builder and a realms file given through the environment, as `node dist/main.js` would run them.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger, Option, Stdio, Stream } from "effect"
import { Command } from "effect/cli"
import { TestConsole } from "effect/testing"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { InMemoryRealms } from "../src/realms/InMemoryRealmRepository.ts"
import * as ZulipEmailBuilder from "../src/email/ZulipEmailBuilder.ts"
import { renderCommand, renderEvent } from "../src/cli/render.ts"
import { checkTemplatesAndReport, templatesCommand } from "../src/cli/templates.ts"
import { hamlet, othello, realm } from "./support/inMemory.ts"
import { templateTree } from "./support/templateTree.ts"

const passwordReset = {
  template_prefix: "zerver/emails/password_reset",
  to_emails: ["you@example.com"],
  context: { reset_url: "https://zulip.example/reset/abc" },
  date: "Sun, 29 Nov 2026 12:00:00 -0000"
}

/** A scratch directory holding `files`, removed afterwards; gives the path of each file. */
const scratchFiles = (files: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "render-command-"))
      for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content)
      return (name: string) => path.join(dir, name)
    }),
    (fileIn) => Effect.promise(() => rm(path.dirname(fileIn("x")), { recursive: true, force: true }))
  )

const realmsFile = JSON.stringify({
  realms: [{ id: realm.id, string_id: realm.stringId, name: realm.name }],
  users: [hamlet, othello].map((user) => ({
    id: user.id,
    realm_id: user.realmId,
    full_name: user.fullName,
    delivery_email: user.deliveryEmail
  }))
})

/** Run `node dist/main.js <args>` in process with `env` as the environment; gives what it printed on stdout. */
const runCli = <Name extends string, Input, E, R>(
  command: Command.Command<Name, Input, {}, E, R>,
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  stdin = ""
) =>
  Command.runWith(command, { version: "test" })(args).pipe(
    Effect.andThen(TestConsole.logLines),
    Effect.provide(Layer.mergeAll(
      ConfigProvider.layer(ConfigProvider.fromUnknown(env)),
      Stdio.layerTest({ stdin: Stream.make(new TextEncoder().encode(stdin)) }),
      // as main.ts has every command but the worker log
      Layer.succeed(Logger.LogToStderr, true)
    )),
    Effect.provide(NodeServices.layer)
  )

describe("render", () => {
  it.effect("prints the headers, the envelope and both bodies of the email the live builder makes", () =>
    Effect.gen(function*() {
      const files = yield* scratchFiles({ "event.json": JSON.stringify({ ...passwordReset, realm_id: realm.id }), "realms.json": realmsFile })
      const [output] = yield* runCli(renderCommand, ["--file", files("event.json")], { REALMS_FILE: files("realms.json") })
      const text = String(output)
      const [headers, rest] = text.split("\n\nEnvelope: ")
      assert.deepStrictEqual(headers!.split("\n").filter((line) => !line.startsWith("Message-ID: ")), [
        "From: Zulip <noreply@localhost>",
        "Reply-To: noreply@localhost",
        "To: you@example.com",
        "Subject: Reset your Zulip password",
        "Date: Sun, 29 Nov 2026 12:00:00 -0000",
        "List-Id: Zulip Dev <zulip.localhost>",
        "X-Auto-Response-Suppress: All"
      ])
      assert.match(headers!, /^Message-ID: <[0-9a-f]{32}@localhost>$/m)
      assert.isTrue(rest!.startsWith("MAIL FROM:<noreply@localhost> RCPT TO:<you@example.com>\n"))
      const [envelopeAndPlain, html] = rest!.split("\n----- text/html -----\n")
      const [, plain] = envelopeAndPlain!.split("\n----- text/plain -----\n")
      assert.include(plain!, "https://zulip.example/reset/abc")
      assert.notInclude(plain!, "<")
      assert.match(html!, /^<!DOCTYPE html>/i)
      assert.include(html!, "href=\"https://zulip.example/reset/abc\"")
    }))

  it.effect("reads the event from standard input and renders it for other users and another realm on request", () =>
    Effect.gen(function*() {
      const files = yield* scratchFiles({ "realms.json": realmsFile })
      const [output] = yield* runCli(
        renderCommand,
        ["--user-id", String(hamlet.id), "--user-id", String(othello.id), "--realm-id", String(realm.id)],
        { REALMS_FILE: files("realms.json") },
        JSON.stringify(passwordReset)
      )
      const text = String(output)
      assert.include(text, "\nTo: King Hamlet <hamlet@zulip.example>, Othello <othello@zulip.example>\n")
      assert.include(text, "\nList-Id: Zulip Dev <zulip.localhost>\n")
      assert.include(text, "RCPT TO:<hamlet@zulip.example>,<othello@zulip.example>")
    }))

  it.effect("fails as the worker would on an invalid event, naming the field", () =>
    Effect.gen(function*() {
      const error = yield* renderEvent({ ...passwordReset, from_name: 42 }, { userIds: [], realmId: Option.none() }).pipe(
        Effect.flip,
        Effect.provide(Layer.mergeAll(ZulipEmailBuilder.layer(), InMemoryRealms.layer({ realms: [], users: [] })))
      )
      assert.strictEqual(error._tag, "InvalidEvent")
      assert.include(error.message, "from_name")
    }))
})

describe("templates check", () => {
  it.effect("prints each problem as file:line: message and fails", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "zerver/emails/fine.subject.txt": "Fine",
        "zerver/emails/fine.txt": "Fine {{ name }}",
        "zerver/emails/filter.subject.txt": "Filter",
        "zerver/emails/filter.txt": "Hello\n{{ name | no_such_filter }}\n"
      })
      const error = yield* checkTemplatesAndReport.pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ TEMPLATES_DIR: dir }))),
        Effect.flip
      )
      assert.deepStrictEqual(error._tag === "TemplatesInvalid" ? error.problems : error, 1)
      const [line, ...more] = (yield* TestConsole.logLines).map(String)
      assert.deepStrictEqual(more, [])
      assert.isTrue(line!.startsWith(`${path.join(dir, "zerver/emails/filter.txt")}:2: `), line)
      assert.include(line!, "no_such_filter")
    }))

  it.effect("passes on the shipped templates", () =>
    Effect.gen(function*() {
      const output = yield* runCli(templatesCommand, ["check"], {})
      assert.deepStrictEqual(output, ["templates: no problem found"])
    }))
})
