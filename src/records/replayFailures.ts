/**
 * Replay of an `.errors` file (Zulip's `enqueue_file` for it): each recorded event goes back on the queue without
 * its `failed_tries`, for a fresh start.
 *
 * Zulip's file is never written to. What has been replayed is kept in a sidecar `<file>.replayed`: one mark per
 * event, appended and synced only after the broker confirmed that event's publish. A crash can therefore re-send at
 * most the one event being published, and a second replay skips everything already marked. A mark names the event
 * by the SHA-256 of its whole line, which of the identical lines it is (0 for the first), and its index in the
 * line's array: it stays right when the worker appends lines meanwhile, and a rewritten or rotated file can only
 * cause re-sends, never skip an event that was not replayed.
 */
import { Cause, Clock, Console, Effect, FileSystem, Result, Stdio, Stream } from "effect"
import { createHash } from "node:crypto"
import { decodeEmailEvent, isJsonObject, type JsonObject } from "../domain/EmailEvent.ts"
import type { QueueError } from "../domain/errors.ts"
import { checkEventDepth } from "../domain/jsonDepth.ts"
import { type BodyDigest, isCut } from "../domain/recordedBody.ts"
import { defaultWorkerSettings } from "../config/WorkerSettings.ts"

/** One line of an `.errors` file: `asctime` TAB JSON array of events, optionally TAB reason JSON. */
export interface ErrorsRecord {
  /** when it failed, read from `asctime` (local time); null when that field cannot be read */
  readonly time: Date | null
  readonly events: ReadonlyArray<unknown>
  /** the `tag` of the reason column this worker adds; null in Zulip's own two-column lines */
  readonly reasonTag: string | null
  /** the reason column's `body` when the record keeps only part of the body (over `MAX_EVENT_BYTES`) */
  readonly cutBody: BodyDigest | null
  /** the rest of the reason column, as far as it reads; null in Zulip's lines */
  readonly reason: RecordedReason | null
}

/** What the reason column says besides its tag (`records/ErrorsFile.ts` writes it). */
export interface RecordedReason {
  readonly message: string | null
  readonly attempts: number | null
  readonly smtpCode: number | null
}

export interface ReplayFilters {
  /** only records whose reason has this tag, e.g. `Rejected` */
  readonly tag?: string | undefined
  /** only events with this `template_prefix`, or whose short name (the last `/` segment) is this */
  readonly template?: string | undefined
  /** only records that failed at or after this time */
  readonly since?: Date | undefined
  /** only records that failed at or before this time */
  readonly until?: Date | undefined
  /** only the events of these keys (`eventKey`), e.g. the one an operator picked on `/failures` */
  readonly keys?: ReadonlySet<string> | undefined
}

/** An event replayed: published, confirmed and marked. */
export interface ReplayedEvent {
  readonly lineNumber: number
  readonly key: string
  /** its `template_prefix`, or `(pre-rendered)` */
  readonly template: string
}

export type ReplayTarget =
  | { readonly _tag: "DryRun" }
  | {
    readonly _tag: "Publish"
    readonly publishEmail: (event: JsonObject) => Effect.Effect<void, QueueError>
    /** told of each event once it is published and marked */
    readonly onReplayed?: ((replayed: ReplayedEvent) => Effect.Effect<void>) | undefined
  }

export interface ReplayOptions {
  readonly file: string
  /** `MAX_EVENT_DEPTH`: a recorded event nested deeper is refused, as the worker would refuse it (default 64) */
  readonly maxEventDepth?: number | undefined
  readonly filters: ReplayFilters
  readonly target: ReplayTarget
}

export interface ReplaySummary {
  /** lines read, blank ones included */
  readonly lines: number
  /** events published (or, in a dry run, that would be) */
  readonly replayed: number
  /** events skipped because the sidecar marks them as replayed before */
  readonly alreadyReplayed: number
  readonly filteredOut: number
  /** unreadable lines, and events that are not valid events (raw-text bodies, non-objects, schema errors) */
  readonly invalid: number
}

