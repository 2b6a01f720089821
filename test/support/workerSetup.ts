/** What a test of the built worker starts from: a scratch directory, a loopback SMTP server and a queue of its own. */
import { Effect, FileSystem } from "effect"
import { join } from "node:path"
import type { CliEnv } from "./processes.ts"
import { makeAdmin } from "./rabbitmq.ts"
import { smtpServer, type SmtpTestServer } from "./smtpServer.ts"

/** The worker's settings for `queue`, sending to `smtp`, its stats and errors files under `directory`. */
export const workerEnv = (queue: string, smtp: SmtpTestServer, directory: string, extra: CliEnv = {}): CliEnv => ({
  QUEUE_NAME: queue,
  EMAIL_HOST: smtp.host,
  EMAIL_PORT: String(smtp.port),
  QUEUE_STATS_DIR: join(directory, "queue_stats"),
  QUEUE_ERROR_DIR: join(directory, "queue_error"),
  ...extra
})

/** A scratch directory (`prefix`), an SMTP server and a queue, each removed when the scope closes. */
export const workerSetup = (prefix: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped({ prefix })
    const smtp = yield* smtpServer()
    const admin = yield* makeAdmin
    const queue = yield* admin.declareQueue()
    return { directory, smtp, admin, queue }
  })
