/**
 * What an errors file holds, for the `/failures` page: its failures filtered as `replay` filters them (tag,
 * template, time range), counted by reason tag and by template over time, the newest listed, and one of them in
 * full. Each failure is one event of a line, named by the key its replay mark would have (`eventKey`), so the page
 * shows which were replayed and replays exactly the ones it shows.
 */
import { Effect, FileSystem, Result, Stream } from "effect"
import { isJsonObject } from "../domain/EmailEvent.ts"
import {
  errorsFileLines,
  eventKey,
  parseErrorsLine,
  readReplayMarks,
  type RecordedReason,
  recordSelected,
  type ReplayFilters,
  templateSelected
} from "./replayFailures.ts"

/** One recorded failure: one event of one line. */
export interface RecordedFailure {
  readonly key: string
  readonly lineNumber: number
  /** when it failed (local time, from `asctime`); null when unreadable */
  readonly time: Date | null
  /** the reason's error tag; null in Zulip's two-column lines */
  readonly tag: string | null
  /** the event's `template_prefix`, `(pre-rendered)` for an event without, `(not an event)` for anything else */
  readonly template: string
  readonly reason: RecordedReason | null
  /** the record keeps only part of the body (cut at `MAX_EVENT_BYTES`): it cannot be replayed */
  readonly cut: boolean
  readonly event: unknown
  /** when it was replayed (ISO 8601), from the sidecar marks; null if never */
  readonly replayedAt: string | null
}

/** Counts in one period: by tag and by template. */
export interface CountsPeriod {
  /** the period's start */
  readonly start: Date
  readonly total: number
  readonly byTag: ReadonlyMap<string, number>
  readonly byTemplate: ReadonlyMap<string, number>
}

export interface FailureListing {
  /** the failures that match, newest first, at most `limit` */
  readonly failures: ReadonlyArray<RecordedFailure>
  /** how many match */
  readonly matching: number
  /** of those, how many are marked as replayed */
  readonly replayed: number
  /** `hour` while the matching failures span two days or less, else `day` */
  readonly period: "hour" | "day"
  /** the matching failures counted per period, oldest first (periods without any left out) */
  readonly counts: ReadonlyArray<CountsPeriod>
  /** every tag and template in the file, for the filters' choices (a tag only where the line has a reason) */
  readonly tags: ReadonlyArray<string>
  readonly templates: ReadonlyArray<string>
  /** lines that are not errors records */
  readonly unreadableLines: number
}

export const NO_TAG = "(no reason recorded)"
const PRE_RENDERED = "(pre-rendered)"
export const NOT_AN_EVENT = "(not an event)"

const templateOf = (event: unknown): string =>
  isJsonObject(event) ? typeof event.template_prefix === "string" ? event.template_prefix : PRE_RENDERED : NOT_AN_EVENT

const HOUR_MILLIS = 3600 * 1000

/** The start of the local hour or day of `time`. */
const periodStart = (time: Date, period: "hour" | "day"): number =>
  period === "hour"
    ? new Date(time.getFullYear(), time.getMonth(), time.getDate(), time.getHours()).getTime()
    : new Date(time.getFullYear(), time.getMonth(), time.getDate()).getTime()

const increment = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)

/**
 * Read every failure of `file` (up to its size now), calling `visit` with each one and whether it passes
 * `filters`; gives the number of unreadable lines. Nothing is kept here: the caller keeps what it needs.
 */
const eachFailure = (
  file: string,
  filters: ReplayFilters,
  visit: (failure: RecordedFailure, selected: boolean) => void
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const totalBytes = Number((yield* fs.stat(file)).size)
    const marks = yield* readReplayMarks(file)
    let unreadableLines = 0
    yield* errorsFileLines(file, totalBytes).pipe(
      Stream.runForEach(({ line, lineHash, lineNumber, occurrence }) =>
        Effect.sync(() => {
          if (line.trim() === "") return
          const parsed = parseErrorsLine(line)
          if (Result.isFailure(parsed)) {
            unreadableLines++
            return
          }
          const record = parsed.success
          const recordMatches = recordSelected(record, filters)
          record.events.forEach((event, index) => {
            const key = eventKey(lineHash, occurrence, index)
            visit({
              key,
              lineNumber,
              time: record.time,
              tag: record.reasonTag,
              template: templateOf(event),
              reason: record.reason,
              cut: record.cutBody !== null,
              event,
              replayedAt: marks.get(key) ?? null
            }, recordMatches && templateSelected(event, filters) && (filters.keys === undefined || filters.keys.has(key)))
          })
        })
      )
    )
    return unreadableLines
  })

/** The failures of `file` that pass `filters`, counted, with the newest `limit` listed. */
export const listFailures = Effect.fnUntraced(function*(file: string, filters: ReplayFilters, limit: number) {
  const newest: Array<RecordedFailure> = []
  const tags = new Set<string>()
  const templates = new Set<string>()
  const hourly = new Map<number, { byTag: Map<string, number>; byTemplate: Map<string, number>; total: number }>()
  let matching = 0
  let replayed = 0
  let first = Number.POSITIVE_INFINITY
  let last = Number.NEGATIVE_INFINITY
  const unreadableLines = yield* eachFailure(file, filters, (failure, selected) => {
    // Zulip's own lines have no tag to filter by
    if (failure.tag !== null) tags.add(failure.tag)
    templates.add(failure.template)
    if (!selected) return
    matching++
    if (failure.replayedAt !== null) replayed++
    // the file is in the order failures happened: the last ones read are the newest
    newest.push({ ...failure, event: null })
    if (newest.length > limit) newest.shift()
    if (failure.time === null) return
    const time = failure.time.getTime()
    first = Math.min(first, time)
    last = Math.max(last, time)
    const hour = periodStart(failure.time, "hour")
    const counts = hourly.get(hour) ?? { byTag: new Map(), byTemplate: new Map(), total: 0 }
    increment(counts.byTag, failure.tag ?? NO_TAG)
    increment(counts.byTemplate, failure.template)
    hourly.set(hour, { ...counts, total: counts.total + 1 })
  })
  const period = last - first <= 48 * HOUR_MILLIS ? "hour" : "day"
  const periods = new Map<number, { byTag: Map<string, number>; byTemplate: Map<string, number>; total: number }>()
  for (const [hour, counts] of [...hourly].sort(([a], [b]) => a - b)) {
    const start = periodStart(new Date(hour), period)
    const into = periods.get(start) ?? { byTag: new Map(), byTemplate: new Map(), total: 0 }
    for (const [tag, count] of counts.byTag) into.byTag.set(tag, (into.byTag.get(tag) ?? 0) + count)
    for (const [template, count] of counts.byTemplate) into.byTemplate.set(template, (into.byTemplate.get(template) ?? 0) + count)
    periods.set(start, { ...into, total: into.total + counts.total })
  }
  return {
    failures: newest.reverse(),
    matching,
    replayed,
    period,
    counts: [...periods].map(([start, counts]): CountsPeriod => ({ start: new Date(start), ...counts })),
    tags: [...tags].sort(),
    templates: [...templates].sort(),
    unreadableLines
  } satisfies FailureListing
})

/** One failure of `file` in full, by its key; none when no event has that key. */
export const findFailure = Effect.fnUntraced(function*(file: string, key: string) {
  let found: RecordedFailure | undefined
  yield* eachFailure(file, { keys: new Set([key]) }, (failure, selected) => {
    if (selected) found = failure
  })
  return found
})
