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
  notes: string
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
    notes
  }
}

const columns = ["scenario", "published", "delivered", "duplicates", "failed", "queued", "lost", "seconds", "result", "notes"] as const
type Cells = Record<(typeof columns)[number], string>

const cellsOf = (name: string, row: FaultRow | undefined, result: string): Cells => {
  if (row === undefined) {
    const none = "-"
    return { scenario: name, published: none, delivered: none, duplicates: none, failed: none, queued: none, lost: none, seconds: none, result, notes: "no accounting: it stopped before the end" }
  }
  const { scenario, notes, ...numbers } = row
  const shown = Object.fromEntries(Object.entries(numbers).map(([key, value]) => [key, String(value)]))
  return { ...shown, scenario, notes, result } as Cells
}

export class FaultSummary implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    const rows = testModules
      .flatMap((module) => [...module.children.allTests()])
      .map((test) => cellsOf(test.name, test.meta().faultRow, test.result().state))
      .sort((a, b) => a.scenario.localeCompare(b.scenario))
    const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => row[column].length)))
    const line = (cells: ReadonlyArray<string>) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ").trimEnd()
    const table = [line(columns), widths.map((width) => "-".repeat(width)).join("-|-"), ...rows.map((row) => line(columns.map((column) => row[column])))]
    process.stdout.write(`\nFault-injection summary\n${table.join("\n")}\n`)
  }
}