const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
const asctimePattern = /^(?:Sun|Mon|Tue|Wed|Thu|Fri|Sat) ([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})$/

/** Python's `time.asctime()` text (`Tue Mar  4 16:09:25 2025`, local time) as a date, or null. */
export const parseAsctime = (text: string): Date | null => {
  const match = asctimePattern.exec(text)
  if (match === null) return null
  const [, month, day, hours, minutes, seconds, year] = match as unknown as [string, string, string, string, string, string, string]
  const monthIndex = months.indexOf(month)
  if (monthIndex < 0) return null
  return new Date(Number(year), monthIndex, Number(day), Number(hours), Number(minutes), Number(seconds))
}

/** The reason column's tag, the rest of it, and its `body` digest when that says the record was cut. */
const readReason = (text: string | undefined): Pick<ErrorsRecord, "reasonTag" | "cutBody" | "reason"> => {
  const unknownReason = { reasonTag: null, cutBody: null, reason: null }
  if (text === undefined) return unknownReason
  let reason: unknown
  try {
    reason = JSON.parse(text)
  } catch {
    return unknownReason
  }
  if (typeof reason !== "object" || reason === null) return unknownReason
  const { attempts, body, message, smtpCode, tag } = reason as {
    readonly tag?: unknown
    readonly message?: unknown
    readonly attempts?: unknown
    readonly smtpCode?: unknown
    readonly body?: Partial<BodyDigest>
  }
  const cut = typeof body?.bytes === "number" && typeof body.keptBytes === "number" && typeof body.sha256 === "string" &&
    isCut(body as BodyDigest)
  return {
    reasonTag: typeof tag === "string" ? tag : null,
    cutBody: cut ? body as BodyDigest : null,
    reason: {
      message: typeof message === "string" ? message : null,
      attempts: typeof attempts === "number" ? attempts : null,
      smtpCode: typeof smtpCode === "number" ? smtpCode : null
    }
  }
}

/** Read one line; JSON escapes TAB and newline inside strings, so the fields split cleanly on TAB. */
export const parseErrorsLine = (line: string): Result.Result<ErrorsRecord, string> => {
  const fields = line.split("\t")
  if (fields.length < 2 || fields.length > 3) {
    return Result.fail(`not an errors record: expected asctime TAB events [TAB reason], got ${fields.length} field(s)`)
  }
  const [timeText, eventsText, reasonText] = fields as [string, string, string | undefined]
  let events: unknown
  try {
    events = JSON.parse(eventsText)
  } catch (error) {
    return Result.fail(`the events field is not JSON (${(error as Error).message})`)
  }
  if (!Array.isArray(events)) return Result.fail("the events field is not a JSON array")
  return Result.succeed({ time: parseAsctime(timeText), events, ...readReason(reasonText) })
}

/** The filters that apply to a whole record: its reason and its time. */
export const recordSelected = (record: ErrorsRecord, filters: ReplayFilters): boolean =>
  (filters.tag === undefined || record.reasonTag === filters.tag) &&
  (filters.since === undefined || (record.time !== null && record.time >= filters.since)) &&
  (filters.until === undefined || (record.time !== null && record.time <= filters.until))

const templatePrefixOf = (event: JsonObject): string | null =>
  typeof event.template_prefix === "string" ? event.template_prefix : null

/** The template filter, on one event: its full prefix or its short name (what is not an event never matches). */
export const templateSelected = (event: unknown, filters: ReplayFilters): boolean => {
  if (filters.template === undefined) return true
  const prefix = isJsonObject(event) ? templatePrefixOf(event) : null
  return prefix !== null && (prefix === filters.template || prefix.split("/").at(-1) === filters.template)
}

