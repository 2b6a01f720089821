/**
 * `npm run bench`: throughput, latency, CPU and memory of email-senders against a raw amqplib + nodemailer
 * consumer and a Zulip-style worker, on the same machine and the same events. Usage: bench/RESULTS.md, "How to re-run".
 *
 * Every run: a fresh queue, a fresh SMTP sink process (`sink.ts`), the worker as its own process; N events are
 * published with publisher confirms (the worker already consuming, and where the scenario has warm-up events, done
 * with those; for the backlog scenario, before it starts) and the run ends when the sink has accepted all N. The
 * queue is deleted afterwards.
 */
import { type ChildProcess, execFileSync, fork, spawn } from "node:child_process"
import { mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { cpus, loadavg, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { type ChannelModel, connect } from "amqplib"
import {
  eventFor,
  indexOfMessageId,
  type SinkMessage,
  type SinkReport,
  type SinkRequest,
  templateEventFor,
  wallClockMillis
} from "./protocol.ts"
import { type Implementation, implementations, otherBuilds } from "./implementations.ts"
import { type RunResult, renderResults, type Scenario, type ScenarioResults } from "./report.ts"
import { clusterSectionOf, runClusterBench, withClusterSection } from "./cluster.ts"

const benchDir = dirname(fileURLToPath(import.meta.url))
const projectDir = dirname(benchDir)
const amqpUrl = process.env["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672"
const runs = Number(process.env["BENCH_RUNS"] ?? "3")
const runTimeoutMillis = Number(process.env["BENCH_RUN_TIMEOUT"] ?? "300") * 1000
const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())

const countFor = (fallback: number): number => Number(process.env["BENCH_N"] ?? fallback)
const everyImplementation = implementations.map((implementation) => implementation.name)
// heap flags matter where the CPU and the heap are busy, not where SMTP replies set the pace
/** variants compared only with the default worker, in their own scenario */
const variants = new Set(["email-senders-templates", "email-senders-limits"])
const withoutSmallHeap = everyImplementation.filter((name) => name !== "email-senders-small-heap" && !variants.has(name))
const preRendered = everyImplementation.filter((name) => !variants.has(name))

const scenarios: ReadonlyArray<Scenario> = [
  {
    name: "nodelay",
    title: "no delay (CPU-bound)",
    replyDelayMillis: 0,
    refusePercent: 0,
    count: countFor(3000),
    warmup: Number(process.env["BENCH_WARMUP"] ?? "3000"),
    backlog: false,
    implementations: preRendered,
    runs
  },
  {
    // the same worker given template events and pre-rendered ones, runs alternating
    name: "templates",
    title: "no delay, events rendered from a Zulip-dialect template",
    replyDelayMillis: 0,
    refusePercent: 0,
    count: countFor(3000),
    warmup: Number(process.env["BENCH_WARMUP"] ?? "3000"),
    backlog: false,
    implementations: ["email-senders", "email-senders-templates"],
    runs
  },
  {
    // the same worker with the rate limit (far above its pace) and the ledger in Redis, and without, runs alternating
    name: "limits",
    title: "no delay, with EMAIL_RATE_LIMIT far above the achieved rate and the duplicate ledger, both in Redis",
    replyDelayMillis: 0,
    refusePercent: 0,
    count: countFor(3000),
    warmup: Number(process.env["BENCH_WARMUP"] ?? "3000"),
    backlog: false,
    implementations: ["email-senders", "email-senders-limits"],
    runs
  },
  {
    // the same burst reaching a worker that has just started: most of its code not yet compiled by the JIT
    name: "coldstart",
    title: "no delay, the first events after the worker starts",
    replyDelayMillis: 0,
    refusePercent: 0,
    count: countFor(3000),
    warmup: 0,
    backlog: false,
    implementations: ["email-senders", "raw"],
    runs
  },
  {
    name: "delay20",
    title: "20 ms per SMTP reply",
    replyDelayMillis: 20,
    refusePercent: 0,
    count: countFor(300),
    warmup: 0,
    backlog: false,
    implementations: withoutSmallHeap,
    runs
  },
  {
    name: "refuse451",
    title: "20 ms per SMTP reply, 10 % of recipients 451 on first try",
    replyDelayMillis: 20,
    refusePercent: 10,
    count: countFor(300),
    warmup: 0,
    backlog: false,
    implementations: withoutSmallHeap,
    runs
  },
  {
    name: "backlog",
    title: "100,000-event backlog, no delay",
    replyDelayMillis: 0,
    refusePercent: 0,
    count: Number(process.env["BENCH_BACKLOG_N"] ?? "100000"),
    warmup: 0,
    backlog: true,
    implementations: ["email-senders", "email-senders-small-heap", "raw", ...otherBuilds.map((build) => build.name)],
    runs: Number(process.env["BENCH_BACKLOG_RUNS"] ?? "1")
  }
]

const selected = (all: ReadonlyArray<string>, requested: string | undefined): ReadonlyArray<string> => {
  if (requested === undefined || requested === "") return all
  const names = requested.split(",").map((name) => name.trim())
  const unknown = names.filter((name) => !all.includes(name))
  if (unknown.length > 0) throw new Error(`unknown: ${unknown.join(", ")} (known: ${all.join(", ")})`)
  return names
}

/** `cluster` (bench/cluster.ts) runs on a cluster of its own, only when asked for by name */
const requestedNames = (process.argv.slice(2).join(",") || process.env["BENCH_SCENARIOS"] || "").split(",").map((name) => name.trim())
const runsCluster = requestedNames.includes("cluster")
const scenarioNames = runsCluster && requestedNames.length === 1
  ? []
  : selected(scenarios.map((scenario) => scenario.name), requestedNames.filter((name) => name !== "cluster").join(","))
const implementationNames = selected(everyImplementation, process.env["BENCH_IMPLS"])

const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** Waits until `done()` holds, polling; false if `timeoutMillis` passed first. */
const until = async (done: () => boolean | Promise<boolean>, timeoutMillis: number, everyMillis = 20) => {
  const deadline = Date.now() + timeoutMillis
  while (!(await done())) {
    if (Date.now() > deadline) return false
    await sleep(everyMillis)
  }
  return true
}

interface Sink {
  readonly port: number
  readonly accepted: () => { readonly distinct: number; readonly total: number }
  readonly report: () => Promise<SinkReport>
  readonly close: () => Promise<void>
}

const startSink = (scenario: Scenario): Promise<Sink> =>
  new Promise((resolve, reject) => {
    const child = fork(join(benchDir, "sink.ts"), [], {
      env: {
        ...process.env,
        SINK_REPLY_DELAY_MS: String(scenario.replyDelayMillis),
        SINK_REFUSE_PERCENT: String(scenario.refusePercent)
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    let progress = { distinct: 0, total: 0 }
    let pendingReport: ((report: SinkReport) => void) | undefined
    const request = (message: SinkRequest) => child.send(message)
    child.once("error", reject)
    child.on("message", (message: SinkMessage) => {
      if (message.type === "progress") progress = message
      else if (message.type === "report") pendingReport?.(message)
      else {
        resolve({
          port: message.port,
          accepted: () => progress,
          report: () =>
            new Promise((resolveReport) => {
              pendingReport = resolveReport
              request({ type: "report" })
            }),
          close: () =>
            new Promise((resolveClose) => {
              child.once("exit", () => resolveClose())
              request({ type: "close" })
            })
        })
      }
    })
  })

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

/** utime + stime in seconds of a `/proc/…/stat` file. */
const cpuSecondsOf = (statFile: string): number => {
  const stat = readFileSync(statFile, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / clockTicks
}

/**
 * utime + stime in seconds of a live process and of its main thread alone (the rest is V8's compiler and garbage
 * collector threads and libuv's).
 */
const cpuUsage = (pid: number): { readonly cpuSeconds: number; readonly mainThreadCpuSeconds: number } => ({
  cpuSeconds: cpuSecondsOf(`/proc/${pid}/stat`),
  mainThreadCpuSeconds: cpuSecondsOf(`/proc/${pid}/task/${pid}/stat`)
})

/** VmHWM (peak RSS) in bytes of a live process; polled during a run, so it reads nothing else. */
const peakRssBytesOf = (pid: number): number =>
  Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024

const startWorker = (implementation: Implementation, environment: Record<string, string>, logFile: string) => {
  const output = openSync(logFile, "a")
  const profile = process.env["BENCH_PROFILE"]
  // V8 flags that NODE_OPTIONS refuses (`--trace-gc`, `--cpu-prof`…), for every worker alike
  const nodeOptions = [
    ...(profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]),
    ...(process.env["BENCH_NODE_FLAGS"] ?? "").split(" ").filter((flag) => flag !== "")
  ]
  return spawn(process.execPath, [...nodeOptions, join(projectDir, implementation.script)], {
    cwd: projectDir,
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "/tmp",
      ...implementation.environment,
      ...environment
    },
    stdio: ["ignore", output, output]
  })
}

const stopWorker = async (worker: ChildProcess): Promise<void> => {
  if (worker.exitCode !== null || worker.signalCode !== null) return
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()))
  worker.kill("SIGTERM")
  const timer = setTimeout(() => worker.kill("SIGKILL"), 30_000)
  await exited
  clearTimeout(timer)
}

/** Publishes events `from … to-1` with publisher confirms, recording each one's publish time. */
const publish = async (
  connection: ChannelModel,
  queue: string,
  run: string,
  [from, to]: readonly [number, number],
  publishedAt: Float64Array,
  implementation: Implementation
) => {
  const event = implementation.events === "template" ? templateEventFor : eventFor
  const channel = await connection.createConfirmChannel()
  const window = 500
  for (let start = from; start < to; start += window) {
    for (let index = start; index < Math.min(to, start + window); index++) {
      publishedAt[index] = wallClockMillis()
      const sent = channel.sendToQueue(queue, Buffer.from(event(run, index)), { persistent: true })
      if (!sent) await new Promise((resolve) => channel.once("drain", resolve))
    }
    await channel.waitForConfirms()
  }
  await channel.close()
}

const percentile = (sorted: Float64Array, fraction: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!

/** First acceptance of each event; throughput and latency from the sink's records. */
const measure = (report: SinkReport, publishedAt: Float64Array, count: number, startMillis: number | undefined) => {
  const firstAcceptance = new Float64Array(count).fill(Number.NaN)
  const retried = new Uint8Array(count)
  let total = 0
  for (let i = 0; i < report.messageIds.length; i++) {
    const index = indexOfMessageId(report.messageIds[i]!)
    if (!(index >= 0 && index < count)) continue
    total++
    if (Number.isNaN(firstAcceptance[index]!)) firstAcceptance[index] = report.acceptedAt[i]!
    if (report.retried[i] === true) retried[index] = 1
  }
  const latencies: Array<number> = []
  let delivered = 0
  let first = Number.POSITIVE_INFINITY
  let last = Number.NEGATIVE_INFINITY
  let healthy = 0
  let lastHealthy = Number.NEGATIVE_INFINITY
  for (let index = 0; index < count; index++) {
    const at = firstAcceptance[index]!
    if (Number.isNaN(at)) continue
    delivered++
    latencies.push(at - publishedAt[index]!)
    first = Math.min(first, at)
    last = Math.max(last, at)
    if (retried[index] === 0) {
      healthy++
      lastHealthy = Math.max(lastHealthy, at)
    }
  }
  const sorted = Float64Array.from(latencies).sort()
  // live runs: from the first publish; the backlog: from the first acceptance (the worker's start-up excluded)
  const start = startMillis ?? first
  return {
    delivered,
    duplicates: total - delivered,
    retried: delivered - healthy,
    emailsPerSecond: delivered / ((last - start) / 1000),
    healthyPerSecond: healthy / ((lastHealthy - start) / 1000),
    p50Millis: percentile(sorted, 0.5),
    p99Millis: percentile(sorted, 0.99)
  }
}

const lineCount = (file: string): number => {
  try {
    return statSync(file).size === 0 ? 0 : readFileSync(file, "utf8").trimEnd().split("\n").length
  } catch {
    return 0
  }
}

/** Names this benchmark's queues (`….p<pid>-<n>`), so leftovers are found without touching other queues. */
const runPrefix = `p${process.pid}`
let runCounter = 0

const runOnce = async (
  connection: ChannelModel,
  scenario: Scenario,
  implementation: Implementation,
  runNumber: number
): Promise<RunResult> => {
  // short, as it goes into every Message-ID
  const run = `${runPrefix}-${++runCounter}`
  const queue = `bench.${scenario.name}.${implementation.name}.${runNumber}.${run}`
  const workDir = mkdtempSync(join(tmpdir(), "email-senders-bench-"))
  const admin = await connection.createChannel()
  await admin.assertQueue(queue, { durable: true })
  const sink = await startSink(scenario)
  // the measured events are 0 … count-1; warm-up events come after them, so `measure` leaves them out
  const publishedAt = new Float64Array(scenario.count + scenario.warmup)
  const measuredEvents: readonly [number, number] = [0, scenario.count]
  const environment = {
    AMQP_URL: amqpUrl,
    QUEUE_NAME: queue,
    EMAIL_HOST: "127.0.0.1",
    EMAIL_PORT: String(sink.port),
    QUEUE_STATS_DIR: join(workDir, "stats"),
    QUEUE_ERROR_DIR: join(workDir, "errors"),
    EMAIL_LOG_DIR: join(workDir, "emails"),
    // the worker's operations endpoint stays on, on a free port rather than the shared default 9100
    HTTP_PORT: String(await freePort())
  }
  const logFile = join(workDir, "worker.log")
  let worker: ChildProcess | undefined
  try {
    if (scenario.backlog) {
      log(`  publishing ${scenario.count} events before the worker starts`)
      await publish(connection, queue, run, measuredEvents, publishedAt, implementation)
    }
    worker = startWorker(implementation, environment, logFile)
    const pid = worker.pid!
    const started = worker
    const consuming = await until(
      async () => started.exitCode !== null || (await admin.checkQueue(queue)).consumerCount > 0,
      30_000
    )
    if (!consuming || started.exitCode !== null) {
      throw new Error(`${implementation.name} did not start consuming: ${readFileSync(logFile, "utf8").slice(0, 2000)}`)
    }
    let peakRssBytes = 0
    const accepted = (distinct: number) =>
      until(() => {
        peakRssBytes = peakRssBytesOf(pid)
        return sink.accepted().distinct >= distinct
      }, runTimeoutMillis, 50)
    if (scenario.warmup > 0) {
      await publish(connection, queue, run, [scenario.count, scenario.count + scenario.warmup], publishedAt, implementation)
      if (!(await accepted(scenario.warmup))) throw new Error(`${implementation.name} did not deliver the warm-up events in time`)
    }
    const before = cpuUsage(pid)
    const startMillis = scenario.backlog ? undefined : wallClockMillis()
    if (!scenario.backlog) await publish(connection, queue, run, measuredEvents, publishedAt, implementation)
    const complete = await accepted(scenario.warmup + scenario.count)
    const after = cpuUsage(pid)
    const finalPeakRssBytes = peakRssBytesOf(pid)
    await stopWorker(worker)
    const report = await sink.report()
    const measured = measure(report, publishedAt, scenario.count, startMillis)
    const result: RunResult = {
      ...measured,
      complete,
      count: scenario.count,
      cpuSecondsPer1000: ((after.cpuSeconds - before.cpuSeconds) / measured.delivered) * 1000,
      mainThreadCpuSecondsPer1000: ((after.mainThreadCpuSeconds - before.mainThreadCpuSeconds) / measured.delivered) * 1000,
      peakRssBytes: Math.max(peakRssBytes, finalPeakRssBytes),
      refusals: report.refusals,
      failuresRecorded: lineCount(join(workDir, "errors", `${queue}.errors`))
    }
    log(
      `  ${implementation.name} #${runNumber}: ${result.emailsPerSecond.toFixed(1)} emails/s, p50 ${result.p50Millis.toFixed(0)} ms, ` +
        `p99 ${result.p99Millis.toFixed(0)} ms, ${result.cpuSecondsPer1000.toFixed(3)} CPU s/1000 ` +
        `(main thread ${result.mainThreadCpuSecondsPer1000.toFixed(3)}), ` +
        `peak RSS ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MB${complete ? "" : `, INCOMPLETE (${result.delivered}/${scenario.count})`}`
    )
    return result
  } finally {
    if (worker !== undefined) await stopWorker(worker)
    await sink.close()
    await admin.deleteQueue(queue)
    await admin.close()
    if (process.env["BENCH_KEEP_LOGS"] === undefined) rmSync(workDir, { recursive: true, force: true })
    else log(`  logs kept in ${workDir}`)
  }
}

/**
 * A requeue makes the worker declare a delay queue (`<queue>.delay.<ms>`) that deleting the run's queue leaves
 * behind. No scenario should requeue anything, but whatever this benchmark left is deleted.
 */
const deleteLeftoverQueues = async (connection: ChannelModel): Promise<void> => {
  let listing: string
  try {
    listing = execFileSync("rabbitmqctl", ["list_queues", "-q", "--no-table-headers", "name"], { encoding: "utf8" })
  } catch (error) {
    log(`could not list queues to find leftovers (${String(error)}); look for queues named bench.*.${runPrefix}-*`)
    return
  }
  const leftovers = listing.split("\n").map((line) => line.trim()).filter((name) => name.startsWith("bench.") && name.includes(`.${runPrefix}-`))
  if (leftovers.length === 0) return
  const channel = await connection.createChannel()
  for (const name of leftovers) await channel.deleteQueue(name)
  await channel.close()
  log(`deleted ${leftovers.length} leftover queue(s)`)
}

const main = async () => {
  if (runsCluster) await runClusterBench()
  if (scenarioNames.length === 0) return
  const connection = await connect(amqpUrl)
  const startedAt = new Date()
  const results: Array<ScenarioResults> = []
  // other processes on the machine skew every number; the 1-minute load average after each run says how much
  const loadAverages: Array<number> = [loadavg()[0]!]
  try {
    for (const scenario of scenarios.filter((s) => scenarioNames.includes(s.name))) {
      const chosen = implementations.filter((implementation) =>
        scenario.implementations.includes(implementation.name) && implementationNames.includes(implementation.name)
      )
      log(`${scenario.title}: ${scenario.count} events × ${scenario.runs} run(s), ${chosen.map((i) => i.name).join(", ")}`)
      const byImplementation = new Map<string, Array<RunResult>>(chosen.map((implementation) => [implementation.name, []]))
      // runs interleaved, so a drift of the machine touches every implementation alike
      for (let runNumber = 1; runNumber <= scenario.runs; runNumber++) {
        for (const implementation of chosen) {
          byImplementation.get(implementation.name)!.push(await runOnce(connection, scenario, implementation, runNumber))
          loadAverages.push(loadavg()[0]!)
        }
      }
      results.push({ scenario, runs: byImplementation })
    }
  } finally {
    await deleteLeftoverQueues(connection)
    await connection.close()
  }
  const markdown = renderResults(results, {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    node: process.version,
    startedAt,
    minutes: (Date.now() - startedAt.getTime()) / 60_000,
    loadAverages
  })
  const complete = scenarioNames.length === scenarios.length && implementationNames.length === everyImplementation.length
  const output = process.env["BENCH_OUT"] ?? (complete ? join(benchDir, "RESULTS.md") : undefined)
  if (output === undefined) {
    process.stdout.write(markdown)
    log("partial selection: results printed, bench/RESULTS.md left as it is (set BENCH_OUT to write a file)")
  } else {
    // the cluster section is measured by `npm run bench cluster` alone; a full run keeps it
    const clusterSection = (() => {
      try {
        return clusterSectionOf(readFileSync(output, "utf8"))
      } catch {
        return undefined
      }
    })()
    writeFileSync(output, clusterSection === undefined ? markdown : withClusterSection(markdown, clusterSection))
    log(`results written to ${output}`)
  }
}

await main()
