/**
 * The README and `--help` say what the code does: every environment variable read under `src/` is in README's
 * Configuration table and in the `--help` of the commands, and `/readyz`'s body is what README shows.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { get } from "node:http"
import { join } from "node:path"
import { beforeAll } from "vitest"
import { closedPort } from "./support/fakeSes.ts"
import { buildCli, runCli, startCli, terminated } from "./support/processes.ts"
import { makeAdmin, uniqueName } from "./support/rabbitmq.ts"

beforeAll(buildCli, 120_000)

const root = join(import.meta.dirname, "..")
const readme = readFileSync(join(root, "README.md"), "utf8")

const sourceFiles = (directory: string): Array<string> =>
  readdirSync(directory, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(directory, entry.name))
      : entry.name.endsWith(".ts")
      ? [join(directory, entry.name)]
      : []
  )

/** A call's arguments before the name: anything but quotes and parentheses, lower-case strings, nested calls. */
const argumentsBefore = String.raw`(?:[^()"]|"[^"A-Z][^"]*"|\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\))*?`

/**
 * The variables read under `src/`: the names given to `Config` constructors and to the settings helpers built on
 * them (`CountSetting("BATCH_SIZE", 1)`, `Config.schema(Schema..., "MAX_EVENT_DEPTH")`, ...), and `process.env`.
 */