/** What a recorded value that is not an event is, without showing it (it may be a message body). */
const kindOf = (value: unknown): string =>
  typeof value === "string" ? "a raw-text body" : value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`

/**
 * The event for a fresh start: without `failed_tries`, no deeper than `maxEventDepth` and valid by the worker's own
 * schema (else why not).
 */
export const freshEvent = (
  event: unknown,
  maxEventDepth: number = defaultWorkerSettings.maxEventDepth
): Effect.Effect<JsonObject, string> => {
  if (!isJsonObject(event)) return Effect.fail(`not an event object (${kindOf(event)})`)
  const { failed_tries: _spent, ...fresh } = event
  return checkEventDepth(fresh, maxEventDepth).pipe(
    Effect.andThen(decodeEmailEvent(fresh)),
    Effect.as<JsonObject>(fresh),
    Effect.mapError((error) => error.message)
  )
}

/** Why a cut record is not replayed, and how to find the whole message. */
const describeCut = (body: BodyDigest): string =>
  `the record keeps only the first ${body.keptBytes} of the body's ${body.bytes} bytes (cut at MAX_EVENT_BYTES), ` +
  `so it cannot be replayed; the whole body has sha256 ${body.sha256}`

export const replayedMarksPath = (file: string): string => `${file}.replayed`

/** How a mark names an event: its line's SHA-256, which of the identical lines it is, its index in the array. */
export const eventKey = (lineHash: string, occurrence: number, index: number): string => `${lineHash}:${occurrence}:${index}`

const markPattern = /^[0-9a-f]{64}:\d+:\d+$/

const PROGRESS_MIN_BYTES = 1024 * 1024
const TTY_PROGRESS_INTERVAL_MILLIS = 100
const LOG_PROGRESS_INTERVAL_MILLIS = 5_000
const PROGRESS_BAR_WIDTH = 30

/** `45% (12.3 of 27.0 MB, 1234 lines)`. */
export const describeProgress = (doneBytes: number, totalBytes: number, lines: number): string => {
  const megabytes = (bytes: number) => (bytes / 1_000_000).toFixed(1)
  const percent = totalBytes === 0 ? 100 : Math.min(100, Math.floor((doneBytes / totalBytes) * 100))
  return `${String(percent).padStart(3)}% (${megabytes(doneBytes)} of ${megabytes(totalBytes)} MB, ${lines} lines)`
}

/** `[#############.................]  45% (...)` for a terminal. */
export const progressBar = (doneBytes: number, totalBytes: number, lines: number): string => {
  const filled = totalBytes === 0 ? PROGRESS_BAR_WIDTH : Math.min(PROGRESS_BAR_WIDTH, Math.floor((doneBytes / totalBytes) * PROGRESS_BAR_WIDTH))
  return `[${"#".repeat(filled)}${".".repeat(PROGRESS_BAR_WIDTH - filled)}] ${describeProgress(doneBytes, totalBytes, lines)}`
}

/**
 * Progress on standard error for files of a megabyte or more: a bar redrawn in place on a terminal, else a line
 * every few seconds (a log file must not fill with carriage returns). Progress output failing is not an error.
 */
const makeProgress = Effect.fnUntraced(function*(totalBytes: number) {
  const stdio = yield* Stdio.Stdio
  const enabled = totalBytes >= PROGRESS_MIN_BYTES
  const terminal = yield* stdio.stderrIsTerminal
  const write = (text: string) => Stream.run(Stream.make(text), stdio.stderr()).pipe(Effect.ignore)
  const interval = terminal ? TTY_PROGRESS_INTERVAL_MILLIS : LOG_PROGRESS_INTERVAL_MILLIS
  let lastShownMillis = yield* Clock.currentTimeMillis
  const show = (doneBytes: number, lines: number) =>
    write(terminal ? `\r${progressBar(doneBytes, totalBytes, lines)}` : `replay progress: ${describeProgress(doneBytes, totalBytes, lines)}\n`)
  return {
    update: (doneBytes: number, lines: number) =>
      Effect.gen(function*() {
        if (!enabled) return
        const now = yield* Clock.currentTimeMillis
        if (now - lastShownMillis < interval) return
        lastShownMillis = now
        yield* show(doneBytes, lines)
      }),
    finish: (lines: number) =>
      enabled ? show(totalBytes, lines).pipe(Effect.andThen(terminal ? write("\n") : Effect.void)) : Effect.void
  }
})

