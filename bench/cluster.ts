/**
 * `npm run bench cluster`: emails/s of 1, 2 and 3 worker processes (`dist/main.js`) against a quorum queue of the
 * three-node test cluster (`test/cluster/support/cluster.ts`, started here and stopped at the end), and against a
 * classic queue on one of its nodes, every worker connected to that node. Each run: `BENCH_CLUSTER_N` events (default
 * 20,000) published with confirms into a fresh queue (the publish rate is measured too: a quorum queue writes each
 * message to a majority of nodes before it confirms), then the workers start and the run ends when an in-process
 * SMTP sink has accepted every one. CPU seconds of each RabbitMQ node and of the workers are read from `/proc`.
 * Writes its section of bench/RESULTS.md (between the `cluster` markers) and prints it.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, loadavg, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { connect } from "amqplib"
import { Effect, Exit, Scope } from "effect"
import { makeSink } from "../test/faults/support/sink.ts"
import { clusterNodes, ctl, startCluster, stopCluster } from "../test/cluster/support/cluster.ts"
import { classicQueue, declareQueue, type QueueDeclaration } from "../src/queue/RabbitMqConnection.ts"

const benchDir = dirname(fileURLToPath(import.meta.url))
const projectDir = dirname(benchDir)
const count = Number(process.env["BENCH_CLUSTER_N"] ?? "20000")
const clockTicks = 100

const log = (line: string): void => {
  process.stderr.write(`[bench cluster ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

const cpuSecondsOf = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / clockTicks
}

interface Setup {
  readonly name: string
  readonly declaration: QueueDeclaration
  /** each worker's AMQP_URL, by its index */
  readonly amqpUrlOf: (worker: number) => string
}

const rotated = (first: number) =>
  clusterNodes.map((_, i) => clusterNodes[(first + i) % clusterNodes.length]!.url).join(",")

const setups: ReadonlyArray<Setup> = [
  { name: "quorum, 3 nodes", declaration: { type: "quorum", deliveryLimit: 20 }, amqpUrlOf: rotated },
  { name: "classic, 1 node", declaration: classicQueue, amqpUrlOf: () => clusterNodes[0]!.url }
]

interface Row {
  readonly setup: string
  readonly workers: number
  readonly publishPerSecond: number
  readonly emailsPerSecond: number
  /** CPU seconds per 1,000 emails, each node's, while the workers delivered */
  readonly nodeCpu: ReadonlyArray<number>
  readonly workerCpu: number
}

const eventFor = (run: string, index: number): string =>
  JSON.stringify({
    subject: `Cluster bench ${index}`,
    text: `Event ${index} of run ${run}.`,
    to_emails: [`rcpt${index}@bench.example`],
    message_id: `cluster-${run}-${index}@bench.example`
  })

