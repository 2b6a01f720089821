#!/usr/bin/env node
/** `node dist/main.js [command]`: the worker by default, plus the operator commands. */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Runtime } from "effect"
import { Command } from "effect/cli"
import { checkCommand } from "./commands/check.ts"
import { dbCommand } from "./commands/db.ts"
import { publishCommand } from "./commands/publish.ts"
import { renderCommand } from "./commands/render.ts"
import { replayCommand } from "./commands/replay.ts"
import { runLiveWorker, workerCommand } from "./commands/worker.ts"
import { reportFailure } from "./commands/reportFailure.ts"
import { statsCommand } from "./commands/stats.ts"
import { templatesCommand } from "./commands/templates.ts"
import * as Logging from "./layers/Logging.ts"
import { packageVersion } from "./packageInfo.ts"
import * as Tracing from "./layers/Tracing.ts"

const emailSenders = Command.make("email-senders", {}, () => runLiveWorker).pipe(
  Command.withDescription("Deliver Zulip-style email_senders events from RabbitMQ over SMTP (default: the worker)"),
  Command.withSubcommands([workerCommand, publishCommand, dbCommand, replayCommand, statsCommand, renderCommand, templatesCommand, checkCommand])
)

emailSenders.pipe(
  Command.run({ version: packageVersion }),
  // every command logs to stderr, its stdout being its output; the worker's log is its stdout (`runLiveWorker`)
  Effect.provide([NodeServices.layer, Logging.layerConfig("stderr"), Tracing.layerConfig]),
  reportFailure,
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // SIGTERM/SIGINT end the worker gracefully: a clean exit (0) for a supervisor, not a crash
    teardown: (exit, onExit) =>
      Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)
  })
)