const namesReadInSource = (): ReadonlySet<string> => {
  const configCall = new RegExp(
    String.raw`\b(?:Config\.[A-Za-z]+|[A-Za-z]*Setting|checkedString|urlSetting|optionalString|optionalUrl|isSet)` +
      String.raw`\(\s*${argumentsBefore}"([A-Z][A-Z0-9_]+)"`,
    "g"
  )
  const environment = /process\.env(?:\.|\[")([A-Z][A-Z0-9_]+)/g
  const names = new Set<string>()
  for (const file of sourceFiles(join(root, "src"))) {
    const text = readFileSync(file, "utf8")
    for (const match of text.matchAll(configCall)) names.add(match[1]!)
    for (const match of text.matchAll(environment)) names.add(match[1]!)
  }
  return names
}

/** The names in the first column of README's Configuration table. */
const documentedNames = (): ReadonlySet<string> => {
  const section = readme.split("\n## Configuration")[1]!.split("\n## ")[0]!
  const names = section.split("\n")
    .filter((line) => line.startsWith("| `"))
    .flatMap((line) => [...line.split(" | ")[0]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((match) => match[1]!))
  return new Set(names)
}

const commands = [[], ["worker"], ["publish"], ["replay"], ["stats"], ["render"], ["db", "migrate"], ["templates", "check"]]

/** The variables a command's `--help` names, from its `Environment:` line. */
const environmentInHelp = (command: ReadonlyArray<string>) =>
  runCli([...command, "--help"], {}).pipe(Effect.map((result) => {
    const line = result.stdout.split("\n").find((text) => text.startsWith("Environment: "))
    assert.isDefined(line, `${command.join(" ")} --help names no environment:\n${result.stdout}`)
    return new Set(line!.slice("Environment: ".length).split(" (see README")[0]!.split(", "))
  }))

describe("the Configuration table", () => {
  it("has every variable the code reads", () => {
    const read = namesReadInSource()
    // the collector itself finds the names in each form they are read
    const inEachForm = [
      "AMQP_URL",
      "MAX_EVENT_DEPTH",
      "LOG_FORMAT",
      "HTTP_ALLOWED_HOSTS",
      "SES_SUPPRESSION_REGION",
      "EMAIL_IMAGES_BASE_URL",
      "NOREPLY_EMAIL_ADDRESS",
      "TEMPLATES_RELOAD",
      "BATCH_SIZE",
      "DATABASE_URL",
      "NODE_OPTIONS"
    ]
    for (const name of inEachForm) {
      assert.isTrue(read.has(name), `${name} was not found in src/`)
    }
    const documented = documentedNames()
    assert.deepStrictEqual([...read].filter((name) => !documented.has(name)).sort(), [], "read under src/, missing from README")
  })
})

describe("--help", () => {
  it.live("each command names the variables it reads; together, every variable the code reads", () =>
    Effect.gen(function*() {
      const documented = documentedNames()
      const named = new Set<string>()
      const essential: Record<string, ReadonlyArray<string>> = {
        "": ["AMQP_URL", "EMAIL_HOST", "DATABASE_URL", "HTTP_PORT", "TEMPLATES_DIR"],
        worker: ["AMQP_URL", "EMAIL_HOST", "DATABASE_URL", "HTTP_PORT", "TEMPLATES_DIR"],
        publish: ["AMQP_URL", "QUEUE_NAME", "EXTERNAL_HOST"],
        replay: ["AMQP_URL", "QUEUE_NAME"],
        stats: ["AMQP_URL", "QUEUE_NAME", "QUEUE_STATS_DIR"],
        render: ["TEMPLATES_DIR", "DATABASE_URL", "REALMS_FILE"],
        "db migrate": ["DATABASE_URL"],
        "templates check": ["TEMPLATES_DIR"]
      }
      for (const command of commands) {
        const names = yield* environmentInHelp(command)
        for (const name of [...essential[command.join(" ")]!, "LOG_LEVEL", "LOG_FORMAT"]) {
          assert.isTrue(names.has(name), `${command.join(" ") || "email-senders"} --help does not name ${name}`)
        }
        for (const name of names) {
          assert.isTrue(documented.has(name), `${command.join(" ")} --help names ${name}, which README does not`)
          named.add(name)
        }
      }
      assert.deepStrictEqual([...namesReadInSource()].filter((name) => !named.has(name)).sort(), [], "named by no --help")
    }), 120_000)

  it.live("--log-level takes the names LOG_LEVEL takes, and says so", () =>
    Effect.gen(function*() {
      const help = yield* runCli(["--help"], {})
      assert.match(help.stdout, /--log-level <level> +The minimum log level, overriding LOG_LEVEL: .*warning.*critical.*\(any case\)/)
      const refused = yield* runCli(["--log-level", "verbose", "templates", "check"], {})
      assert.strictEqual(refused.exitCode, 1)
      assert.include(refused.stderr, "one of all, trace, debug, info, warn, warning, error, fatal, critical, none (any case)")
    }), 60_000)
})

/** `url`'s status and JSON body once it answers `status` (the endpoint may not be listening yet). */
const jsonAnswering = (url: string, status: number) =>
  Effect.callback<{ readonly status: number; readonly body: { readonly status: string } }, string>((resume) => {
    get(url, (response) => {
      let text = ""
      response.setEncoding("utf8").on("data", (chunk: string) => (text += chunk))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body: JSON.parse(text) })))
    }).on("error", (error) => resume(Effect.fail(error.message)))
  }).pipe(
    Effect.filterOrFail((answer) => answer.status === status, (answer) => `answered ${answer.status}`),
    Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo({ duration: "60 seconds" }))),
    Effect.orDie
  )

describe("/readyz", () => {
  it.live("answers the bodies README shows: ready, and not ready without a broker", () =>
    Effect.gen(function*() {
      for (const [amqpUrl, expected] of [
        ["amqp://guest:guest@127.0.0.1:5672", { status: 200, text: "ready" }],
        [`amqp://guest:guest@127.0.0.1:${yield* closedPort}`, { status: 503, text: "not ready" }]
      ] as const) {
        const port = yield* closedPort
        const admin = yield* makeAdmin
        const worker = yield* startCli(["worker"], {
          AMQP_URL: amqpUrl,
          HTTP_PORT: String(port),
          QUEUE_NAME: admin.deleteAfter(uniqueName("docs_readyz"))
        })
        const answer = yield* jsonAnswering(`http://127.0.0.1:${port}/readyz`, expected.status)
        assert.strictEqual(answer.body.status, expected.text)
        assert.include(readme, `{"status":"${answer.body.status}","checks":{…}}`)
        yield* terminated(worker)
      }
    }), 120_000)
})
