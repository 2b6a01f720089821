import { defineConfig } from "vitest/config"
import { FaultSummary } from "./test/faults/support/summary.ts"

/**
 * `npm run test:faults`: the fault-injection scenarios against the built worker (`dist/`), one file at a time, so
 * their timings do not depend on each other on a small machine.
 */
export default defineConfig({
  test: {
    include: ["test/faults/**/*.fault.ts"],
    fileParallelism: false,
    testTimeout: 240_000,
    reporters: ["default", new FaultSummary()]
  }
})
