import type { Reporter, TestModule } from "vitest/node"
import { defineConfig } from "vitest/config"

/** Ends the run with a plain `N passed, N failed` line that any CI log reader understands. */
class PlainSummary implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failed++
        else skipped++
      }
      if (module.state() === "failed" && !module.children.size) failed++
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}\n`)
  }
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // installs what a fresh machine lacks (Chromium, Python's Jinja2, msgfmt) before any test runs
    globalSetup: ["test/support/systemPackages.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default", new PlainSummary()]
  }
})
