/**
 * Redis for the limits scenarios: the machine's own (127.0.0.1:6379) under a key prefix of the scenario's, whose
 * keys are deleted at the end, or a `redis-server` of the scenario's own on a free port, which it can stop and start
 * again (the machine's is never stopped).
 */
import { Effect, type Scope } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { createServer } from "node:net"
import { promisify } from "node:util"
import { uniqueName } from "../../support/rabbitmq.ts"

const redisCli = (port: number, ...args: Array<string>) =>
  Effect.promise(() => promisify(execFile)("redis-cli", ["-p", String(port), ...args]).then(({ stdout }) => stdout.trim(), () => ""))

/** The keys of the Redis on `port` that match `pattern`. */
export const redisKeys = (port: number, pattern: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.map(redisCli(port, "--scan", "--pattern", pattern), (keys) => keys.split("\n").filter((key) => key !== ""))

/** A key prefix of this scenario's on the machine's Redis; its keys go when the scope closes. */
export const machineRedisPrefix = (name: string): Effect.Effect<{ readonly url: string; readonly prefix: string }, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => ({ url: "redis://127.0.0.1:6379", prefix: `${uniqueName(`faults_${name}`)}:` })),
    ({ prefix }) =>
      // the ledger's store escapes the ":" of its name; both forms start with the prefix's first part
      Effect.flatMap(redisKeys(6379, `${prefix.slice(0, -1)}*`), (keys) =>
        keys.length === 0 ? Effect.void : Effect.asVoid(redisCli(6379, "del", ...keys)))
  )

/** Whether `port` can be listened on at 127.0.0.1 now. */
const bindable = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

/**
 * A free port below the kernel's ephemeral range (32768 and up here): one the kernel handed out for `listen(0)` and
 * that was closed again can be given to the next outgoing connection (a worker's to the broker, Redis or SMTP)
 * before the process it was meant for listens on it.
 */
export const freePort = Effect.promise(async () => {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if (await bindable(port)) return port
  }
})

export interface OwnRedis {
  readonly port: number
  readonly url: string
  /** kill it (SIGKILL, as a crash) */
  readonly stop: Effect.Effect<void>
  /** start it again on the same port, empty */
  readonly start: Effect.Effect<void>
  /** stop it answering, connections left open (SIGSTOP), as a hung server */
  readonly hang: Effect.Effect<void>
  /** let it answer again (SIGCONT) */
  readonly resume: Effect.Effect<void>
}

/**
 * A `redis-server` of the scenario's own, without persistence, killed when the scope closes: its port is chosen
 * but it is not running until `start` (a Redis that comes up after the worker).
 */
export const ownRedisNotStarted: Effect.Effect<OwnRedis, never, Scope.Scope> = Effect.gen(function*() {
  const port = yield* freePort
  let child: ChildProcess | null = null
  const start = Effect.gen(function*() {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore"
    })
    for (let tries = 0; (yield* redisCli(port, "ping")) !== "PONG"; tries++) {
      if (tries > 100) return yield* Effect.die(new Error(`redis-server on port ${port} did not start`))
      yield* Effect.sleep("50 millis")
    }
  })
  const stop = Effect.promise(() =>
    new Promise<void>((resolve) => {
      if (child === null || child.exitCode !== null) return resolve()
      child.once("exit", () => resolve())
      child.kill("SIGKILL")
    })
  )
  const signal = (name: NodeJS.Signals) => Effect.sync(() => void child?.kill(name))
  yield* Effect.addFinalizer(() => Effect.andThen(signal("SIGCONT"), stop))
  return { port, url: `redis://127.0.0.1:${port}`, stop, start, hang: signal("SIGSTOP"), resume: signal("SIGCONT") }
})

/** A `redis-server` of the scenario's own, running, killed when the scope closes. */
export const ownRedis: Effect.Effect<OwnRedis, never, Scope.Scope> = Effect.tap(ownRedisNotStarted, (redis) => redis.start)
