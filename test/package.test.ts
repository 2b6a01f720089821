/**
 * The package as an operator installs it without a checkout: `npm pack` on a fresh clone builds `dist/` first, and
 * the tarball, installed with production dependencies only, runs `email-senders --help`, `--version` and the worker,
 * which delivers an email.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { execFileSync, spawn } from "node:child_process"
import { readFileSync, symlinkSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { waitUntil } from "./support/processes.ts"
import { makeAdmin } from "./support/rabbitmq.ts"
import { smtpServer } from "./support/smtpServer.ts"

const root = join(fileURLToPath(import.meta.url), "..", "..")
const node = join(root, "node_modules", ".bin", "node")
const npm = (args: ReadonlyArray<string>, cwd: string) =>
  execFileSync("npm", [...args, "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], {
    cwd,
    encoding: "utf8",
    // the package's Node (22) runs npm's scripts, as in the checkout
    env: { ...process.env, PATH: `${join(root, "node_modules", ".bin")}:${process.env["PATH"]}` }
  })

describe("the packed tarball", () => {
  it.live("builds dist/ when packed from a fresh clone, installs without dev dependencies, and delivers", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "email-senders-package-" })
      const clone = join(directory, "clone")
      execFileSync("git", ["clone", "--quiet", "--depth", "1", `file://${root}`, clone])
      // the clone has no dist/; its build uses the checkout's dev dependencies (npm ci would fetch the same)
      symlinkSync(join(root, "node_modules"), join(clone, "node_modules"))
      const tarball = npm(["pack", "--pack-destination", directory], clone).trim().split("\n").at(-1)!
      const contents = execFileSync("tar", ["-tzf", join(directory, tarball)], { encoding: "utf8" })
      for (const file of ["package/dist/main.js", "package/dist/index.js", "package/templates/zerver/emails/password_reset.html", "package/locale/de/LC_MESSAGES/django.po", "package/LICENSE"]) {
        assert.include(contents, file)
      }

      const installed = join(directory, "installed")
      yield* fs.makeDirectory(installed)
      npm(["init", "-y"], installed)
      npm(["install", "--omit=dev", join(directory, tarball)], installed)
      const bin = join(installed, "node_modules", ".bin", "email-senders")
      const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version as string
      assert.include(execFileSync(node, [bin, "--version"], { encoding: "utf8" }), version)
      assert.include(execFileSync(node, [bin, "--help"], { encoding: "utf8" }), "publish")
      // nothing a developer needs came along
      assert.throws(() => execFileSync(node, ["-e", "require.resolve('esbuild')"], { cwd: installed, stdio: "ignore" }))

      const smtp = yield* smtpServer()
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      const env = {
        PATH: process.env["PATH"] ?? "",
        HOME: process.env["HOME"] ?? "/tmp",
        QUEUE_NAME: queue,
        EMAIL_HOST: smtp.host,
        EMAIL_PORT: String(smtp.port),
        HTTP_PORT: "0",
        QUEUE_STATS_DIR: join(directory, "stats"),
        QUEUE_ERROR_DIR: join(directory, "errors")
      }
      const worker = yield* Effect.acquireRelease(
        Effect.sync(() => spawn(node, [bin], { cwd: installed, env, stdio: ["ignore", "pipe", "pipe"] })),
        (child) => Effect.sync(() => child.kill("SIGKILL"))
      )
      let output = ""
      worker.stdout.on("data", (chunk: Buffer) => (output += chunk))
      worker.stderr.on("data", (chunk: Buffer) => (output += chunk))
      const event = JSON.stringify({ template_prefix: "zerver/emails/password_reset", to_emails: ["you@example.com"], language: "de", context: { reset_url: "https://example.com/reset" } })
      execFileSync(node, [bin, "publish"], { cwd: installed, env, input: event })
      yield* waitUntil(() => smtp.messages.length === 1, () => `the email; worker output:\n${output.slice(-3000)}`, "60 seconds")
      // the shipped templates and their German catalog came with the package
      assert.include(smtp.messages[0]!.raw, "Passwort")
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)), { timeout: 300_000 })
})