const runOnce = async (setup: Setup, workers: number, nodePids: ReadonlyArray<number>, run: string): Promise<Row> => {
  const scope = Effect.runSync(Scope.make())
  const sink = await Effect.runPromise(Scope.provide(makeSink(), scope))
  const queue = `bench_cluster_${run}`
  const workDir = mkdtempSync(join(tmpdir(), "email-senders-bench-cluster-"))
  const connection = await connect(clusterNodes[0]!.url)
  const processes: Array<ChildProcess> = []
  try {
    await Effect.runPromise(declareQueue(connection, queue, setup.declaration))
    const channel = await connection.createConfirmChannel()
    const publishStart = Date.now()
    for (let start = 0; start < count; start += 500) {
      for (let index = start; index < Math.min(count, start + 500); index++) {
        channel.sendToQueue(queue, Buffer.from(eventFor(run, index)), { persistent: true })
      }
      await channel.waitForConfirms()
    }
    const publishPerSecond = count / ((Date.now() - publishStart) / 1000)
    await channel.close()
    const nodeCpuBefore = nodePids.map(cpuSecondsOf)
    for (let worker = 0; worker < workers; worker++) {
      processes.push(spawn(process.execPath, [join(projectDir, "dist/main.js")], {
        cwd: projectDir,
        env: {
          PATH: process.env["PATH"] ?? "",
          HOME: process.env["HOME"] ?? "/tmp",
          AMQP_URL: setup.amqpUrlOf(worker),
          QUEUE_NAME: queue,
          QUEUE_TYPE: setup.declaration.type,
          EMAIL_HOST: "127.0.0.1",
          EMAIL_PORT: String(sink.port),
          QUEUE_STATS_DIR: join(workDir, "stats"),
          QUEUE_ERROR_DIR: join(workDir, "errors"),
          HTTP_PORT: "0",
          LOG_LEVEL: "Warn"
        },
        stdio: "ignore"
      }))
    }
    const deadline = Date.now() + 600_000
    while (sink.deliveries.size < count) {
      if (Date.now() > deadline) throw new Error(`${setup.name}, ${workers} worker(s): ${sink.deliveries.size}/${count} delivered in 10 minutes`)
      await sleep(50)
    }
    const nodeCpu = nodePids.map((pid, i) => ((cpuSecondsOf(pid) - nodeCpuBefore[i]!) / count) * 1000)
    const workerCpu = processes.reduce((sum, child) => sum + cpuSecondsOf(child.pid!), 0) / count * 1000
    const accepted = [...sink.acceptedAt].sort((a, b) => a - b)
    const emailsPerSecond = count / ((accepted[accepted.length - 1]! - accepted[0]!) / 1000)
    const row = { setup: setup.name, workers, publishPerSecond, emailsPerSecond, nodeCpu, workerCpu }
    log(`${setup.name}, ${workers} worker(s): ${emailsPerSecond.toFixed(0)} emails/s (publish ${publishPerSecond.toFixed(0)}/s), node CPU s/1000 ${nodeCpu.map((c) => c.toFixed(2)).join(" / ")}, workers ${workerCpu.toFixed(2)}`)
    return row
  } finally {
    for (const child of processes) child.kill("SIGTERM")
    await Promise.all(processes.map((child) => new Promise((resolve) => child.exitCode === null ? child.once("exit", resolve) : resolve(null))))
    await connection.createChannel().then((channel) => channel.deleteQueue(queue)).catch(() => undefined)
    await connection.createChannel().then((channel) => channel.deleteQueue(`${queue}.dead`)).catch(() => undefined)
    await connection.close().catch(() => undefined)
    await Effect.runPromise(Scope.close(scope, Exit.void))
    rmSync(workDir, { recursive: true, force: true })
  }
}

const markers = ["<!-- cluster -->", "<!-- /cluster -->"] as const

const render = (rows: ReadonlyArray<Row>, minutes: number): string => [
  markers[0],
  "## Cluster: 1, 2, 3 workers against a 3-node quorum queue and one classic node",
  "",
  `\`npm run bench cluster\`, ${new Date().toISOString().slice(0, 10)}: ${count} pre-rendered events per run, published with confirms, then ` +
  `delivered by \`dist/main.js\` processes (default settings, LOG_LEVEL=Warn) to an in-process SMTP sink answering at once; ` +
  `the three RabbitMQ nodes run on this machine (${cpus().length} cores, ${cpus()[0]?.model ?? "unknown"}), ` +
  `${minutes.toFixed(1)} minutes, load average ${loadavg()[0]!.toFixed(1)} at the end. Node CPU is each node's Erlang VM ` +
  "while the workers delivered (node 1 holds the classic queue, and the quorum queue's leader).",
  "",
  "| queue | workers | publish (confirmed)/s | emails/s | CPU s per 1,000 emails: node 1 / 2 / 3 | workers |",
  "| --- | ---: | ---: | ---: | --- | ---: |",
  ...rows.map((row) =>
    `| ${row.setup} | ${row.workers} | ${row.publishPerSecond.toFixed(0)} | ${row.emailsPerSecond.toFixed(0)} | ` +
    `${row.nodeCpu.map((cpu) => cpu.toFixed(2)).join(" / ")} | ${row.workerCpu.toFixed(2)} |`
  ),
  "",
  ...analysis(rows),
  "",
  markers[1]
].join("\n")

const mean = (values: ReadonlyArray<number>): number => values.reduce((sum, value) => sum + value, 0) / values.length

