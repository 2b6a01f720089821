#!/usr/bin/env node
/** `node dist/main.js [command]`: the worker by default, plus the operator commands. */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Runtime } from "effect"
import { Command } from "effect/cli"
import { checkCommand } from "./commands/check.ts"
import { withCommandServices } from "./commands/commandServices.ts"
import { dbCommand } from "./commands/db.ts"
import { withEnvironment } from "./commands/environmentHelp.ts"
import { publishCommand } from "./commands/publish.ts"
import { renderCommand } from "./commands/render.ts"
import { replayCommand } from "./commands/replay.ts"
import { runLiveWorker, workerCommand } from "./commands/worker.ts"
import { reportFailure } from "./commands/reportFailure.ts"
import { statsCommand } from "./commands/stats.ts"
import { templatesCommand } from "./commands/templates.ts"
import * as Logging from "./layers/Logging.ts"
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
    withCommandServices(checkCommand)
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
