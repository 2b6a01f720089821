/**
 * `FailureStore` appending to `<QUEUE_ERROR_DIR>/<queue>.errors` in Zulip's layout (§2.8 of the Zulip reference):
 * `asctime` TAB JSON array of events, plus a third TAB-separated field with the reason. Zulip's `enqueue_file`
 * replays a line from its second field only, so these files stay replayable with Zulip's tools.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Clock, Effect, FileSystem, Layer } from "effect"
import { join } from "node:path"
import { StoreError } from "../domain/errors.ts"
import { cutToFit, digestBody, isCut } from "../domain/recordedBody.ts"
import { type FailureReason, FailureStore, type FailureRecord } from "./FailureStore.ts"
import { defaultWorkerSettings } from "../config/WorkerSettings.ts"
import { ErrorsDirectorySetting, MaxEventBytesSetting, QueueNameSetting } from "../config/settingValues.ts"

export interface ErrorsFileOptions {
  readonly directory: string
  readonly queueName: string
  /** `MAX_EVENT_BYTES` (default 512 KiB): a record keeps at most this much of its event */
  readonly maxEventBytes?: number | undefined
}

const weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
const twoDigits = (n: number) => String(n).padStart(2, "0")

/** Python's `time.asctime()` in local time, e.g. `Tue Mar  4 16:09:25 2025` (the day is padded with a space). */
const asctime = (date: Date): string =>
  `${weekdays[date.getDay()]} ${months[date.getMonth()]} ${String(date.getDate()).padStart(2, " ")} ` +
  `${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}:${twoDigits(date.getSeconds())} ` +
  `${date.getFullYear()}`

/** `JSON.stringify`, or undefined when the value cannot be serialised (too deep, a cycle, a BigInt). */
const serialised = (value: unknown): string | undefined => {
  try {
    return JSON.stringify(value)
  } catch {
    return undefined
  }
}

/** A reason's message is kept to this many characters, so a record's overhead stays under about 1 KB. */
const MAX_REASON_CHARS = 600

const boundedMessage = (message: string): string =>
  message.length <= MAX_REASON_CHARS
    ? message
    : `${message.slice(0, MAX_REASON_CHARS)}… (${message.length - MAX_REASON_CHARS} more characters)`

/**
 * The record's events field and what it says about the body: the event as is when it serialises within
 * `maxEventBytes`; else the body's text (or the event's JSON text) cut to fit, with the whole body's size and
 * SHA-256. Nothing about the event can make a record unwritable: only the file itself can fail.
 */
const eventsField = (failure: FailureRecord, maxEventBytes: number): { readonly field: string; readonly reason: FailureReason } => {
  const event = serialised(failure.event)
  const reason = { ...failure.reason, message: boundedMessage(failure.reason.message) }
  if (event !== undefined && Buffer.byteLength(event) <= maxEventBytes) return { field: `[${event}]`, reason }
  const why = event === undefined ? "the event cannot be serialised" : `the event is over MAX_EVENT_BYTES (${maxEventBytes})`
  const whole = failure.body ?? event
  if (whole === undefined) {
    return { field: "[]", reason: { ...reason, message: `${reason.message}; ${why}, and there is no body to keep` } }
  }
  const kept = cutToFit(whole, maxEventBytes)
  const body = digestBody(whole, kept)
  const message = isCut(body)
    ? `${reason.message}; ${why}: the body was cut, the record keeps its first ${body.keptBytes} of ${body.bytes} bytes (sha256 ${body.sha256})`
    : `${reason.message}; ${why}: the record keeps the body's text (${body.bytes} bytes, sha256 ${body.sha256})`
  return { field: `[${JSON.stringify(kept)}]`, reason: { ...reason, message, body } }
}

/** One line: JSON escapes every newline inside the event and the reason, so the record cannot span lines. */
const render = (failure: FailureRecord, now: Date, maxEventBytes: number): string => {
  const { field, reason } = eventsField(failure, maxEventBytes)
  const { attempts, body, message, smtpCode, tag } = reason
  return `${asctime(now)}\t${field}\t${JSON.stringify({ tag, message, attempts, smtpCode, ...(body === undefined ? {} : { body }) })}\n`
}

const make = Effect.fnUntraced(function*(options: ErrorsFileOptions) {
  const fs = yield* FileSystem.FileSystem
  const path = join(options.directory, `${options.queueName}.errors`)
  const storeError = (error: unknown) =>
    new StoreError({ message: error instanceof Error ? error.message : String(error), path })
  const record = (failure: FailureRecord) =>
    Effect.gen(function*() {
      const now = new Date(yield* Clock.currentTimeMillis)
      const line = render(failure, now, options.maxEventBytes ?? defaultWorkerSettings.maxEventBytes)
      yield* fs.makeDirectory(options.directory, { recursive: true }).pipe(Effect.mapError(storeError))
      // One write per record on an O_APPEND descriptor: concurrent writers (fibers or processes) each land a whole
      // line at the end of the file, so no lock file is needed.
      yield* fs.writeFileString(path, line, { flag: "a", mode: 0o600 }).pipe(Effect.mapError(storeError))
    })
  return FailureStore.of({ record })
})

export const layer = (options: ErrorsFileOptions) =>
  Layer.effect(FailureStore, make(options)).pipe(Layer.provide(NodeFileSystem.layer))

/** `QUEUE_ERROR_DIR` (default `var/queue_error`), `QUEUE_NAME` (default `email_senders`) and `MAX_EVENT_BYTES`. */
export const layerConfig = Layer.unwrap(
  Effect.gen(function*() {
    return layer({
      directory: yield* ErrorsDirectorySetting,
      queueName: yield* QueueNameSetting,
      maxEventBytes: yield* MaxEventBytesSetting
    })
  })
)
