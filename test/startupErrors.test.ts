/** A worker that cannot start says why in one line naming the setting, and exits non-zero (needs `npm run build`). */
import { execFile } from "node:child_process"
import { describe, expect, it } from "vitest"

const runMain = (env: Record<string, string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ["dist/main.js"], { env: { ...process.env, ...env }, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : (error as { code?: number }).code ?? null, stdout, stderr })
    })
  })

describe("start-up errors", () => {
  it.each([
    [{ SMTP_CONNECTIONS: "many", EMAIL_HOST: "127.0.0.1" }, /^email-senders: ConfigError: SMTP_CONNECTIONS: /],
    [{ BATCH_SIZE: "0" }, /^email-senders: ConfigError: BATCH_SIZE: Expected a value greater than or equal to 1$/],
    [{ MAX_EVENT_DEPTH: "5000" }, /^email-senders: ConfigError: MAX_EVENT_DEPTH: Expected a value between 1 and 1000$/],
    [{ LOG_FORMAT: "xml" }, /^email-senders: ConfigError: LOG_FORMAT: Expected "json" \| "pretty"$/],
    [{ EMAIL_HOST: "127.0.0.1", EMAIL_USE_TLS: "true", EMAIL_USE_SSL: "true" }, /EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive$/],
    [{ REALMS_FILE: "/nonexistent/realms.json" }, /^email-senders: RealmsFileError: .*\/nonexistent\/realms\.json/]
  ])("%j fails at start with one line naming the problem", async (env, expected) => {
    const { code, stderr } = await runMain(env)
    expect(code).toBe(1)
    const lines = stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(expected)
  })
})
