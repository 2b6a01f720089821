/**
 * What operators import unchanged: `deploy/prometheus/alerts.yml` (checked and unit-tested by `promtool`, Debian's
 * `prometheus`), `deploy/grafana/email-senders.json` (every query valid PromQL), and the metrics both read, scraped
 * from the built worker: every name they use is one it exports, the queue depth is the broker's, and the process
 * metrics are there.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"
import { beforeAll } from "vitest"
import { packageVersion } from "../src/packageInfo.ts"
import { closedPort } from "./support/fakeSes.ts"
import { buildCli, startCli, waitUntil } from "./support/processes.ts"
import { sample } from "./support/prometheusText.ts"
import { makeAdmin } from "./support/rabbitmq.ts"
import { workerEnv, workerSetup } from "./support/workerSetup.ts"

const root = join(import.meta.dirname, "..")
const alertsFile = join(root, "deploy", "prometheus", "alerts.yml")
const alertsTestFile = join(root, "deploy", "prometheus", "alerts.test.yml")
const dashboardFile = join(root, "deploy", "grafana", "email-senders.json")

const promtool = (args: ReadonlyArray<string>) =>
  Effect.promise(() =>
    promisify(execFile)("promtool", [...args], { cwd: join(root, "deploy", "prometheus") }).then(
      ({ stdout, stderr }) => ({ ok: true, output: stdout + stderr }),
      (error: { stdout?: string; stderr?: string }) => ({ ok: false, output: `${error.stdout ?? ""}${error.stderr ?? ""}` })
    )
  )

interface Target {
  readonly expr?: string
}
interface Panel {
  readonly id: number
  readonly title: string
  readonly type: string
  readonly targets?: ReadonlyArray<Target>
}

const dashboard = JSON.parse(readFileSync(dashboardFile, "utf8")) as { readonly panels: ReadonlyArray<Panel> }
const dashboardExpressions = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? ""))
const alertsText = readFileSync(alertsFile, "utf8")

/** The metric names a text of PromQL uses (ours and Node's; `up` is Prometheus' own). */
const metricNamesIn = (text: string): ReadonlySet<string> =>
  new Set([...text.matchAll(/\b(?:email_senders|process|nodejs)_[a-z0-9_]+\b/g)].map((match) => match[0]))