/**
 * The marks already in the sidecar, each with when it was replayed; a torn last line (a crash mid-append) matches
 * nothing, so it only re-sends.
 */
const readMarks = Effect.fnUntraced(function*(path: string) {
  const fs = yield* FileSystem.FileSystem
  const text = (yield* fs.exists(path)) ? yield* fs.readFileString(path) : ""
  const marks = new Map(
    text.split("\n").map((line) => line.split("\t")).filter(([key]) => markPattern.test(key!)).map(([key, when]) =>
      [key!, when ?? ""] as const
    )
  )
  return { marks, endsMidLine: text !== "" && !text.endsWith("\n") }
})

/** The events of an errors file marked as replayed, each with when (ISO 8601). */
export const readReplayMarks = (file: string) =>
  Effect.map(readMarks(replayedMarksPath(file)), ({ marks }): ReadonlyMap<string, string> => marks)

/** One line of an errors file as it is read, with what names its events in the sidecar. */
export interface ErrorsFileLine {
  /** from 1 */
  readonly lineNumber: number
  readonly line: string
  readonly lineHash: string
  /** which of the identical lines read so far it is (0 for the first) */
  readonly occurrence: number
}

/**
 * The lines of `file` up to `totalBytes` (its size when the reading starts: lines appended meanwhile wait for the
 * next reading), blank ones included.
 */
export const errorsFileLines = (file: string, totalBytes: number) =>
  Stream.unwrap(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const occurrences = new Map<string, number>()
    let lineNumber = 0
    return fs.stream(file, { bytesToRead: totalBytes }).pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.map((line): ErrorsFileLine => {
        lineNumber++
        const lineHash = createHash("sha256").update(line).digest("hex")
        const occurrence = line.trim() === "" ? 0 : occurrences.get(lineHash) ?? 0
        if (line.trim() !== "") occurrences.set(lineHash, occurrence + 1)
        return { lineNumber, line, lineHash, occurrence }
      })
    )
  }))

/** Appends marks, each synced to disk before the next event is published. */
const openMarksWriter = Effect.fnUntraced(function*(path: string, endsMidLine: boolean) {
  const fs = yield* FileSystem.FileSystem
  const file = yield* fs.open(path, { flag: "a", mode: 0o600 })
  const encoder = new TextEncoder()
  let separator = endsMidLine ? "\n" : ""
  return (key: string) =>
    Effect.gen(function*() {
      const now = new Date(yield* Clock.currentTimeMillis).toISOString()
      yield* file.writeAll(encoder.encode(`${separator}${key}\t${now}\n`))
      separator = ""
      yield* file.sync
    })
})

const describeEvent = (event: JsonObject): string => templatePrefixOf(event) ?? "(pre-rendered)"

/** What happens to a selected event: published then marked, or (dry run) printed. */
const makeSend = Effect.fnUntraced(function*(target: ReplayTarget, marksPath: string, endsMidLine: boolean) {
  if (target._tag === "DryRun") {
    return (_key: string, lineNumber: number, record: ErrorsRecord, event: JsonObject) =>
      Console.log(
        `line ${lineNumber}: would replay ${describeEvent(event)} ` +
          `(${record.reasonTag ?? "no reason recorded"}, failed ${record.time?.toISOString() ?? "at an unknown time"})`
      )
  }
  const mark = yield* openMarksWriter(marksPath, endsMidLine)
  const onReplayed = target.onReplayed ?? (() => Effect.void)
  return (key: string, lineNumber: number, _record: ErrorsRecord, event: JsonObject) =>
    target.publishEmail(event).pipe(
      Effect.andThen(mark(key)),
      Effect.andThen(Effect.logDebug(`line ${lineNumber}: replayed ${describeEvent(event)}`)),
      Effect.andThen(onReplayed({ lineNumber, key, template: describeEvent(event) }))
    )
})

