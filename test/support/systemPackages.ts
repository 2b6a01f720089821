/**
 * vitest's global setup: the Debian packages some tests need, installed when missing, so that `npm ci && npm test`
 * passes on a fresh machine with no manual step: Chromium for the `/emails` and `/failures` pages, Python's Jinja2
 * and `msgfmt` for the template tests that compare with Jinja2, `promtool` (Debian's `prometheus`) for the alert
 * rules. Installing needs root (as on the CI machines); without it the run
 * stops at once, naming the packages.
 */
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"

const succeeds = (command: string, args: ReadonlyArray<string>): boolean => {
  try {
    execFileSync(command, args, { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

const hasJinja = () => ["python3", "/usr/bin/python3"].some((python) => succeeds(python, ["-c", "import jinja2"]))

export default function setup(): void {
  const missing = [
    ...(existsSync("/usr/bin/chromium") ? [] : ["chromium"]),
    ...(hasJinja() ? [] : ["python3-jinja2"]),
    ...(succeeds("msgfmt", ["--version"]) ? [] : ["gettext"]),
    ...(succeeds("promtool", ["--version"]) ? [] : ["prometheus"])
  ]
  if (missing.length === 0) return
  if (process.getuid?.() !== 0) {
    throw new Error(`the tests need Debian's ${missing.join(", ")}; install them first: apt-get install ${missing.join(" ")}`)
  }
  process.stderr.write(`installing ${missing.join(", ")} (apt-get), which the tests need\n`)
  const environment = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env: environment })
  execFileSync("apt-get", ["install", "-y", "-qq", ...missing], { stdio: "inherit", env: environment })
}
