/** Medians over runs, ratios, the targets' verdicts, and the Markdown written to bench/RESULTS.md. */
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { implementations } from "./implementations.ts"

export interface Scenario {
  readonly name: string
  readonly title: string
  readonly replyDelayMillis: number
  readonly refusePercent: number
  readonly count: number
  /** events delivered before the measured ones, so the JIT has compiled the hot code (not with `backlog`) */
  readonly warmup: number
  /** publish everything before the worker starts */
  readonly backlog: boolean
  readonly implementations: ReadonlyArray<string>
  readonly runs: number
}

export interface RunResult {
  /** the sink accepted every event before the run's timeout */
  readonly complete: boolean
  readonly count: number
  readonly delivered: number
  /** acceptances beyond the first of an event */
  readonly duplicates: number
  /** events whose recipient was refused once (451) first */
  readonly retried: number
  readonly emailsPerSecond: number
  /** events never refused, per second until the last of them was accepted */
  readonly healthyPerSecond: number
  readonly p50Millis: number
  readonly p99Millis: number
  readonly cpuSecondsPer1000: number
  /** the part of `cpuSecondsPer1000` spent on the main thread, where the JavaScript runs */
  readonly mainThreadCpuSecondsPer1000: number
  readonly peakRssBytes: number
  readonly refusals: number
  /** lines in the worker's errors file (email-senders only) */
  readonly failuresRecorded: number
}

export interface ScenarioResults {
  readonly scenario: Scenario
  readonly runs: ReadonlyMap<string, ReadonlyArray<RunResult>>
}

export interface Machine {
  readonly cores: number
  readonly cpuModel: string
  readonly node: string
  readonly startedAt: Date
  readonly minutes: number
  /** 1-minute load averages: at the start and after each run */
  readonly loadAverages: ReadonlyArray<number>
}

type Metric = Exclude<keyof RunResult, "complete">

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const medianOf = (runs: ReadonlyArray<RunResult>, metric: Metric): number => median(runs.map((run) => run[metric]))

const rate = (value: number): string => Number.isFinite(value) ? value.toFixed(value < 100 ? 1 : 0) : "–"
const millis = (value: number): string => Number.isFinite(value) ? value.toFixed(value < 10 ? 1 : 0) : "–"
const ratio = (value: number): string => Number.isFinite(value) ? `${value.toFixed(2)}×` : "–"
const megabytes = (bytes: number): string => (bytes / 2 ** 20).toFixed(0)

const emailsPerSecond = (results: ReadonlyArray<ScenarioResults>, scenario: string, implementation: string) => {
  const runs = results.find((result) => result.scenario.name === scenario)?.runs.get(implementation)
  return runs === undefined ? Number.NaN : medianOf(runs, "emailsPerSecond")
}

const notesOf = (runs: ReadonlyArray<RunResult>): string => {
  const notes: Array<string> = []
  const incomplete = runs.filter((run) => !run.complete)
  if (incomplete.length > 0) {
    notes.push(`${incomplete.length} run(s) timed out (${incomplete.map((run) => `${run.delivered}/${run.count}`).join(", ")})`)
  }
  const duplicates = runs.reduce((sum, run) => sum + run.duplicates, 0)
  if (duplicates > 0) notes.push(`${duplicates} duplicate(s)`)
  const failures = runs.reduce((sum, run) => sum + run.failuresRecorded, 0)
  if (failures > 0) notes.push(`${failures} failure record(s)`)
  return notes.join("; ")
}

