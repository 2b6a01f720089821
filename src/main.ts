#!/usr/bin/env node
/** `node dist/main.js [command]`: the worker by default, plus the operator commands. */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Cause, Effect, Exit, Runtime } from "effect"
import { Command } from "effect/cli"
import { checkCommand } from "./cli/check.ts"
import { withCommandServices } from "./cli/commandServices.ts"
import { dbCommand } from "./cli/db.ts"
import { withEnvironment } from "./cli/environmentHelp.ts"
import { moveQueueCommand } from "./cli/moveQueue.ts"
import { publishCommand } from "./cli/publish.ts"
import { renderCommand } from "./cli/render.ts"
import { replayCommand } from "./cli/replay.ts"
import { runLiveWorker, workerCommand } from "./cli/worker.ts"
import { reportFailure } from "./cli/reportFailure.ts"
import { statsCommand } from "./cli/stats.ts"
import { templatesCommand } from "./cli/templates.ts"
import * as Logging from "./operations/Logging.ts"
import { packageVersion } from "./packageInfo.ts"

const emailSenders = Command.make("email-senders", {}, () => runLiveWorker).pipe(
  withEnvironment("Deliver Zulip-style email_senders events from RabbitMQ over SMTP (default: the worker)", "worker"),
  // each command has its log and spans (`commandServices`): the worker's in `runLiveWorker`, `stats`'s in its handler
  Command.withSubcommands([
    workerCommand,
    withCommandServices(publishCommand),
    withCommandServices(dbCommand),
    withCommandServices(replayCommand),
    statsCommand,
    withCommandServices(renderCommand),
    withCommandServices(templatesCommand),
    withCommandServices(checkCommand),
    withCommandServices(moveQueueCommand)
  ])
)

emailSenders.pipe(
  Command.run({ version: packageVersion }),
  Effect.provide([NodeServices.layer, Logging.cliConfig]),
  reportFailure,
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // SIGTERM/SIGINT end the worker gracefully: a clean exit (0) for a supervisor, not a crash
    teardown: (exit, onExit) =>
      Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)
  })
)
