/**
 * A RabbitMQ cluster of three nodes of its own on loopback, for `npm run test:cluster`: started beside the machine's
 * broker (5672), never touching it. Each node gets its own name (`<name>@localhost`), AMQP port, distribution port,
 * data and log directories and an empty plugins file, all owned by the `rabbitmq` user the server scripts switch
 * to; nodes 2 and 3 join node 1. Nodes are addressed by name only (`rabbitmqctl -n`), to stop one, kill it, restart
 * it, or make it leave the cluster.
 *
 * `CLUSTER_AMQP_PORT` (default 5781) is the first node's AMQP port, the next two follow; distribution ports are
 * 20,000 above them.
 */
import { execFile, execFileSync } from "node:child_process"
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"

const run = promisify(execFile)

export interface ClusterNode {
  /** `es_cluster_<n>@localhost` */
  readonly name: string
  readonly amqpPort: number
  readonly url: string
}

const firstPort = Number(process.env["CLUSTER_AMQP_PORT"] ?? "5781")
/** where the nodes keep their data, logs and configuration */
export const clusterBase = join(tmpdir(), "email-senders-cluster")

export const clusterNodes: ReadonlyArray<ClusterNode> = [1, 2, 3].map((n) => ({
  name: `es_cluster_${n}@localhost`,
  amqpPort: firstPort + n - 1,
  url: `amqp://guest:guest@127.0.0.1:${firstPort + n - 1}`
}))

const directoryOf = (node: ClusterNode) => join(clusterBase, node.name.split("@")[0]!)

const environmentOf = (node: ClusterNode): NodeJS.ProcessEnv => ({
  ...process.env,
  RABBITMQ_NODENAME: node.name,
  RABBITMQ_CONFIG_FILE: join(directoryOf(node), "rabbitmq.conf"),
  RABBITMQ_DIST_PORT: String(node.amqpPort + 20_000),
  RABBITMQ_MNESIA_BASE: join(directoryOf(node), "mnesia"),
  RABBITMQ_LOG_BASE: join(directoryOf(node), "log"),
  RABBITMQ_ENABLED_PLUGINS_FILE: join(clusterBase, "enabled_plugins")
})

/** `rabbitmqctl -q -n <node> ...args`, its stdout. */
export const ctl = async (node: ClusterNode, ...args: Array<string>): Promise<string> =>
  (await run("rabbitmqctl", ["-q", "-n", node.name, ...args], { timeout: 120_000 })).stdout

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** Wait until the node has started (it registers with epmd a moment after `-detached` returns). */
const awaitStartup = async (node: ClusterNode): Promise<void> => {
  const deadline = Date.now() + 120_000
  for (;;) {
    try {
      await ctl(node, "await_startup", "--timeout", "120")
      return
    } catch (error) {
      if (Date.now() > deadline) throw error
      await sleep(500)
    }
  }
}

/** Start the node's Erlang VM and RabbitMQ (again, after a stop or a kill: its data directory is kept). */
export const startNode = async (node: ClusterNode): Promise<void> => {
  await run("rabbitmq-server", ["-detached"], { env: environmentOf(node) })
  await awaitStartup(node)
}

/** Stop RabbitMQ on the node, leaving its Erlang VM up (`stop_app`): its connections close, its queues go away. */
export const stopApp = (node: ClusterNode) => ctl(node, "stop_app")

export const startApp = (node: ClusterNode) => ctl(node, "start_app")

/** `kill -9` of the node's Erlang process; gives its pid. */
export const killNode = async (node: ClusterNode): Promise<number> => {
  const pid = Number((await ctl(node, "eval", "list_to_integer(os:getpid()).")).trim())
  process.kill(pid, "SIGKILL")
  // gone once the signal is delivered; a restart must not find it still holding its ports
  for (let waited = 0; waited < 30_000; waited += 200) {
    try {
      process.kill(pid, 0)
    } catch {
      return pid
    }
    await sleep(200)
  }
  throw new Error(`${node.name} (pid ${pid}) still runs after kill -9`)
}

