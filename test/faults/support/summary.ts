/**
 * The summary table of a fault run: each scenario stores its row in its test's `meta`, and the reporter prints all
 * rows once the run ends, passed or not, so a broken bound is seen next to the numbers.
 */
import type { TaskMeta } from "vitest"
import type { Reporter, TestModule } from "vitest/node"
import type { Tally } from "./ledger.ts"

export interface FaultRow {
  readonly scenario: string
  readonly published: number
  readonly delivered: number
  readonly duplicates: number
  readonly failed: number
  readonly queued: number
  readonly lost: number
  readonly seconds: number
  /** the longest pause in delivery after the fault struck, for the scenarios that measure it */
  readonly resumeSeconds?: number
  /** what else the scenario measured (bounds, timings) */
  readonly notes: string
}

declare module "vitest" {
  interface TaskMeta {
    faultRow?: FaultRow
  }
}

/** Store the row on the running test, where the reporter finds it. */
export const recordRow = (
  task: { readonly meta: TaskMeta },
  scenario: string,
  counts: Tally,
  startedAtMillis: number,
  notes: string,
  resumeSeconds?: number
): void => {
  task.meta.faultRow = {
    scenario,
    published: counts.published,
    delivered: counts.delivered,
    duplicates: counts.duplicates,
    failed: counts.failed,
    queued: counts.queued,
    lost: counts.lost,
    seconds: Math.round((Date.now() - startedAtMillis) / 100) / 10,
    ...(resumeSeconds === undefined ? {} : { resumeSeconds: Math.round(resumeSeconds * 10) / 10 }),
    notes
  }
}

const allColumns = ["scenario", "published", "delivered", "duplicates", "failed", "queued", "lost", "seconds", "resumeSeconds", "result", "notes"] as const
type Column = (typeof allColumns)[number]
type Cells = Record<Column, string>

const headings: Partial<Record<Column, string>> = { resumeSeconds: "time to resume (s)" }

const cellsOf = (name: string, row: FaultRow | undefined, result: string): Cells => {
  if (row === undefined) {
    const none = "-"
    return { scenario: name, published: none, delivered: none, duplicates: none, failed: none, queued: none, lost: none, seconds: none, resumeSeconds: none, result, notes: "no accounting: it stopped before the end" }
  }
  const { scenario, notes, ...numbers } = row
  const shown = Object.fromEntries(Object.entries(numbers).map(([key, value]) => [key, String(value)]))
  return { resumeSeconds: "-", ...shown, scenario, notes, result } as Cells
}

/** Prints the table under `title`; the time-to-resume column only with `resume`. */
export class FaultSummary implements Reporter {
  constructor(private readonly title = "Fault-injection summary", private readonly resume = false) {}

  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    const columns = allColumns.filter((column) => this.resume || column !== "resumeSeconds")
    const rows = testModules
      .flatMap((module) => [...module.children.allTests()])
      .map((test) => cellsOf(test.name, test.meta().faultRow, test.result().state))
      .sort((a, b) => a.scenario.localeCompare(b.scenario))
    const heading = (column: Column) => headings[column] ?? column
    const widths = columns.map((column) => Math.max(heading(column).length, ...rows.map((row) => row[column].length)))
    const line = (cells: ReadonlyArray<string>) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ").trimEnd()
    const table = [line(columns.map(heading)), widths.map((width) => "-".repeat(width)).join("-|-"), ...rows.map((row) => line(columns.map((column) => row[column])))]
    process.stdout.write(`\n${this.title}\n${table.join("\n")}\n`)
  }
}
