/** A worker that cannot start says why in one line naming the setting, and exits non-zero (needs `npm run build`). */
import { execFile } from "node:child_process"
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, describe, expect, it } from "vitest"

const mainScript = resolve("dist/main.js")

const runMain = (env: Record<string, string>, options: { readonly uid?: number; readonly cwd?: string } = {}) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [mainScript],
      { env: { ...process.env, HTTP_PORT: "0", ...env }, timeout: 20_000, ...options, ...(options.uid === undefined ? {} : { gid: options.uid }) },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : (error as { code?: number }).code ?? null, stdout, stderr })
      }
    )
  })

const expectOneLine = (result: { code: number | null; stderr: string }, expected: RegExp) => {
  expect(result.code).toBe(1)
  const lines = result.stderr.trim().split("\n")
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(expected)
}

describe("start-up errors", () => {
  it.each([
    [{ SMTP_CONNECTIONS: "many", EMAIL_HOST: "127.0.0.1" }, /^email-senders: ConfigError: SMTP_CONNECTIONS: /],
    [{ BATCH_SIZE: "0" }, /^email-senders: ConfigError: BATCH_SIZE: Expected a value greater than or equal to 1$/],
    [{ MAX_EVENT_DEPTH: "5000" }, /^email-senders: ConfigError: MAX_EVENT_DEPTH: Expected a value between 1 and 1000$/],
    [{ LOG_FORMAT: "xml" }, /^email-senders: ConfigError: LOG_FORMAT: Expected "json" \| "pretty"$/],
    [{ EMAIL_HOST: "127.0.0.1", EMAIL_USE_TLS: "true", EMAIL_USE_SSL: "true" }, /EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive$/],
    [{ REALMS_FILE: "/nonexistent/realms.json" }, /^email-senders: RealmsFileError: .*\/nonexistent\/realms\.json/]
  ])("%j fails at start with one line naming the problem", async (env, expected) => {
    expectOneLine(await runMain(env), expected)
  })
})

describe("the templates and catalogs directories", () => {
  const dir = mkdtempSync(join(tmpdir(), "startup-templates-"))
  // traversable by the other user below, so only `unreadable` itself is closed to it
  chmodSync(dir, 0o755)
  // a directory its owner cannot list, for a worker that runs as another user than the one who made it
  const unreadable = join(dir, "unreadable")
  mkdirSync(join(unreadable, "zerver"), { recursive: true })
  writeFileSync(join(unreadable, "zerver", "a.subject.txt"), "A")
  chmodSync(unreadable, 0o000)
  mkdirSync(join(dir, "empty"))
  writeFileSync(join(dir, "empty", "readme.txt"), "no templates here")
  writeFileSync(join(dir, "file.txt"), "not a directory")
  afterAll(() => {
    chmodSync(unreadable, 0o700)
    rmSync(dir, { recursive: true, force: true })
  })

  it.each([
    [{ TEMPLATES_DIR: `${dir}/missing` }, `TEMPLATES_DIR ${dir}/missing cannot be read (ENOENT)`],
    [{ TEMPLATES_DIR: `${dir}/file.txt` }, `TEMPLATES_DIR ${dir}/file.txt cannot be read (ENOTDIR)`],
    [{ TEMPLATES_DIR: `${dir}/empty` }, `TEMPLATES_DIR ${dir}/empty holds no email templates`],
    [{ LOCALE_DIR: `${dir}/missing` }, `LOCALE_DIR ${dir}/missing cannot be read (ENOENT)`],
    [{ LOCALE_DIR: `${dir}/file.txt` }, `LOCALE_DIR ${dir}/file.txt cannot be read (ENOTDIR)`]
  ])("%j stops the worker at start naming the setting and the path", async (env, expected) => {
    expectOneLine(await runMain(env), new RegExp(`^email-senders: Error: ${expected.replace(/[().]/g, "\\$&")}`))
  })

  it("an unreadable TEMPLATES_DIR or LOCALE_DIR stops the worker at start naming it", async () => {
    // root reads any directory: the worker then runs as nobody, as a service account would
    const asOtherUser = process.getuid?.() === 0 ? { uid: 65534, cwd: tmpdir() } : {}
    expectOneLine(
      await runMain({ TEMPLATES_DIR: unreadable }, asOtherUser),
      new RegExp(`^email-senders: Error: TEMPLATES_DIR ${unreadable} cannot be read \\(EACCES\\)$`)
    )
    expectOneLine(
      await runMain({ LOCALE_DIR: unreadable }, asOtherUser),
      new RegExp(`^email-senders: Error: LOCALE_DIR ${unreadable} cannot be read \\(EACCES\\)$`)
    )
  })
})
