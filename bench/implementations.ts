/** The workers under test: each runs as its own process with the environment given here plus the run's. */

export interface Implementation {
  readonly name: string
  readonly description: string
  /** relative to the project directory, run with the benchmark's own Node */
  readonly script: string
  readonly environment: Readonly<Record<string, string>>
  /** the raw baseline with the same number of SMTP connections, for email-senders rows */
  readonly rawBaseline?: string
  /** the events it is given: pre-rendered (default), or from a template (`templates` scenario) */
  readonly events?: "pre-rendered" | "template"
}

/**
 * The tuned setting: 4× the connections (the SMTP round trips are what bounds throughput once replies take time),
 * concurrency to match with room for events waiting on a retry, and no per-email Info line. `BENCH_TUNED`
 * (`NAME=value,…`) replaces it.
 */
const tunedEnvironment: Readonly<Record<string, string>> = Object.fromEntries(
  (process.env["BENCH_TUNED"] ?? "SMTP_CONNECTIONS=16,CONCURRENCY=64,LOG_LEVEL=Warn")
    .split(",")
    .map((pair) => pair.split("=").map((part) => part.trim()) as [string, string])
)

/**
 * V8 flags that size the heap for this worker instead of for the host (README, "Memory"); `BENCH_SMALL_HEAP`
 * replaces them.
 */
export const smallHeapOptions = process.env["BENCH_SMALL_HEAP"] ?? "--max-semi-space-size=8 --max-old-space-size=128"

const tunedConnections = tunedEnvironment["SMTP_CONNECTIONS"] ?? "4"
const describe = (environment: Readonly<Record<string, string>>) =>
  Object.entries(environment).map(([name, value]) => `${name}=${value}`).join(" ")

/**
 * `BENCH_BUILDS=name=dir,…`: each `dir` (relative to the project) a checkout of this worker built with `npm run build`,
 * run with default settings as the row `name`.
 */
const buildsOf = (setting: string): ReadonlyArray<Implementation> =>
  setting.split(",").filter((pair) => pair.trim() !== "").map((pair) => {
    const [name = "", dir = ""] = pair.split("=").map((part) => part.trim())
    if (name === "" || dir === "") throw new Error(`BENCH_BUILDS: expected name=dir, got ${JSON.stringify(pair)}`)
    return { name, description: `\`${dir}/dist/main.js\`, default settings`, script: `${dir}/dist/main.js`, environment: {}, rawBaseline: "raw" }
  })

/** `BENCH_BUILDS`: every scenario runs them beside this checkout's worker */
export const otherBuilds = buildsOf(process.env["BENCH_BUILDS"] ?? "")

export const implementations: ReadonlyArray<Implementation> = [
  {
    name: "email-senders",
    description: "`node dist/main.js`, default settings (SMTP_CONNECTIONS=4 CONCURRENCY=32 PREFETCH=100; with no heap flags given, the worker restarts itself with `--heap-growing-percent=40`: deploy/README.md, \"Memory\")",
    script: "dist/main.js",
    environment: {},
    rawBaseline: "raw"
  },
  {
    name: "email-senders-tuned",
    description: `\`node dist/main.js\` with ${describe(tunedEnvironment)}`,
    script: "dist/main.js",
    environment: tunedEnvironment,
    rawBaseline: "raw-tuned"
  },
  {
    name: "email-senders-small-heap",
    description: `\`node dist/main.js\`, default settings, with NODE_OPTIONS="${smallHeapOptions}"`,
    script: "dist/main.js",
    environment: { NODE_OPTIONS: smallHeapOptions },
    rawBaseline: "raw"
  },
  {
    name: "email-senders-templates",
    description: "`node dist/main.js`, default settings, given events that name the shipped `invitation` template instead of pre-rendered ones",
    script: "dist/main.js",
    environment: {},
    events: "template"
  },
  // other builds of this worker, for an A/B run against this checkout's (e.g. a `git worktree` of an earlier commit)
  ...otherBuilds,
  {
    name: "email-senders-limits",
    description: "`node dist/main.js`, default settings, with EMAIL_RATE_LIMIT=100000/s (far above what it reaches) and the duplicate ledger, both in the machine's Redis (REDIS_URL=redis://127.0.0.1:6379, a key prefix of the run's, DEDUPE_TTL=600)",
    script: "dist/main.js",
    environment: {
      EMAIL_RATE_LIMIT: "100000/s",
      REDIS_URL: process.env["BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379",
      REDIS_KEY_PREFIX: `bench-${process.pid}-${Date.now()}:`,
      DEDUPE_TTL: "600"
    }
  },
  {
    name: "raw",
    description: "amqplib consumer (prefetch 100) + nodemailer pooled transport, 4 connections, ack after each send",
    script: "bench/workers/raw.ts",
    environment: { SMTP_CONNECTIONS: "4", PREFETCH: "100" }
  },
  {
    name: "raw-tuned",
    description: `the raw baseline with ${tunedConnections} connections and PREFETCH=${tunedEnvironment["PREFETCH"] ?? "100"}`,
    script: "bench/workers/raw.ts",
    environment: { SMTP_CONNECTIONS: tunedConnections, PREFETCH: tunedEnvironment["PREFETCH"] ?? "100" }
  },
  {
    name: "zulip",
    description: "Zulip-style: one SMTP connection, batches of 100 sent one after another, batch acked after it",
    script: "bench/workers/zulipStyle.ts",
    environment: { PREFETCH: "100" }
  }
]
