/**
 * The worker process's heap. V8 sizes its heap from the host's memory, not from what the worker holds: on a large
 * host (a cap of 4 GB) it lets the old generation grow to 3–4× the live data between full collections, and the
 * worker peaked at ~220 MB RSS clearing a backlog with ~30 MB live. Under a cap of 1 GB or less, V8 grows it by
 * 1.3–1.6× at most (and glibc keeps fewer malloc arenas half-empty with `MALLOC_ARENA_MAX=2`): ~145 MB, for the
 * same CPU per email (bench/FINDINGS.md). So the worker command, unless the operator chose a heap size, replaces its own
 * process (same pid, `process.execve`) with one that has a cap sized for its settings.
 */
import { Effect } from "effect"
import { url as inspectorUrl } from "node:inspector"
import { getHeapStatistics } from "node:v8"
import { isMainThread } from "node:worker_threads"
import { workerSettingsConfig } from "../layers/WorkerSettingsFromEnv.ts"

const MB = 2 ** 20

/**
 * What the worker may hold at once (deploy/README.md, "Memory"): ~40 MB of its own, and every event in flight
 * three times (its body as text, the parsed event, the built email).
 */
export const heapNeededMb = (concurrency: number, maxEventBytes: number): number =>
  Math.ceil(40 + (concurrency * 3 * maxEventBytes) / MB)

/** Twice the need, and never below 512 MB: room for bursts of large events, still far below V8's own cap. */
export const heapCapMb = (neededMb: number): number => Math.max(512, 2 * neededMb)

/** Whether the operator gave the heap a size, on the command line or in `NODE_OPTIONS` (either spelling). */
export const heapSizeGiven = (execArgv: ReadonlyArray<string>, nodeOptions: string | undefined): boolean =>
  [...execArgv, nodeOptions ?? ""].some((argument) => /--max[-_]old[-_]space[-_]size/.test(argument))

export interface HeapFacts {
  readonly concurrency: number
  readonly maxEventBytes: number
  /** V8's heap limit in this process (old generation plus young), in bytes */
  readonly heapLimitBytes: number
  readonly heapSizeGiven: boolean
  /** `process.execve` exists here: POSIX, the main thread, no debugger attached */
  readonly canReexecute: boolean
}

export type HeapPlan =
  | { readonly _tag: "Reexecute"; readonly maxOldSpaceMb: number }
  | { readonly _tag: "Keep"; readonly neededMb: number; readonly limitMb: number }

/**
 * Re-execute only where V8's own cap is well above the one the worker would set (the young generation adds up to
 * 48 MB to V8's limit): on a small host or container V8 already grows the heap slowly, and a re-executed process
 * has the flag, so it never re-executes twice.
 */
export const planHeap = (facts: HeapFacts): HeapPlan => {
  const neededMb = heapNeededMb(facts.concurrency, facts.maxEventBytes)
  const capMb = heapCapMb(neededMb)
  return !facts.heapSizeGiven && facts.canReexecute && facts.heapLimitBytes > (capMb + 64) * MB
    ? { _tag: "Reexecute", maxOldSpaceMb: capMb }
    : { _tag: "Keep", neededMb, limitMb: Math.floor(facts.heapLimitBytes / MB) }
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
    heapSizeGiven: heapSizeGiven(process.execArgv, process.env["NODE_OPTIONS"]),
    canReexecute: execve !== undefined && process.platform !== "win32" && isMainThread && inspectorUrl() === undefined
  })
  if (plan._tag === "Reexecute") {
    const args = [process.execPath, ...process.execArgv, `--max-old-space-size=${plan.maxOldSpaceMb}`, ...process.argv.slice(1)]
    const env = { ...process.env, MALLOC_ARENA_MAX: process.env["MALLOC_ARENA_MAX"] ?? "2" }
    // returns only if the exec itself failed; the worker then runs on V8's defaults
    return yield* Effect.try(() => execve!(process.execPath, args, env)).pipe(
      Effect.catch((error) =>
        Effect.logWarning(`could not restart with --max-old-space-size=${plan.maxOldSpaceMb}; running on V8's heap defaults`).pipe(
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
