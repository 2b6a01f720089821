/**
 * `FailureStore` appending to `<QUEUE_ERROR_DIR>/<queue>.errors` in Zulip's layout (§2.8 of the Zulip reference):
 * `asctime` TAB JSON array of events, plus a third TAB-separated field with the reason. Zulip's `enqueue_file`
 * replays a line from its second field only, so these files stay replayable with Zulip's tools.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { Clock, Config, Effect, FileSystem, Layer } from "effect"
import { join } from "node:path"
import { StoreError } from "../domain/errors.ts"
import { FailureStore, type FailureRecord } from "../services/FailureStore.ts"
import { QueueNameSetting } from "./settingValues.ts"

export interface ErrorsFileOptions {
  readonly directory: string
  readonly queueName: string
}

const weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
const twoDigits = (n: number) => String(n).padStart(2, "0")

/** Python's `time.asctime()` in local time, e.g. `Tue Mar  4 16:09:25 2025` (the day is padded with a space). */
const asctime = (date: Date): string =>
  `${weekdays[date.getDay()]} ${months[date.getMonth()]} ${String(date.getDate()).padStart(2, " ")} ` +
  `${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}:${twoDigits(date.getSeconds())} ` +
  `${date.getFullYear()}`

/** One line: JSON escapes every newline inside the event and the reason, so the record cannot span lines. */
const render = (failure: FailureRecord, now: Date): string => {
  const { tag, message, attempts, smtpCode } = failure.reason
  return `${asctime(now)}\t${JSON.stringify([failure.event])}\t${
    JSON.stringify({ tag, message, attempts, smtpCode })
  }\n`
}

const make = Effect.fnUntraced(function*(options: ErrorsFileOptions) {
  const fs = yield* FileSystem.FileSystem
  const path = join(options.directory, `${options.queueName}.errors`)
  const storeError = (error: unknown) =>
    new StoreError({ message: error instanceof Error ? error.message : String(error), path })
  const record = (failure: FailureRecord) =>
    Effect.gen(function*() {
      const now = new Date(yield* Clock.currentTimeMillis)
      const line = yield* Effect.try({ try: () => render(failure, now), catch: storeError })
      yield* fs.makeDirectory(options.directory, { recursive: true }).pipe(Effect.mapError(storeError))
      // One write per record on an O_APPEND descriptor: concurrent writers (fibers or processes) each land a whole
      // line at the end of the file, so no lock file is needed.
      yield* fs.writeFileString(path, line, { flag: "a", mode: 0o600 }).pipe(Effect.mapError(storeError))
    })
  return FailureStore.of({ record })
})

export const layer = (options: ErrorsFileOptions) =>
  Layer.effect(FailureStore, make(options)).pipe(Layer.provide(NodeFileSystem.layer))

/** `QUEUE_ERROR_DIR` (default `var/queue_error`) and `QUEUE_NAME` (default `email_senders`). */
export const layerConfig = Layer.unwrap(
  Effect.gen(function*() {
    return layer({
      directory: yield* Config.String("QUEUE_ERROR_DIR").pipe(Config.withDefault("var/queue_error")),
      queueName: yield* QueueNameSetting
    })
  })
)