/** What the table says, worked out from its numbers: the paragraphs under it. */
const analysis = (rows: ReadonlyArray<Row>): ReadonlyArray<string> => {
  const of = (setup: Setup) => rows.filter((row) => row.setup === setup.name)
  const [quorum, classic] = [of(setups[0]!), of(setups[1]!)]
  if (quorum.length === 0 || classic.length === 0) return []
  const ratios = quorum.map((row, i) => `${row.workers}: ${(row.emailsPerSecond / classic[i]!.emailsPerSecond).toFixed(2)}×`)
  const best = (list: ReadonlyArray<Row>) => list.reduce((a, b) => (b.emailsPerSecond > a.emailsPerSecond ? b : a))
  const leader = mean(quorum.map((row) => row.nodeCpu[0]!))
  const follower = mean(quorum.flatMap((row) => row.nodeCpu.slice(1)))
  const classicNode = mean(classic.map((row) => row.nodeCpu[0]!))
  const workerPerEmail = mean([...quorum, ...classic].map((row) => row.workerCpu))
  const brokerQuorum = leader + 2 * follower
  const atRate = 1000
  return [
    `**Quorum against classic**, emails/s by number of workers: ${ratios.join(", ")}. The best quorum run made ` +
    `${best(quorum).emailsPerSecond.toFixed(0)} emails/s (${best(quorum).workers} workers), the best classic run ` +
    `${best(classic).emailsPerSecond.toFixed(0)} (${best(classic).workers}).`,
    "",
    `**What limits it here: the two cores.** Per 1,000 emails the quorum queue costs its leader's node ` +
    `${leader.toFixed(2)} CPU s and each follower ${follower.toFixed(2)} (the cluster ${brokerQuorum.toFixed(2)} in all), ` +
    `against ${classicNode.toFixed(2)} for the classic queue's node; the worker processes ${workerPerEmail.toFixed(2)} CPU s ` +
    "together, with the in-process SMTP sink and the publisher besides. Three Erlang VMs, the workers and the sink " +
    "share two cores (and this machine's other jobs: see the load average), so a second worker still adds " +
    "throughput while one core is idle at times, and a third adds none: the CPU is full. The broker's share is what " +
    "a quorum queue adds: its leader writes every message, delivery and ack to its Raft log and replicates each to " +
    "the two followers, which write it too, before it confirms a publish or settles an ack.",
    "",
    `**A real deployment** (a node per machine, workers elsewhere): at ${atRate} emails/s a quorum queue would keep ` +
    `about ${(leader * atRate / 1000).toFixed(2)} cores busy on the leader's node and ${(follower * atRate / 1000).toFixed(2)} ` +
    `on each follower (a classic queue: ${(classicNode * atRate / 1000).toFixed(2)} on its one node), and the ` +
    `workers ${(workerPerEmail * atRate / 1000).toFixed(2)} cores in all, spread over their machines. So the broker ` +
    "is not what bounds a cluster of workers: as in the single-broker scenarios above, SMTP round trips are " +
    "(`delay20`: each worker's connections × 1/reply time). The quorum queue's write cost shows as latency instead: a " +
    "publish is confirmed once a majority has written it to disk (an fsync and a network round trip, a few ms on a " +
    "LAN, which the confirm window of 500 hides from the publish rate here) and each ack is replicated the same way; " +
    "its disk writes are the Raft log's, so the leader's disk is the resource to size (every message is written by " +
    "three nodes instead of one)."
  ]
}

/** The cluster section replaced (or added at the end) in `file`. */
export const withClusterSection = (markdown: string, section: string): string => {
  const start = markdown.indexOf(markers[0])
  const end = markdown.indexOf(markers[1])
  return start >= 0 && end > start
    ? `${markdown.slice(0, start)}${section}${markdown.slice(end + markers[1].length)}`
    : `${markdown.trimEnd()}\n\n${section}\n`
}

/** The cluster section of `markdown`, if it has one. */
export const clusterSectionOf = (markdown: string): string | undefined => {
  const start = markdown.indexOf(markers[0])
  const end = markdown.indexOf(markers[1])
  return start >= 0 && end > start ? markdown.slice(start, end + markers[1].length) : undefined
}

export const runClusterBench = async (): Promise<void> => {
  const startedAt = Date.now()
  log("starting the 3-node test cluster")
  await startCluster()
  const rows: Array<Row> = []
  try {
    const nodePids = await Promise.all(clusterNodes.map(async (node) => Number((await ctl(node, "eval", "list_to_integer(os:getpid()).")).trim())))
    let run = 0
    for (const setup of setups) {
      for (const workers of [1, 2, 3]) rows.push(await runOnce(setup, workers, nodePids, `p${process.pid}_${++run}`))
    }
  } finally {
    stopCluster()
  }
  const section = render(rows, (Date.now() - startedAt) / 60_000)
  const results = join(benchDir, "RESULTS.md")
  writeFileSync(results, withClusterSection(readFileSync(results, "utf8"), section))
  process.stdout.write(`${section}\n`)
  log(`written to ${results}`)
}
