/**
 * Does error tracking slow delivery down? The pipeline in process (in-memory queue and
 * SMTP, so only the worker's own work and Sentry's are measured) settles N events, half of them failing (each a
 * Sentry report), without Sentry, with a Sentry that answers, one that never answers, and one that refuses
 * connections. Prints events per second and CPU time per event (the median of `BENCH_RUNS` runs, default 5, the scenarios taking turns)
 * for each. Run it with `npx node --experimental-transform-types bench/sentry.ts` (it imports `src/` directly).
 */
import { Effect, Layer, References } from "effect"
import { createServer, type Server } from "node:http"
import * as InMemoryEmailBuilder from "../src/email/InMemoryEmailBuilder.ts"
import * as ErrorTracking from "../src/operations/ErrorTracking.ts"
import { consumeBatch } from "../src/pipeline/settleDelivery.ts"
import { InMemoryFailures } from "../src/records/InMemoryFailureStore.ts"
import { InMemoryStats } from "../src/records/InMemoryStatsWriter.ts"
import { InMemoryQueue } from "../src/queue/InMemoryQueue.ts"
import { QueueConsumer } from "../src/queue/QueueConsumer.ts"
import { InMemoryRealms } from "../src/realms/InMemoryRealmRepository.ts"
import { InMemorySmtp } from "../src/smtp/InMemorySmtp.ts"
import { InMemorySuppressionList } from "../src/smtp/InMemorySuppressionList.ts"

const events = Number(process.env["BENCH_N"] ?? "20000")
const runs = Number(process.env["BENCH_RUNS"] ?? "5")

const listen = (server: Server): Promise<number> =>
  new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      resolve(typeof address === "object" && address !== null ? address.port : 0)
    })
  })

/** A Sentry ingest endpoint that answers every envelope, or (`hang`) reads it and never answers. */
const fakeSentry = async (mode: "accept" | "hang") => {
  let envelopes = 0
  const server = createServer((request, response) => {
    request.resume()
    request.on("end", () => {
      envelopes++
      if (mode === "accept") response.writeHead(200).end("{}")
    })
  })
  const port = await listen(server)
  return {
    dsn: `http://public@127.0.0.1:${port}/1`,
    envelopes: () => envelopes,
    close: () => {
      server.closeAllConnections()
      server.close()
    }
  }
}

const closedPort = async (): Promise<number> => {
  const server = createServer()
  const port = await listen(server)
  await new Promise((resolve) => server.close(resolve))
  return port
}

const pipeline = Layer.mergeAll(
  InMemorySmtp.layer,
  InMemorySuppressionList.layer,
  InMemoryQueue.layer,
  InMemoryFailures.layer,
  InMemoryStats.layer,
  InMemoryRealms.layer({ realms: [], users: [] }),
  InMemoryEmailBuilder.layer({ "zerver/emails/password_reset": { subject: "Reset your password", text: "Reset it" } }),
  // the worker's log is not what is measured here
  Layer.succeed(References.MinimumLogLevel, "None")
)

/** Events per second and CPU microseconds per event, settling `events` events, half failing (a missing template). */
const run = (tracking: Layer.Layer<never>) =>
  Effect.gen(function*() {
    const queue = yield* InMemoryQueue
    for (let n = 0; n < events; n++) {
      yield* queue.publish({
        template_prefix: n % 2 === 0 ? "zerver/emails/password_reset" : "zerver/emails/missing",
        to_emails: [`user${n}@example.com`]
      })
    }
    const consumer = yield* QueueConsumer
    const deliveries = yield* Effect.replicateEffect(consumer.take, events)
    const started = performance.now()
    const cpu = process.cpuUsage()
    yield* consumeBatch(deliveries)
    const used = process.cpuUsage(cpu)
    return { rate: events / ((performance.now() - started) / 1000), cpuMicros: (used.user + used.system) / events }
  }).pipe(Effect.provide(Layer.merge(pipeline, tracking)), Effect.runPromise)

const median = (values: ReadonlyArray<number>): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const accepting = await fakeSentry("accept")
const hanging = await fakeSentry("hang")
const scenarios: ReadonlyArray<readonly [string, Layer.Layer<never>]> = [
  ["no Sentry (SENTRY_DSN unset)", Layer.empty],
  ["Sentry answering", ErrorTracking.layer({ dsn: accepting.dsn, closeTimeoutMillis: 100 })],
  ["Sentry never answering", ErrorTracking.layer({ dsn: hanging.dsn, closeTimeoutMillis: 100 })],
  ["Sentry refusing connections", ErrorTracking.layer({ dsn: `http://public@127.0.0.1:${await closedPort()}/1`, closeTimeoutMillis: 100 })]
]
// one run of each first, for the JIT
for (const [, tracking] of scenarios) await run(tracking)
// the scenarios take turns, so that a busy moment of the machine does not fall on one of them alone
const measured = scenarios.map((): Array<{ readonly rate: number; readonly cpuMicros: number }> => [])
for (let index = 0; index < runs; index++) {
  for (const [scenario, [, tracking]] of scenarios.entries()) measured[scenario]!.push(await run(tracking))
}
const results = scenarios.map(([name], scenario) => ({
  name,
  rate: median(measured[scenario]!.map((result) => result.rate)),
  cpuMicros: median(measured[scenario]!.map((result) => result.cpuMicros))
}))
const baseline = results[0]!
process.stdout.write(`${events} events (half failing, each failure a Sentry report), median of ${runs} runs\n\n`)
process.stdout.write("| error tracking | events/s | vs no Sentry | CPU µs/event | vs no Sentry |\n| --- | ---: | ---: | ---: | ---: |\n")
for (const { cpuMicros, name, rate } of results) {
  process.stdout.write(
    `| ${name} | ${Math.round(rate)} | ${(rate / baseline.rate).toFixed(2)}x | ${Math.round(cpuMicros)} | ${(cpuMicros / baseline.cpuMicros).toFixed(2)}x |\n`
  )
}
process.stdout.write(`\nenvelopes received: answering ${accepting.envelopes()}, never answering ${hanging.envelopes()}\n`)
accepting.close()
hanging.close()