/** Make the node leave the cluster: `stop_app`, then `reset` (the other nodes forget it). */
export const leaveCluster = async (node: ClusterNode): Promise<void> => {
  await ctl(node, "stop_app")
  await ctl(node, "reset")
}

/** Join the cluster of `seed` (`stop_app`, `join_cluster`, `start_app`). */
export const joinCluster = async (node: ClusterNode, seed: ClusterNode): Promise<void> => {
  await ctl(node, "stop_app")
  await ctl(node, "join_cluster", seed.name)
  await ctl(node, "start_app")
}

/** Stop every node by name, ignoring those that are not running. */
export const stopCluster = (): void => {
  for (const node of clusterNodes) {
    try {
      execFileSync("rabbitmqctl", ["-q", "-n", node.name, "stop"], { stdio: "ignore", timeout: 60_000 })
    } catch {
      // not running
    }
  }
}

/** Start the three nodes from empty directories and cluster them; a cluster left by an aborted run is stopped first. */
export const startCluster = async (): Promise<void> => {
  stopCluster()
  rmSync(clusterBase, { recursive: true, force: true })
  mkdirSync(clusterBase, { recursive: true })
  writeFileSync(join(clusterBase, "enabled_plugins"), "[].\n")
  for (const node of clusterNodes) {
    const directory = directoryOf(node)
    mkdirSync(join(directory, "mnesia"), { recursive: true })
    mkdirSync(join(directory, "log"), { recursive: true })
    writeFileSync(join(directory, "rabbitmq.conf"), `listeners.tcp.1 = 127.0.0.1:${node.amqpPort}\nloopback_users = none\n`)
  }
  // the server scripts run the nodes as the rabbitmq user
  execFileSync("chown", ["-R", "rabbitmq:rabbitmq", clusterBase])
  await Promise.all(clusterNodes.map((node) => run("rabbitmq-server", ["-detached"], { env: environmentOf(node) })))
  await Promise.all(clusterNodes.map(awaitStartup))
  for (const node of clusterNodes.slice(1)) await joinCluster(node, clusterNodes[0]!)
}

/** The node that holds the queue: a quorum queue's leader, a classic queue's home node. */
export const hostOf = async (queue: string): Promise<ClusterNode> => {
  const lines = await ctlOnAnyNode("list_queues", "--no-table-headers", "name", "leader", "pid")
  const row = lines.split("\n").map((line) => line.split("\t")).find(([name]) => name === queue)
  if (row === undefined) throw new Error(`no queue ${queue} in the cluster`)
  const [, leader = "", pid = ""] = row
  const name = leader !== "" ? leader : /^<([^.]+@[^.]+)\./.exec(pid)?.[1]
  const node = clusterNodes.find((each) => each.name === name)
  if (node === undefined) throw new Error(`queue ${queue} is on ${name ?? "no node"}, not one of the cluster's`)
  return node
}

/** `rabbitmqctl` on the first node that answers (some may be down on purpose). */
export const ctlOnAnyNode = async (...args: Array<string>): Promise<string> => {
  const failures: Array<string> = []
  for (const node of clusterNodes) {
    try {
      return await ctl(node, ...args)
    } catch (error) {
      failures.push(`${node.name}: ${String(error).slice(0, 200)}`)
    }
  }
  throw new Error(`no cluster node answers rabbitmqctl ${args.join(" ")}: ${failures.join("; ")}`)
}

/** Messages handed to consumers and not yet acknowledged, across the cluster. */
export const unacknowledged = async (queue: string): Promise<number> => {
  const lines = await ctlOnAnyNode("list_queues", "--no-table-headers", "name", "messages_unacknowledged")
  const row = lines.split("\n").map((line) => line.split("\t")).find(([name]) => name === queue)
  return Number(row?.[1] ?? "0")
}