/**
 * Replay the events of `options.file` that pass the filters and are not marked in its sidecar, one at a time, each
 * confirmed by the broker and then marked. The file is read up to its size at start: lines the worker appends
 * meanwhile are left for the next replay.
 */
export const replayFailures = Effect.fn("replayFailures")(function*(options: ReplayOptions) {
  const fs = yield* FileSystem.FileSystem
  const { file, filters, target } = options
  const maxEventDepth = options.maxEventDepth ?? defaultWorkerSettings.maxEventDepth
  const totalBytes = Number((yield* fs.stat(file)).size)
  const marksPath = replayedMarksPath(file)
  const { endsMidLine, marks } = yield* readMarks(marksPath)
  const send = yield* makeSend(target, marksPath, endsMidLine)
  const progress = yield* makeProgress(totalBytes)
  let lines = 0
  let doneBytes = 0
  let replayed = 0
  let alreadyReplayed = 0
  let filteredOut = 0
  let invalid = 0

  const replayEvent = Effect.fnUntraced(function*(key: string, lineNumber: number, record: ErrorsRecord, event: unknown) {
    if (marks.has(key)) {
      alreadyReplayed++
      return
    }
    if (!templateSelected(event, filters) || (filters.keys !== undefined && !filters.keys.has(key))) {
      filteredOut++
      return
    }
    if (record.cutBody !== null) {
      invalid++
      return yield* Effect.logWarning(`line ${lineNumber}: skipped, ${describeCut(record.cutBody)}`)
    }
    const fresh = yield* Effect.result(freshEvent(event, maxEventDepth))
    if (Result.isFailure(fresh)) {
      invalid++
      return yield* Effect.logWarning(`line ${lineNumber}: skipped, not a replayable event: ${fresh.failure}`)
    }
    yield* send(key, lineNumber, record, fresh.success)
    replayed++
  })

  /** Each event on its own: one that breaks the replay in a way not foreseen (a defect) is reported and skipped. */
  const replayEventAlone = (key: string, lineNumber: number, record: ErrorsRecord, event: unknown) =>
    replayEvent(key, lineNumber, record, event).pipe(
      Effect.catchCause((cause) =>
        Cause.hasFails(cause) || Cause.hasInterrupts(cause) ? Effect.failCause(cause) : Effect.suspend(() => {
          invalid++
          return Effect.logWarning(`line ${lineNumber}: skipped, it could not be handled: ${Cause.squash(cause)}`)
        })
      )
    )

  yield* errorsFileLines(file, totalBytes).pipe(
    Stream.runForEach(({ line, lineHash, occurrence }) =>
      Effect.gen(function*() {
        lines++
        doneBytes += Buffer.byteLength(line) + 1
        yield* progress.update(doneBytes, lines)
        if (line.trim() === "") return
        const record = parseErrorsLine(line)
        if (Result.isFailure(record)) {
          invalid++
          return yield* Effect.logWarning(`line ${lines}: skipped, ${record.failure}`)
        }
        if (!recordSelected(record.success, filters)) {
          filteredOut += record.success.events.length
          return
        }
        const lineNumber = lines
        yield* Effect.forEach(
          record.success.events,
          (event, index) => replayEventAlone(eventKey(lineHash, occurrence, index), lineNumber, record.success, event),
          { discard: true }
        )
      })
    )
  )
  yield* progress.finish(lines)
  return { lines, replayed, alreadyReplayed, filteredOut, invalid } satisfies ReplaySummary
}, Effect.scoped)
