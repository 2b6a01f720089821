/**
 * `node bench/pipeline.ts [--events N] [--rounds R] [--smtp] [--template] name=dir …`: the worker's own CPU per email, without
 * the broker. Each `dir` is a checkout of this project (its `src/index.ts` is loaded, with Node's TypeScript
 * transform) or a build (`dist/index.js`); the rounds alternate between them, each in a fresh process, and the
 * minimum and every value are printed, as these machines are noisy.
 *
 * In each process `runWorker` settles N pre-rendered events (the benchmark's) from a queue in memory whose acks do
 * nothing, with the shipped builder, realms in memory and tracing off. By default the SMTP connection answers 250 at
 * once, so only the pipeline is measured; with `--smtp` it is the real pool against the benchmark's sink
 * (`sink.ts`, a process of its own), so what an email keeps alive across its SMTP exchange counts too. With
 * `--template` the events name the shipped `invitation` template instead of carrying their email.
 */
import { Deferred, Effect, Layer, Queue, References } from "effect"
import { execFileSync, fork } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { eventFor, type SinkMessage, templateEventFor } from "./protocol.ts"

const benchDir = dirname(fileURLToPath(import.meta.url))

const measure = async (dir: string, events: number, port: number | null, template: boolean): Promise<void> => {
  const event = template ? templateEventFor : eventFor
  const source = existsSync(join(dir, "src", "index.ts")) ? join(dir, "src", "index.ts") : join(dir, "dist", "index.js")
  const lib = await import(source)
  const main = Effect.gen(function*() {
    const deliveries = yield* Queue.unbounded<unknown>()
    const done = yield* Deferred.make<void>()
    let settled = 0
    const settle = Effect.suspend(() => ++settled === events ? Deferred.succeed(done, undefined) : Effect.void)
    for (let index = 0; index < events; index++) {
      yield* Queue.offer(deliveries, { body: event("pipeline", index), redelivered: false, ack: settle, requeue: () => settle, release: settle })
    }
    const smtp = port === null
      ? Layer.mergeAll(
        Layer.succeed(lib.SmtpConnection, {
          send: (email: { readonly envelope: { readonly to: ReadonlyArray<string> } }) =>
            Effect.succeed({ accepted: email.envelope.to, rejected: [], response: "250 OK" }),
          healthCheck: Effect.void,
          close: Effect.void
        }),
        Layer.succeed(lib.SmtpStatus, { snapshot: Effect.succeed({ capacity: 1, open: 1, busy: 0, waiting: 0, lastCheck: null }) })
      )
      : lib.SmtpPool.layer({ host: "127.0.0.1", port })
    const services = Layer.mergeAll(
      Layer.succeed(lib.QueueConsumer, { take: Queue.take(deliveries), buffered: Queue.size(deliveries) }),
      lib.InMemoryRealms.layer([], []),
      smtp,
      lib.InMemoryStats.layer,
      lib.InMemoryFailures.layer,
      lib.InMemorySuppressionList.layer,
      lib.ZulipEmailBuilder.layer({ templatesDir: join(dir, "templates") })
    )
    const startedAt = performance.now()
    const cpu = process.cpuUsage()
    yield* Effect.forkDetach(Effect.provide(lib.runWorker, services) as Effect.Effect<void>)
    yield* Deferred.await(done)
    const used = process.cpuUsage(cpu)
    const perEmail = (micros: number) => (micros / events).toFixed(1)
    process.stdout.write(`${perEmail((used.user + used.system))} ${perEmail((performance.now() - startedAt) * 1000)}\n`)
  })
  await Effect.runPromise(main.pipe(
    Effect.provideService(References.MinimumLogLevel, "Warn"),
    Effect.provideService(References.TracerEnabled, false)
  ))
  process.exit(0)
}

const startSink = (): Promise<{ readonly port: number; readonly close: () => void }> =>
  new Promise((resolveSink, reject) => {
    const child = fork(join(benchDir, "sink.ts"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
    child.once("error", reject)
    child.on("message", (message: SinkMessage) => {
      if (message.type === "listening") resolveSink({ port: message.port, close: () => child.send({ type: "close" }) })
    })
  })

const main = async (): Promise<void> => {
  const args = process.argv.slice(2)
  const option = (name: string, fallback: number) => {
    const at = args.indexOf(name)
    return at === -1 ? fallback : Number(args.splice(at, 2)[1])
  }
  if (args[0] === "--measure") return measure(args[1]!, Number(args[2]), args[3] === "none" ? null : Number(args[3]), args[4] === "template")
  const events = option("--events", 10_000)
  const rounds = option("--rounds", 4)
  const smtpAt = args.indexOf("--smtp")
  if (smtpAt !== -1) args.splice(smtpAt, 1)
  const templateAt = args.indexOf("--template")
  if (templateAt !== -1) args.splice(templateAt, 1)
  const builds = args.map((pair) => {
    const [name = "", dir = ""] = pair.split("=")
    if (name === "" || dir === "") throw new Error(`expected name=dir, got ${JSON.stringify(pair)}`)
    return { name, dir: resolve(dir), cpu: [] as Array<number> }
  })
  if (builds.length === 0) throw new Error("usage: node bench/pipeline.ts [--events N] [--rounds R] [--smtp] [--template] name=dir …")
  const sink = smtpAt === -1 ? null : await startSink()
  for (let round = 1; round <= rounds; round++) {
    for (const build of builds) {
      const output = execFileSync(
        process.execPath,
        ["--experimental-transform-types", "--no-warnings", fileURLToPath(import.meta.url), "--measure", build.dir, String(events), String(sink?.port ?? "none"), templateAt === -1 ? "pre-rendered" : "template"],
        { encoding: "utf8" }
      )
      const [cpu = "", wall = ""] = output.trim().split("\n").at(-1)!.split(" ")
      build.cpu.push(Number(cpu))
      process.stdout.write(`round ${round} ${build.name}: ${cpu} µs CPU, ${wall} µs wall per email\n`)
    }
  }
  sink?.close()
  process.stdout.write(`\n${events} ${templateAt === -1 ? "pre-rendered" : "template"} events per run, ${sink === null ? "SMTP answered in process" : "the SMTP pool against the sink"}; CPU µs per email:\n`)
  for (const build of builds) {
    process.stdout.write(`${build.name.padEnd(16)} min ${Math.min(...build.cpu).toFixed(1)}   all ${build.cpu.join(" ")}\n`)
  }
}

await main()
