/**
 * `publish`, `replay` and `stats` give up after `COMMAND_TIMEOUT` with the reason, against a broker address that
 * accepts TCP and never speaks AMQP, and one that refuses connections (needs `npm run build`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll } from "vitest"
import { closedPort } from "./support/fakeSes.ts"
import { buildCli, runCli } from "./support/processes.ts"

const listening = (server: Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)))

const sockets = new Set<{ destroy: () => void }>()
// accepts every connection and never answers: a firewall's black hole, or a service that is not a broker
const silent = createServer((socket) => {
  sockets.add(socket)
  socket.on("error", () => undefined)
})
let silentPort = 0
let refusedPort = 0
const dir = mkdtempSync(join(tmpdir(), "command-timeout-"))
const errorsFile = join(dir, "email_senders.errors")

beforeAll(async () => {
  await buildCli()
  silentPort = await listening(silent)
  refusedPort = await Effect.runPromise(closedPort)
  writeFileSync(join(dir, "email_senders.stats"), JSON.stringify({
    update_time: Date.now() / 1000,
    recent_average_consume_time: null,
    queue_last_emptied_timestamp: Date.now() / 1000,
    consumed_since_last_emptied: 0
  }))
  const event = { subject: "Hello", text: "Hi", to_emails: ["a@example.com"] }
  writeFileSync(errorsFile, `Tue Mar  4 16:09:25 2025\t${JSON.stringify([event])}\n`)
}, 300_000)

afterAll(async () => {
  for (const socket of sockets) socket.destroy()
  await new Promise((resolve) => silent.close(resolve))
  rmSync(dir, { recursive: true, force: true })
})

const commands = {
  publish: ["publish", "--to", "a@example.com", "--subject", "Hello", "--text", "Hi"],
  replay: ["replay", errorsFile]
}

/**
 * Run with COMMAND_TIMEOUT=1 against the broker on `port`; gives the result and the seconds it took (under 8: start-up
 * plus the second, where ignoring the setting would take its default, 10 s, or hang).
 */
const runAgainst = (args: ReadonlyArray<string>, port: number) =>
  Effect.gen(function*() {
    const started = Date.now()
    const result = yield* runCli(args, {
      AMQP_URL: `amqp://guest:guest@127.0.0.1:${port}`,
      COMMAND_TIMEOUT: "1",
      QUEUE_STATS_DIR: dir
    }, { timeout: "30 seconds" })
    return { ...result, seconds: (Date.now() - started) / 1000 }
  })

describe("COMMAND_TIMEOUT", () => {
  for (const [name, args] of Object.entries(commands)) {
    it.effect(`${name} gives up with exit 1 and the reason when the broker never answers, or refuses connections`, () =>
      Effect.gen(function*() {
        const reasons = [
          // before or after the connection attempt itself timed out (it is bounded by COMMAND_TIMEOUT too)
          [silentPort, `(no answer yet from amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${silentPort}|connect ETIMEDOUT)`],
          [refusedPort, `connect ECONNREFUSED 127\\.0\\.0\\.1:${refusedPort}`]
        ] as const
        for (const [port, reason] of reasons) {
          const result = yield* runAgainst(args, port)
          assert.strictEqual(result.exitCode, 1, result.output)
          assert.isBelow(result.seconds, 8, result.output)
          assert.match(
            result.stderr.trim().split("\n").at(-1)!,
            new RegExp(`gave up after 1s \\(COMMAND_TIMEOUT\\): ${reason}`)
          )
        }
      }), 60_000)
  }

  it.effect("publish gives up naming the setting to fix when the broker refuses the login", () =>
    Effect.gen(function*() {
      const result = yield* runCli(commands.publish, { AMQP_URL: "amqp://guest:wrong@127.0.0.1:5672", COMMAND_TIMEOUT: "1" })
      assert.strictEqual(result.exitCode, 1, result.output)
      assert.match(
        result.stderr.trim().split("\n").at(-1)!,
        /gave up after 1s \(COMMAND_TIMEOUT\): refused: .*ACCESS_REFUSED.*; fix AMQP_URL \(user\/password\)$/
      )
    }), 60_000)

  // a monitoring check that cannot check says UNKNOWN (exit 3), Nagios' code for it, not 1 (WARNING)
  it.effect("stats says UNKNOWN (exit 3) with the reason when the broker never answers, or refuses", () =>
    Effect.gen(function*() {
      const silentResult = yield* runAgainst(["stats"], silentPort)
      assert.strictEqual(silentResult.exitCode, 3, silentResult.output)
      assert.isBelow(silentResult.seconds, 8, silentResult.output)
      assert.strictEqual(
        silentResult.stdout,
        "UNKNOWN: email_senders: cannot read the queue depth: no answer from the broker within 1s (COMMAND_TIMEOUT)\n"
      )
      const refused = yield* runAgainst(["stats"], refusedPort)
      assert.strictEqual(refused.exitCode, 3, refused.output)
      assert.include(refused.stdout, `UNKNOWN: email_senders: cannot read the queue depth: connect: connect ECONNREFUSED 127.0.0.1:${refusedPort}`)
    }), 60_000)
})
