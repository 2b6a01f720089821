import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as RabbitMqConnection from "../queue/RabbitMqConnection.ts"
import * as RabbitMqPublisher from "../queue/RabbitMqPublisher.ts"
import { MaxEventDepthSetting } from "../config/settingValues.ts"
import { replayedMarksPath, replayFailures, type ReplaySummary } from "../records/replayFailures.ts"
import { QueuePublisher } from "../queue/QueuePublisher.ts"
import { withEnvironment } from "./environmentHelp.ts"

const summaryLine = (file: string, queue: string, dryRun: boolean, summary: ReplaySummary): string =>
  `${dryRun ? "would replay" : "replayed"} ${summary.replayed} event(s) from ${file} to ${queue} ` +
  `(${summary.lines} line(s) read; already replayed: ${summary.alreadyReplayed}; filtered out: ${summary.filteredOut}; ` +
  `invalid, skipped: ${summary.invalid})`

/** The exit code of a replay that went through but refused some records. */
const REFUSED_RECORDS_EXIT_CODE = 2

const optional = <A>(flag: Flag.Flag<A>, description: string) =>
  flag.pipe(Flag.withDescription(description), Flag.optional)

/** Zulip's `enqueue_file` for an `.errors` file, with filters, a dry run, and a sidecar so nothing is sent twice. */
export const replayCommand = Command.make("replay", {
  file: Argument.File("file", { mustExist: true }).pipe(
    Argument.withDescription("the .errors file (QUEUE_ERROR_DIR/<queue>.errors)")
  ),
  dryRun: Flag.Boolean("dry-run").pipe(
    Flag.withDescription("print what would be replayed; publish and mark nothing"),
    Flag.withDefault(false)
  ),
  tag: optional(
    Flag.String("tag"),
    "only records whose reason has this error tag (e.g. Rejected, NotDelivered, InvalidEvent)"
  ),
  template: optional(
    Flag.String("template"),
    "only events with this template_prefix, or this short name (e.g. password_reset)"
  ),
  since: optional(Flag.Date("since"), "only records that failed at or after this time (ISO 8601; 2025-03-04T16:00 is local time)"),
  until: optional(Flag.Date("until"), "only records that failed at or before this time (ISO 8601)"),
  queue: optional(Flag.String("queue"), "the queue to publish to (default: QUEUE_NAME, else email_senders)")
}, ({ dryRun, file, queue, since, tag, template, until }) =>
  Effect.gen(function*() {
    const filters = {
      tag: Option.getOrUndefined(tag),
      template: Option.getOrUndefined(template),
      since: Option.getOrUndefined(since),
      until: Option.getOrUndefined(until)
    }
    const queueName = Option.isSome(queue) ? queue.value : yield* RabbitMqConnection.queueNameConfig
    const maxEventDepth = yield* MaxEventDepthSetting
    const summary = dryRun
      ? yield* replayFailures({ file, filters, maxEventDepth, target: { _tag: "DryRun" } })
      : yield* Effect.gen(function*() {
        const publisher = yield* QueuePublisher
        return yield* replayFailures({
          file,
          filters,
          maxEventDepth,
          target: { _tag: "Publish", publishEmail: publisher.publishEmail }
        })
      }).pipe(Effect.provide(RabbitMqPublisher.layerConfig(queueName)))
    yield* Console.log(summaryLine(file, queueName, dryRun, summary))
    if (!dryRun) yield* Console.log(`replayed events are marked in ${replayedMarksPath(file)}`)
    // 2: the run went through, but some records were refused (each named on stderr); a failure exits 1
    if (summary.invalid > 0) process.exitCode = REFUSED_RECORDS_EXIT_CODE
  })).pipe(
    withEnvironment(
      "Re-enqueue the events of an .errors file without failed_tries (a fresh start); replayed events are marked " +
        "in <file>.replayed so a second replay does not send them again. Exit 0: every selected record replayed; " +
        "2: some records refused (each named); 1: failure",
      "replay"
    ),
    Command.withExamples([
      { command: "email-senders replay var/queue_error/email_senders.errors --dry-run", description: "list what would be replayed" },
      {
        command: "email-senders replay var/queue_error/email_senders.errors --tag NotDelivered --since 2025-03-04",
        description: "replay the transient failures since a date"
      }
    ])
  )