describe("deploy/prometheus/alerts.yml", () => {
  it.live("passes promtool check rules", () =>
    Effect.gen(function*() {
      const result = yield* promtool(["check", "rules", alertsFile])
      assert.isTrue(result.ok, result.output)
      assert.include(result.output, "SUCCESS")
    }))

  it.live("fires each alert on a synthetic series (promtool test rules), every alert tested", () =>
    Effect.gen(function*() {
      const result = yield* promtool(["test", "rules", alertsTestFile])
      assert.isTrue(result.ok, result.output)
      assert.include(result.output, "SUCCESS")
      const alerts = new Set([...alertsText.matchAll(/- alert: (\w+)/g)].map((match) => match[1]!))
      assert.sameMembers([...alerts], [
        "EmailSendersBacklogSlow",
        "EmailSendersBacklogCritical",
        "EmailSendersNothingSent",
        "EmailSendersFailureRateHigh",
        "EmailSendersSmtpDown",
        "EmailSendersBrokerDown",
        "EmailSendersWorkerNotScraped"
      ])
      // each one is expected to fire somewhere in the unit tests, not only to stay quiet
      const tests = readFileSync(alertsTestFile, "utf8")
      for (const alert of alerts) {
        assert.match(tests, new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${alert} is shown firing`)
      }
    }))
})

describe("deploy/grafana/email-senders.json", () => {
  it("has the panels the issue asks for, each with queries", () => {
    const titles = dashboard.panels.filter((panel) => panel.type !== "row").map((panel) => panel.title)
    for (const title of [
      "Throughput",
      "Failures by tag",
      "Retries",
      "SMTP send time",
      "Queue depth",
      "Time to clear",
      "Outage and paused state",
      "CPU",
      "Memory",
      "Event loop delay",
      "GC time",
      "Open file descriptors"
    ]) {
      assert.include(titles, title)
    }
    for (const panel of dashboard.panels.filter((panel) => panel.type !== "row")) {
      assert.isAbove(panel.targets?.length ?? 0, 0, `${panel.title} has a query`)
    }
    const ids = dashboard.panels.map((panel) => panel.id)
    assert.strictEqual(new Set(ids).size, ids.length, "every panel has an id of its own")
  })

  it.live("every query is valid PromQL (promtool, with Grafana's variables given values)", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "es-dashboard-" })
      const rules = dashboardExpressions.map((expr, index) =>
        `      - record: dashboard:query_${index}\n        expr: ${
          JSON.stringify(expr.replaceAll("$__rate_interval", "1m").replaceAll("$instance", ".+"))
        }\n`
      )
      const file = join(directory, "dashboard-rules.yml")
      yield* fs.writeFileString(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join("")}`)
      const result = yield* promtool(["check", "rules", file])
      assert.isTrue(result.ok, result.output)
      assert.include(result.output, `SUCCESS: ${dashboardExpressions.length} rules found`)
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

/** The Prometheus text of a worker's `/metrics`. */
const scrape = (port: number) => Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text()))

/** Every series name the text exports: a histogram's as `_bucket`, `_sum` and `_count`. */
const exportedNames = (text: string): ReadonlySet<string> =>
  new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) =>
    type === "histogram" ? [name!, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!]
  ))

beforeAll(buildCli, 120_000)

describe("the metrics the dashboard and the rules read, scraped from the worker", () => {
  it.live("every metric name they use is exported once the worker has sent and failed an email", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const { admin, directory, queue, smtp } = yield* workerSetup("es-monitoring-")
      const port = yield* closedPort
      const worker = yield* startCli(["worker"], workerEnv(queue, smtp, directory, { HTTP_PORT: String(port), BATCH_TIMEOUT: "100 millis" }))
      yield* admin.publish(queue, JSON.stringify({ subject: "Sent", text: "Hello", to_emails: ["someone@example.com"] }))
      yield* admin.publish(queue, JSON.stringify({ subject: "Refused", text: "Hello", to_emails: ["refused+550@example.com"] }))
      const errorsFile = join(directory, "queue_error", `${queue}.errors`)
      yield* waitUntil(
        () => Effect.map(fs.exists(errorsFile).pipe(Effect.orElseSucceed(() => false)), (recorded) => recorded && smtp.messages.length === 1),
        () => `one email sent and one recorded; output:\n${worker.output().slice(-2000)}`
      )
      // the stats file is written with each batch; the time to clear is read from it
      yield* waitUntil(() => fs.exists(join(directory, "queue_stats", `${queue}.stats`)).pipe(Effect.orElseSucceed(() => false)), "the stats file")
      const text = yield* scrape(port)
      const exported = exportedNames(text)
      const used = new Set([...metricNamesIn(dashboardExpressions.join("\n")), ...metricNamesIn(alertsText)])
      assert.isAtLeast(used.size, 20, `the dashboard and rules use the worker's metrics: ${[...used].join(", ")}`)
      const missing = [...used].filter((name) => !exported.has(name))
      assert.deepStrictEqual(missing, [], `used but not exported; exported:\n${[...exported].sort().join("\n")}`)

      assert.strictEqual(sample(text, `email_senders_build_info{version="${packageVersion}"}`), 1)
      assert.strictEqual(sample(text, `email_senders_events_failed_total{error="Rejected",smtp_class="5xx"}`), 1)
      assert.strictEqual(sample(text, `email_senders_queue_clear_seconds{queue="${queue}"}`), 0, "an empty queue clears at once")
      assert.isAbove(sample(text, "process_resident_memory_bytes") ?? 0, 20e6)
      assert.isAtMost(sample(text, "nodejs_heap_size_used_bytes") ?? Infinity, sample(text, "nodejs_heap_size_total_bytes") ?? 0)
      assert.isAbove(sample(text, "process_open_fds") ?? 0, 5)
      assert.isAbove(sample(text, "process_cpu_seconds_total") ?? 0, 0)
      assert.isAbove(sample(text, "nodejs_eventloop_delay_seconds{quantile=\"max\"}") ?? 0, 0)
    }).pipe(Effect.provide(NodeFileSystem.layer)), { timeout: 120_000 })

  it.live("queue depth: ready from the broker, unacknowledged held by the worker, for the queue and its delay queues", () =>
    Effect.gen(function*() {
      const admin = yield* makeAdmin
      const queue = yield* admin.declareQueue()
      for (const delay of [1000, 2000]) admin.deleteAfter(`${queue}.delay.${delay}`)
      const port = yield* closedPort
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "es-depth-" })
      // SMTP unreachable: the worker takes PREFETCH deliveries and waits out the outage with them
      const worker = yield* startCli(["worker"], {
        QUEUE_NAME: queue,
        EMAIL_HOST: "127.0.0.1",
        EMAIL_PORT: String(yield* closedPort),
        HTTP_PORT: String(port),
        PREFETCH: "3",
        CONCURRENCY: "2",
        REQUEUE_DELAY: "1",
        MAX_REQUEST_RETRIES: "2",
        QUEUE_STATS_DIR: join(directory, "queue_stats"),
        QUEUE_ERROR_DIR: join(directory, "queue_error")
      })
      yield* worker.waitForOutput("Worker connecting")
      for (let n = 0; n < 10; n++) {
        yield* admin.publish(queue, JSON.stringify({ subject: `Event ${n}`, text: "Hello", to_emails: [`user${n}@example.com`] }))
      }
      const expected = [
        [`email_senders_queue_messages{queue="${queue}",state="ready"}`, 7],
        [`email_senders_queue_messages{queue="${queue}",state="unacknowledged"}`, 3],
        [`email_senders_queue_messages{queue="${queue}.delay.1000",state="ready"}`, 0],
        [`email_senders_queue_messages{queue="${queue}.delay.2000",state="unacknowledged"}`, 0],
        ["email_senders_consumer_paused", 1],
        ["email_senders_smtp_healthy", 0]
      ] as const
      let text = ""
      yield* waitUntil(
        () =>
          Effect.map(scrape(port), (scraped) => {
            text = scraped
            return expected.every(([series, value]) => sample(scraped, series) === value)
          }),
        () => `${expected.map(([series, value]) => `${series} = ${value}`).join(", ")}; got:\n${text}`,
        "60 seconds"
      )
    }).pipe(Effect.provide(NodeFileSystem.layer)), { timeout: 120_000 })
})