const scenarioTable = (result: ScenarioResults, all: ReadonlyArray<ScenarioResults>): string => {
  const { scenario } = result
  const refusing = scenario.refusePercent > 0
  const header = [
    "implementation",
    "emails/s (median)",
    "min–max",
    ...(refusing ? ["healthy emails/s", "healthy vs no-failure"] : []),
    "p50 ms",
    "p99 ms",
    "CPU s / 1000",
    "main thread",
    "peak RSS MB",
    "vs raw",
    "vs Zulip-style",
    "notes"
  ]
  const rows = [...result.runs].map(([name, runs]) => {
    const implementation = implementations.find((candidate) => candidate.name === name)
    const throughput = medianOf(runs, "emailsPerSecond")
    const perRun = runs.map((run) => run.emailsPerSecond)
    const raw = implementation?.rawBaseline === undefined
      ? Number.NaN
      : emailsPerSecond(all, scenario.name, implementation.rawBaseline)
    const zulip = name.startsWith("email-senders") ? emailsPerSecond(all, scenario.name, "zulip") : Number.NaN
    const healthy = medianOf(runs, "healthyPerSecond")
    return [
      name,
      rate(throughput),
      `${rate(Math.min(...perRun))}–${rate(Math.max(...perRun))}`,
      ...(refusing ? [rate(healthy), ratio(healthy / emailsPerSecond(all, "delay20", name))] : []),
      millis(medianOf(runs, "p50Millis")),
      millis(medianOf(runs, "p99Millis")),
      medianOf(runs, "cpuSecondsPer1000").toFixed(3),
      medianOf(runs, "mainThreadCpuSecondsPer1000").toFixed(3),
      megabytes(medianOf(runs, "peakRssBytes")),
      ratio(throughput / raw),
      ratio(throughput / zulip),
      notesOf(runs)
    ]
  })
  const line = (cells: ReadonlyArray<string>) => `| ${cells.join(" | ")} |`
  const refusals = refusing
    ? `\nRefused at first RCPT: ${[...result.runs].map(([name, runs]) => `${name} ${medianOf(runs, "retried")}`).join(", ")} ` +
      "events (median per run); healthy = never refused; \"healthy vs no-failure\" compares with the same " +
      "implementation in the 20 ms scenario.\n"
    : ""
  return [
    `### ${scenario.title}`,
    "",
    `${scenario.count.toLocaleString("en")} events, ${scenario.runs} run(s)${scenario.backlog ? ", published before the worker started; emails/s from the first to the last acceptance" : ""}` +
      `${scenario.warmup > 0 ? `, measured after ${scenario.warmup.toLocaleString("en")} warm-up events that each worker delivered first` : ""}.`,
    "",
    line(header),
    line(header.map(() => "---")),
    ...rows.map(line),
    refusals
  ].join("\n")
}

interface Target {
  readonly description: string
  readonly measured: number
  readonly threshold: number
  readonly atMost?: boolean
  readonly format: (value: number) => string
}

const targetsOf = (results: ReadonlyArray<ScenarioResults>): ReadonlyArray<Target> => {
  const backlogRuns = results.find((result) => result.scenario.name === "backlog")?.runs.get("email-senders")
  const refuseRuns = results.find((result) => result.scenario.name === "refuse451")?.runs.get("email-senders")
  return [
    {
      description: "no delay: email-senders ≥ 0.9 × raw throughput",
      measured: emailsPerSecond(results, "nodelay", "email-senders") / emailsPerSecond(results, "nodelay", "raw"),
      threshold: 0.9,
      format: ratio
    },
    {
      description: "100k backlog: email-senders peak RSS ≤ 150 MB",
      measured: backlogRuns === undefined ? Number.NaN : medianOf(backlogRuns, "peakRssBytes") / 2 ** 20,
      threshold: 150,
      atMost: true,
      format: (value) => `${value.toFixed(0)} MB`
    },
    {
      description: "20 ms delay: email-senders ≥ 0.9 × raw (4 connections)",
      measured: emailsPerSecond(results, "delay20", "email-senders") / emailsPerSecond(results, "delay20", "raw"),
      threshold: 0.9,
      format: ratio
    },
    {
      description: "20 ms delay: email-senders ≥ 3 × Zulip-style (4 connections)",
      measured: emailsPerSecond(results, "delay20", "email-senders") / emailsPerSecond(results, "delay20", "zulip"),
      threshold: 3,
      format: ratio
    },
    {
      description: "templates: email-senders rendering a Zulip-dialect template ≥ 0.85 × its pre-rendered throughput",
      measured: emailsPerSecond(results, "templates", "email-senders-templates") / emailsPerSecond(results, "templates", "email-senders"),
      threshold: 0.85,
      format: ratio
    },
    {
      description: "limits: email-senders with EMAIL_RATE_LIMIT far above its pace and the ledger, in Redis, ≥ 0.85 × without",
      measured: emailsPerSecond(results, "limits", "email-senders-limits") / emailsPerSecond(results, "limits", "email-senders"),
      threshold: 0.85,
      format: ratio
    },
    {
      description: "451 mix: email-senders' healthy emails ≥ 0.9 × its no-failure throughput",
      measured: refuseRuns === undefined
        ? Number.NaN
        : medianOf(refuseRuns, "healthyPerSecond") / emailsPerSecond(results, "delay20", "email-senders"),
      threshold: 0.9,
      format: ratio
    }
  ]
}

/** The no-delay target is measured warm; what a worker that has just started does is said next to it. */
const coldStartNote = (results: ReadonlyArray<ScenarioResults>): ReadonlyArray<string> => {
  const warm = results.find((result) => result.scenario.name === "nodelay")?.scenario
  const cold = results.find((result) => result.scenario.name === "coldstart")?.scenario
  if (warm === undefined || cold === undefined || warm.warmup === 0) return []
  const coldRatio = emailsPerSecond(results, "coldstart", "email-senders") / emailsPerSecond(results, "coldstart", "raw")
  return [
    `The no-delay target is measured on workers that have delivered ${warm.warmup.toLocaleString("en")} events first; ` +
    `the first ${cold.count.toLocaleString("en")} events after a start (\`coldstart\`) ran at ${ratio(coldRatio)} raw ` +
    "(Findings, \"No delay\").",
    ""
  ]
}

