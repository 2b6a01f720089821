/**
 * Run the built CLI (`dist/main.js`) as real processes, on the Node 22 that `node_modules/.bin` holds.
 *
 * - `buildCli()`: `npm run build` unless `dist/` is newer than every file in `src/`, for a `beforeAll`. Test files
 *   take turns (a lock file), so the first one builds and the others find `dist/` up to date instead of rewriting
 *   it under processes another file has started.
 * - `startCli(args, env)`: a running process, killed when the test's scope closes if it is still running. Only
 *   `PATH`, `HOME` and `TZ` are inherited: each test states the settings it runs with. The operations HTTP
 *   endpoint is off (`HTTP_PORT=0`) unless `env` sets it, so processes running at once never compete for its port.
 * - `runCli(args, env, stdin?)`: run to the end and give its exit code and output.
 * - `terminated(cli)`: SIGTERM, and the exit code once it ended.
 * - `waitUntil(check, description)`: poll until `check` holds (for things another process does).
 */
import { execFile, spawn } from "node:child_process"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { Duration, Effect, Schedule, type Scope } from "effect"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const nodeBinary = join(root, "node_modules", ".bin", "node")
const mainScript = join(root, "dist", "main.js")

const buildIfStale = "if [ ! -f dist/main.js ] || [ -n \"$(find src -newer dist/main.js -print -quit)\" ]; then npm run build; fi"

export const buildCli = async (): Promise<void> => {
  await promisify(execFile)("flock", [join(tmpdir(), "email-senders-build.lock"), "sh", "-c", buildIfStale], { cwd: root })
}

export interface CliProcess {
  readonly pid: number
  /** stdout and stderr so far, interleaved as received */
  readonly output: () => string
  readonly stdout: () => string
  readonly stderr: () => string
  /** the exit code once it ended (null if a signal killed it) */
  readonly exitCode: Effect.Effect<number | null>
  readonly running: () => boolean
  /** wait (up to `timeout`, default 90 s: a loaded machine starts processes slowly) until the output contains `text` */
  readonly waitForOutput: (text: string | RegExp, timeout?: Duration.Input) => Effect.Effect<void>
  /** send SIGTERM; gives the exit code once it ended */
  readonly terminate: Effect.Effect<number | null>
  /** write `text` to its standard input and close it */
  readonly endInput: (text: string) => void
}

export type CliEnv = Readonly<Record<string, string>>

const spawnCli = (args: ReadonlyArray<string>, env: CliEnv): CliProcess => {
  const inherited = Object.fromEntries(
    ["PATH", "HOME", "TZ"].flatMap((name) => process.env[name] === undefined ? [] : [[name, process.env[name]!]])
  )
  const child = spawn(nodeBinary, [mainScript, ...args], {
    cwd: root,
    env: { ...inherited, HTTP_PORT: "0", ...env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  let output = ""
  let stdout = ""
  let stderr = ""
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk
    output += chunk
  })
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
    output += chunk
  })
  const exited = new Promise<number | null>((resolve) => {
    // 'close' comes after both pipes are drained, so the output is complete
    child.once("close", (code) => resolve(code))
  })
  let running = true
  void exited.then(() => {
    running = false
  })
  const exitCode = Effect.promise(() => exited)
  // a process that exits without reading its input closes the pipe: not an error here
  child.stdin.on("error", () => undefined)
  return {
    pid: child.pid!,
    output: () => output,
    stdout: () => stdout,
    stderr: () => stderr,
    exitCode,
    running: () => running,
    waitForOutput: (text, timeout = "90 seconds") =>
      waitUntil(
        () => typeof text === "string" ? output.includes(text) : text.test(output),
        () => `output containing ${String(text)}; got:\n${output.slice(-2000)}`,
        timeout
      ),
    terminate: Effect.suspend(() => {
      if (running) child.kill("SIGTERM")
      return exitCode
    }),
    endInput: (text) => {
      child.stdin.end(text)
    }
  }
}

/** A running CLI process; when the scope closes it is killed (SIGKILL) if it is still running. */
export const startCli = (args: ReadonlyArray<string>, env: CliEnv): Effect.Effect<CliProcess, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => spawnCli(args, env)),
    (cli) =>
      Effect.suspend(() => {
        if (!cli.running()) return Effect.void
        process.kill(cli.pid, "SIGKILL")
        return Effect.asVoid(cli.exitCode)
      })
  )

export interface CliResult {
  readonly exitCode: number | null
  readonly stdout: string
  readonly stderr: string
  readonly output: string
}

/** Run to the end (at most `timeout`), with `stdin` written and closed when given. */
export const runCli = (
  args: ReadonlyArray<string>,
  env: CliEnv,
  options: { readonly stdin?: string; readonly timeout?: Duration.Input } = {}
): Effect.Effect<CliResult> =>
  Effect.scoped(Effect.gen(function*() {
    const cli = yield* startCli(args, env)
    cli.endInput(options.stdin ?? "")
    const exitCode = yield* cli.exitCode.pipe(
      Effect.timeoutOrElse({
        duration: options.timeout ?? "90 seconds",
        orElse: () => Effect.die(new Error(`${args.join(" ")} did not finish; output:\n${cli.output().slice(-2000)}`))
      })
    )
    return { exitCode, stdout: cli.stdout(), stderr: cli.stderr(), output: cli.output() }
  }))

/** SIGTERM, then the exit code; a defect naming the output when the process has not ended 60 s later. */
export const terminated = (cli: CliProcess): Effect.Effect<number | null> =>
  cli.terminate.pipe(
    Effect.timeoutOrElse({
      duration: "60 seconds",
      orElse: () => Effect.die(new Error(`no exit 60 s after SIGTERM; output:\n${cli.output().slice(-2000)}`))
    })
  )

/** Poll every 50 ms until `check` holds, or die after `timeout` naming what was awaited (computed then). */
export const waitUntil = (
  check: () => boolean | Effect.Effect<boolean>,
  description: string | (() => string),
  timeout: Duration.Input = "90 seconds"
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const result = check()
    return typeof result === "boolean" ? Effect.succeed(result) : result
  }).pipe(
    Effect.flatMap((done) => done ? Effect.void : Effect.fail("not yet" as const)),
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo({ duration: timeout }))),
    Effect.catch(() =>
      Effect.die(
        new Error(`waited ${Duration.format(Duration.fromInputUnsafe(timeout))} for ${
          typeof description === "string" ? description : description()
        }`)
      )
    )
  )
