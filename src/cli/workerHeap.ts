/**
 * The worker process's heap. V8 sizes its heap from the host's memory, not from what the worker holds: where the old
 * generation may reach 2 GB (hosts with 8 GB and more) it lets garbage grow to 4× the live data between full
 * collections, and the worker peaked at ~220 MB RSS clearing a backlog with ~30 MB live. A fixed growth of 1.4×
 * (`--heap-growing-percent=40`) and fewer half-empty malloc arenas (`MALLOC_ARENA_MAX=2`) hold it at ~145 MB. A
 * smaller cap (`--max-old-space-size=512`) held it there too, but V8 then also collects in ways that cost ~9 % more
 * CPU per email (bench/FINDINGS.md). So the worker command, unless the operator chose heap flags, replaces its own
 * process (same pid, `process.execve`) with one that has them.
 */
import { Effect } from "effect"
import { url as inspectorUrl } from "node:inspector"
import { getHeapStatistics } from "node:v8"
import { isMainThread } from "node:worker_threads"
import { workerSettingsConfig } from "../config/WorkerSettingsFromEnv.ts"

const MB = 2 ** 20

/** How much the old generation may grow between full collections: 40 % (V8's own growth is 1.1–4×). */
export const heapGrowingPercent = 40

/** From an old generation of 2 GB, V8 lets it grow up to 4× (below, up to 1.3–2×, as the limit is smaller). */
const fastGrowthFromMb = 2048

/**
 * What the worker may hold at once (deploy/README.md, "Memory"): ~40 MB of its own, and every event in flight
 * three times (its body as text, the parsed event, the built email).
 */
export const heapNeededMb = (concurrency: number, maxEventBytes: number): number =>
  Math.ceil(40 + (concurrency * 3 * maxEventBytes) / MB)

/**
 * Whether the operator sized the heap or set its growth, on the command line or in `NODE_OPTIONS` (either
 * spelling); a re-executed worker has, so it never re-executes twice.
 */
export const heapFlagsGiven = (execArgv: ReadonlyArray<string>, nodeOptions: string | undefined): boolean =>
  [...execArgv, nodeOptions ?? ""].some((argument) => /--(max[-_]old[-_]space[-_]size|heap[-_]growing[-_]percent)/.test(argument))

export interface HeapFacts {
  readonly concurrency: number
  readonly maxEventBytes: number
  /** V8's heap limit in this process (old generation plus young), in bytes */
  readonly heapLimitBytes: number
  readonly heapFlagsGiven: boolean
  /** `process.execve` exists here: POSIX, the main thread, no debugger attached */
  readonly canReexecute: boolean
}

export type HeapPlan =
  | { readonly _tag: "Reexecute"; readonly growingPercent: number }
  | { readonly _tag: "Keep"; readonly neededMb: number; readonly limitMb: number }

/**
 * Re-execute only where V8 would let the heap grow fast: on a smaller host or container (Node sizes the heap from
 * a cgroup's memory limit too) V8 already grows it slowly.
 */
export const planHeap = (facts: HeapFacts): HeapPlan =>
  !facts.heapFlagsGiven && facts.canReexecute && facts.heapLimitBytes >= fastGrowthFromMb * MB
    ? { _tag: "Reexecute", growingPercent: heapGrowingPercent }
    : {
      _tag: "Keep",
      neededMb: heapNeededMb(facts.concurrency, facts.maxEventBytes),
      limitMb: Math.floor(facts.heapLimitBytes / MB)
    }

export const heapLimitMb = (): number => Math.floor(getHeapStatistics().heap_size_limit / MB)

/**
 * Runs first in the worker command, before anything is opened: it either replaces the process (and never
 * returns) or lets it go on, with a warning when the heap is smaller than the settings may need.
 */
export const sizeWorkerHeap = Effect.gen(function*() {
  const { concurrency, maxEventBytes } = yield* workerSettingsConfig
  const execve = process.execve
  const plan = planHeap({
    concurrency,
    maxEventBytes,
    heapLimitBytes: getHeapStatistics().heap_size_limit,
    heapFlagsGiven: heapFlagsGiven(process.execArgv, process.env["NODE_OPTIONS"]),
    canReexecute: execve !== undefined && process.platform !== "win32" && isMainThread && inspectorUrl() === undefined
  })
  if (plan._tag === "Reexecute") {
    const flag = `--heap-growing-percent=${plan.growingPercent}`
    const args = [process.execPath, ...process.execArgv, flag, ...process.argv.slice(1)]
    const env = { ...process.env, MALLOC_ARENA_MAX: process.env["MALLOC_ARENA_MAX"] ?? "2" }
    // returns only if the exec itself failed; the worker then runs on V8's defaults
    return yield* Effect.try(() => execve!(process.execPath, args, env)).pipe(
      Effect.catch((error) =>
        Effect.logWarning(`could not restart with ${flag}; running on V8's heap defaults`).pipe(
          Effect.annotateLogs({ error: String(error.cause) })
        ))
    )
  }
  if (plan.limitMb < plan.neededMb) {
    yield* Effect.logWarning(
      `the heap limit (${plan.limitMb} MB) is below the ${plan.neededMb} MB that CONCURRENCY (${concurrency}) × 3 × ` +
        `MAX_EVENT_BYTES (${maxEventBytes}) + 40 MB may need: large events arriving together would stop the process ` +
        `with "heap out of memory"; raise --max-old-space-size in NODE_OPTIONS or lower those settings`
    )
  }
})
