/**
 * `StatsWriter` to `<QUEUE_STATS_DIR>/<queue>.stats`, byte for byte the file Zulip writes (§2.7 of the Zulip
 * reference), so Zulip's `check_rabbitmq_queue` can monitor this worker unchanged.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, FileSystem, Layer, Semaphore } from "effect"
import { randomUUID } from "node:crypto"
import { join } from "node:path"
import { StoreError } from "../domain/errors.ts"
import { StatsWriter, type QueueStats } from "./StatsWriter.ts"
import { QueueNameSetting, StatsDirectorySetting } from "../config/settingValues.ts"

export interface StatsFileOptions {
  readonly directory: string
  readonly queueName: string
}

/** `orjson` with `OPT_INDENT_2 | OPT_APPEND_NEWLINE`, keys in Zulip's order whatever the caller's object order. */
const render = (stats: QueueStats): string =>
  JSON.stringify({
    update_time: stats.update_time,
    recent_average_consume_time: stats.recent_average_consume_time,
    queue_last_emptied_timestamp: stats.queue_last_emptied_timestamp,
    consumed_since_last_emptied: stats.consumed_since_last_emptied
  }, null, 2) + "\n"

const make = Effect.fnUntraced(function*(options: StatsFileOptions) {
  const fs = yield* FileSystem.FileSystem
  const path = join(options.directory, `${options.queueName}.stats`)
  // Readers only ever see a whole file because it is replaced by rename. Zulip also locks `<file>.lock` because all
  // its workers share one `<file>.tmp`; a temporary name of our own per writer gives the same safety without a lock
  // file (which could go stale after a crash), and the semaphore orders this writer's own overlapping writes.
  const temporaryPath = `${path}.${randomUUID()}.tmp`
  const oneWriteAtATime = yield* Semaphore.make(1)
  const write = (stats: QueueStats) =>
    Effect.gen(function*() {
      yield* fs.makeDirectory(options.directory, { recursive: true })
      yield* fs.writeFileString(temporaryPath, render(stats))
      yield* fs.rename(temporaryPath, path)
    }).pipe(
      oneWriteAtATime.withPermit,
      Effect.mapError((error) => new StoreError({ message: error.message, path }))
    )
  return StatsWriter.of({ write })
})

export const layer = (options: StatsFileOptions) =>
  Layer.effect(StatsWriter, make(options)).pipe(Layer.provide(NodeFileSystem.layer))

/** `QUEUE_STATS_DIR` (default `var/queue_stats`) and `QUEUE_NAME` (default `email_senders`). */
export const layerConfig = Layer.unwrap(
  Effect.gen(function*() {
    return layer({
      directory: yield* StatsDirectorySetting,
      queueName: yield* QueueNameSetting
    })
  })
)