const verdict = (target: Target): string =>
  Number.isNaN(target.measured)
    ? "not measured"
    : (target.atMost === true ? target.measured <= target.threshold : target.measured >= target.threshold)
    ? "met"
    : "**missed**"

const benchDir = dirname(fileURLToPath(import.meta.url))

export const renderResults = (results: ReadonlyArray<ScenarioResults>, machine: Machine): string => {
  const findingsFile = join(benchDir, "FINDINGS.md")
  return [
    "# Benchmark results",
    "",
    `Run on ${machine.startedAt.toISOString().slice(0, 10)}: ${machine.cores} cores (${machine.cpuModel}), ` +
    `Node ${machine.node}, took ${machine.minutes.toFixed(1)} minutes. The sink, RabbitMQ, the publisher and the ` +
    `worker share these cores; the 1-minute load average was ${Math.min(...machine.loadAverages).toFixed(1)}–` +
    `${Math.max(...machine.loadAverages).toFixed(1)} over the runs (anything above ~2 means other processes competed).`,
    "",
    "Implementations:",
    "",
    ...implementations.map((implementation) => `- **${implementation.name}**: ${implementation.description}`),
    "",
    "Each run: a fresh queue, a fresh SMTP sink process, the worker in its own process, events published with " +
    "publisher confirms as fast as the broker confirms them (the worker already consuming, except for the backlog). " +
    "Where a scenario has warm-up events, each worker first delivers those (a worker that has been running a while, " +
    "its hot code compiled by V8's optimising JIT) and only the events after them are measured. " +
    "emails/s = distinct emails accepted ÷ time from the first measured publish to the last 250; latency = publish → " +
    "the sink's 250; CPU = the worker process's utime + stime (`/proc/<pid>/stat`) from the moment it consumes (or " +
    "has delivered its warm-up events) to the last 250, per 1,000 emails, and \"main thread\" the part of it on the thread that runs the JavaScript " +
    "(`/proc/<pid>/task/<pid>/stat`; the rest is V8's compiler and garbage-collector threads); peak RSS = the " +
    "worker's VmHWM. Values are medians over the runs.",
    "",
    "## Targets",
    "",
    "| target | measured | verdict |",
    "| --- | --- | --- |",
    ...targetsOf(results).map((target) =>
      `| ${target.description} | ${Number.isNaN(target.measured) ? "–" : target.format(target.measured)} | ${verdict(target)} |`
    ),
    "",
    ...coldStartNote(results),
    "## Results",
    "",
    ...results.map((result) => scenarioTable(result, results)),
    "## How to re-run",
    "",
    "Needs RabbitMQ on 127.0.0.1:5672 (guest/guest; `AMQP_URL` to change) and `rabbitmqctl`.",
    "",
    "```sh",
    "npm run bench                                  # builds, runs everything (~15 min), writes bench/RESULTS.md",
    "npm run bench -- nodelay delay20               # only these scenarios (nodelay, coldstart, templates, limits, delay20, refuse451, backlog)",
    "BENCH_WARMUP=0 npm run bench -- nodelay        # the no-delay burst without warm-up events (default 3,000)",
    "BENCH_N=1000 BENCH_RUNS=1 npm run bench        # fewer events / runs (BENCH_BACKLOG_N, BENCH_BACKLOG_RUNS for the backlog)",
    "BENCH_IMPLS=email-senders,raw npm run bench    # only these implementations",
    "BENCH_TUNED=SMTP_CONNECTIONS=8,CONCURRENCY=64 npm run bench   # another tuned setting",
    "BENCH_KEEP_LOGS=1 npm run bench                # keep each worker's log (path printed)",
    "BENCH_BUILDS=before=../wt-before BENCH_IMPLS=email-senders,before,raw npm run bench -- nodelay   # A/B against another built checkout",
    "BENCH_NODE_FLAGS=--trace-gc npm run bench      # Node/V8 flags for every worker (with BENCH_KEEP_LOGS to read them)",
    "BENCH_PROFILE=/tmp/prof npm run bench -- nodelay   # a CPU profile of each worker; then:",
    "node bench/profileSummary.ts /tmp/prof/<file>.cpuprofile <emails>   # where its time went, by package",
    "```",
    "",
    "A partial selection prints its tables instead of overwriting this file (`BENCH_OUT=path` writes them). " +
    "`BENCH_RUN_TIMEOUT` (seconds, default 300) bounds one run.",
    "",
    ...(existsSync(findingsFile) ? [readFileSync(findingsFile, "utf8").trimEnd(), ""] : [])
  ].join("\n")
}
