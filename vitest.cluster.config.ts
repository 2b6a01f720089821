import { defineConfig } from "vitest/config"
import { FaultSummary } from "./test/faults/support/summary.ts"

/**
 * `npm run test:cluster`: the failover scenarios against a three-node RabbitMQ cluster of their own (started and
 * stopped by `test/cluster/globalSetup.ts`, beside the machine's broker), with the built worker (`dist/`).
 */
export default defineConfig({
  test: {
    include: ["test/cluster/**/*.cluster.ts"],
    globalSetup: ["test/cluster/globalSetup.ts"],
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 300_000,
    reporters: ["default", new FaultSummary("Cluster failover summary", true)]
  }
})
