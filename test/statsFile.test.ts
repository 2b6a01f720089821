import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { join } from "node:path"
import * as StatsFile from "../src/records/StatsFile.ts"
import { StatsWriter } from "../src/records/StatsWriter.ts"

/** A fresh directory for the test, removed with its scope, and a writer whose stats dir does not exist yet. */
const setup = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const root = yield* fs.makeTempDirectoryScoped({ prefix: "es-stats-" })
  const directory = join(root, "queue_stats")
  const writer = yield* StatsWriter.pipe(
    Effect.provide(StatsFile.layer({ directory, queueName: "email_senders" }))
  )
  return { fs, directory, path: join(directory, "email_senders.stats"), writer }
}).pipe(Effect.provide(NodeFileSystem.layer))

describe("StatsFile", () => {
  it.effect("writes Zulip's exact bytes: keys in order, 2-space indent, trailing newline", () =>
    Effect.gen(function*() {
      const { fs, path, writer } = yield* setup
      // keys deliberately out of order: the file must still follow Zulip's order
      yield* writer.write({
        consumed_since_last_emptied: 3,
        queue_last_emptied_timestamp: 1700000000.5,
        recent_average_consume_time: 0.125,
        update_time: 1700000012.25
      })
      assert.strictEqual(
        yield* fs.readFileString(path),
        "{\n" +
          "  \"update_time\": 1700000012.25,\n" +
          "  \"recent_average_consume_time\": 0.125,\n" +
          "  \"queue_last_emptied_timestamp\": 1700000000.5,\n" +
          "  \"consumed_since_last_emptied\": 3\n" +
          "}\n"
      )
    }))

  it.effect("writes null before the first batch and integral floats as plain numbers", () =>
    Effect.gen(function*() {
      const { fs, path, writer } = yield* setup
      yield* writer.write({
        update_time: 1700000000,
        recent_average_consume_time: null,
        queue_last_emptied_timestamp: 1700000000,
        consumed_since_last_emptied: 0
      })
      assert.deepStrictEqual(JSON.parse(yield* fs.readFileString(path)), {
        update_time: 1700000000,
        recent_average_consume_time: null,
        queue_last_emptied_timestamp: 1700000000,
        consumed_since_last_emptied: 0
      })
      assert.include(yield* fs.readFileString(path), "\"recent_average_consume_time\": null,\n")
    }))

  it.effect("replaces the file atomically and leaves no temporary file, even with overlapping writes", () =>
    Effect.gen(function*() {
      const { fs, directory, path, writer } = yield* setup
      const stats = (n: number) => ({
        update_time: 1700000000.5 + n,
        recent_average_consume_time: n / 8,
        queue_last_emptied_timestamp: 1700000000.5,
        consumed_since_last_emptied: n
      })
      yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], (n) => writer.write(stats(n)), { concurrency: "unbounded" })
      const written = JSON.parse(yield* fs.readFileString(path))
      assert.deepStrictEqual(written, stats(written.consumed_since_last_emptied))
      yield* writer.write(stats(9))
      assert.deepStrictEqual(JSON.parse(yield* fs.readFileString(path)), stats(9))
      assert.deepStrictEqual(yield* fs.readDirectory(directory), ["email_senders.stats"])
    }))

  it.effect("fails with StoreError naming the file when the directory cannot be created", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const root = yield* fs.makeTempDirectoryScoped({ prefix: "es-stats-" })
      const blocker = join(root, "not-a-directory")
      yield* fs.writeFileString(blocker, "")
      const writer = yield* StatsWriter.pipe(
        Effect.provide(StatsFile.layer({ directory: blocker, queueName: "email_senders" }))
      )
      const error = yield* Effect.flip(writer.write({
        update_time: 1,
        recent_average_consume_time: null,
        queue_last_emptied_timestamp: 1,
        consumed_since_last_emptied: 0
      }))
      assert.strictEqual(error._tag, "StoreError")
      assert.strictEqual(error.path, join(blocker, "email_senders.stats"))
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
