/**
 * The process metrics operators expect from a Node service, under the names Prometheus' own client libraries give
 * them (`process_*`, `nodejs_*`), so that existing dashboards and alerts read them: CPU seconds, resident memory,
 * open file descriptors, start time, the V8 heap, the event loop's delay and the time spent in garbage collection;
 * and `email_senders_build_info{version}`. Effect ships fiber metrics only, none of these. Each is read when
 * `/metrics` is scraped, except GC time, which a `PerformanceObserver` adds up as collections happen.
 */
import { Effect, Metric } from "effect"
import { readdirSync } from "node:fs"
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import { packageVersion } from "../packageInfo.ts"

export const buildInfo = Metric.gauge("email_senders_build_info", {
  description: "Always 1; the version label is the running package's version"
})

const cpuSeconds = Metric.counter("process_cpu_seconds_total", {
  description: "User and system CPU time spent, in seconds",
  incremental: true
})

const residentMemory = Metric.gauge("process_resident_memory_bytes", { description: "Resident memory size in bytes" })

const openFds = Metric.gauge("process_open_fds", { description: "Open file descriptors" })

const startTime = Metric.gauge("process_start_time_seconds", {
  description: "Start time of the process since the Unix epoch, in seconds"
})

const heapUsed = Metric.gauge("nodejs_heap_size_used_bytes", { description: "V8 heap in use, in bytes" })

const heapTotal = Metric.gauge("nodejs_heap_size_total_bytes", { description: "V8 heap allocated, in bytes" })

/** labelled `quantile` (`0.5`, `0.9`, `0.99`, `max`): over the time since the previous scrape */
const eventLoopDelay = Metric.gauge("nodejs_eventloop_delay_seconds", {
  description: "Event loop delay since the previous scrape, by quantile (and max), in seconds"
})

/** labelled `kind` (`minor`, `major`, `incremental`, `weakcb`) */
const gcSeconds = Metric.counter("nodejs_gc_duration_seconds_total", {
  description: "Time spent in garbage collection, by kind, in seconds",
  incremental: true
})

const gcKinds: Readonly<Record<number, string>> = { 1: "minor", 2: "major", 4: "incremental", 8: "weakcb" }

/** `/proc/self/fd` less the descriptor reading it; null where there is no `/proc` (macOS). */
const countOpenFds = (): number | null => {
  try {
    return readdirSync("/proc/self/fd").length - 1
  } catch {
    return null
  }
}

/**
 * Start watching the event loop and the garbage collector for the life of the scope; gives the effect that
 * samples everything else, for each scrape.
 */
export const makeProcessMetrics = Effect.gen(function*() {
  const services = yield* Effect.context<never>()
  const delay = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const histogram = monitorEventLoopDelay({ resolution: 10 })
      histogram.enable()
      return histogram
    }),
    (histogram) => Effect.sync(() => histogram.disable())
  )
  yield* Effect.acquireRelease(
    Effect.sync(() => {
      const observer = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          const kind = gcKinds[(entry as unknown as { readonly detail?: { readonly kind?: number } }).detail?.kind ?? 0] ?? "other"
          Effect.runSyncWith(services)(Metric.update(Metric.withAttributes(gcSeconds, { kind }), entry.duration / 1000))
        }
      })
      observer.observe({ entryTypes: ["gc"] })
      return observer
    }),
    (observer) => Effect.sync(() => observer.disconnect())
  )
  for (const kind of Object.values(gcKinds)) yield* Metric.update(Metric.withAttributes(gcSeconds, { kind }), 0)
  yield* Metric.update(Metric.withAttributes(buildInfo, { version: packageVersion }), 1)
  yield* Metric.update(startTime, Math.round(Date.now() / 1000 - process.uptime()))
  let cpuMicros = 0
  return Effect.gen(function*() {
    const cpu = process.cpuUsage()
    const total = cpu.user + cpu.system
    yield* Metric.update(cpuSeconds, (total - cpuMicros) / 1e6)
    cpuMicros = total
    const memory = process.memoryUsage()
    yield* Metric.update(residentMemory, memory.rss)
    yield* Metric.update(heapUsed, memory.heapUsed)
    yield* Metric.update(heapTotal, memory.heapTotal)
    const fds = countOpenFds()
    if (fds !== null) yield* Metric.update(openFds, fds)
    // nanoseconds; nothing was measured yet right after start (the histogram then holds no sample)
    if (delay.count > 0) {
      for (const [quantile, value] of [["0.5", delay.percentile(50)], ["0.9", delay.percentile(90)], ["0.99", delay.percentile(99)], ["max", delay.max]] as const) {
        yield* Metric.update(Metric.withAttributes(eventLoopDelay, { quantile }), value / 1e9)
      }
      delay.reset()
    }
  })
})
