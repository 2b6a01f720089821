/**
 * `npm run test:cluster`'s global setup: the three-node RabbitMQ cluster of `support/cluster.ts`, started before the
 * scenarios and stopped by node name after them, whether they passed or not.
 */
import { rmSync } from "node:fs"
import { clusterBase, startCluster, stopCluster } from "./support/cluster.ts"

export default async function setup(): Promise<() => void> {
  const started = Date.now()
  try {
    await startCluster()
  } catch (error) {
    stopCluster()
    throw error
  }
  process.stdout.write(`test cluster of 3 RabbitMQ nodes started in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  return () => {
    stopCluster()
    rmSync(clusterBase, { recursive: true, force: true })
  }
}
