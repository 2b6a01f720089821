/**
 * Scenario 5: poison events mixed with good ones. Every good event is delivered, every poison event is recorded in
 * the errors file with a reason that names its problem, and the worker process never restarts.
 */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type FailureLine, failureIdentity, identitiesOfBody, type Published } from "./support/ledger.ts"
import { goodEvent, makeScenario } from "./support/scenario.ts"

const goodCount = 300

interface Poison {
  readonly kind: string
  readonly body: string
  readonly tag: string
  /** what the recorded reason must say about the problem */
  readonly reason: RegExp
}

const rendered = (n: number, fields: Record<string, unknown>) =>
  JSON.stringify({
    subject: `Poison ${n}`,
    text: "This event must not be sent.",
    to_emails: [`poison${n}@faults.example`],
    message_id: `poison-${n}-${process.pid}@faults.example`,
    ...fields
  })

const poisons: ReadonlyArray<Poison> = [
  { kind: "invalid JSON", body: `{"subject": "cut off`, tag: "InvalidEvent", reason: /body is not JSON/ },
  { kind: "array body", body: `[1, 2, 3]`, tag: "InvalidEvent", reason: /expected a JSON object, got an array/ },
  { kind: "string body", body: `"send it"`, tag: "InvalidEvent", reason: /expected a JSON object, got string/ },
  { kind: "null body", body: `null`, tag: "InvalidEvent", reason: /expected a JSON object, got null/ },
  { kind: "unknown key", body: rendered(1, { priority: "high" }), tag: "InvalidEvent", reason: /priority: unknown key/ },
  { kind: "to_emails not an array", body: rendered(2, { to_emails: "x@faults.example" }), tag: "InvalidEvent", reason: /to_emails: Expected array/ },
  { kind: "realm_id not a number", body: rendered(3, { realm_id: "one" }), tag: "InvalidEvent", reason: /realm_id: Expected/ },
  { kind: "failed_tries negative", body: rendered(4, { failed_tries: -1 }), tag: "InvalidEvent", reason: /failed_tries: Expected/ },
  { kind: "both recipient keys", body: rendered(5, { to_user_ids: [1] }), tag: "InvalidEvent", reason: /exactly one of to_emails \/ to_user_ids must be set; both are/ },
  { kind: "no recipient key", body: rendered(6, { to_emails: null }), tag: "InvalidEvent", reason: /exactly one of to_emails \/ to_user_ids must be set; neither is/ },
  { kind: "unknown realm", body: rendered(7, { realm_id: 999 }), tag: "RealmNotFound", reason: /No realm with id 999/ },
  { kind: "unknown user", body: rendered(8, { to_emails: null, to_user_ids: [1, 998] }), tag: "UserNotFound", reason: /No user with id 998/ },
  {
    kind: "missing template",
    body: JSON.stringify({ template_prefix: "zerver/emails/no_such_template", to_emails: ["t@faults.example"], message_id: `poison-9-${process.pid}@faults.example` }),
    tag: "TemplateError",
    reason: /no_such_template/
  },
  {
    kind: "CR/LF in from_name",
    body: rendered(10, { from_name: "Mallory\r\nBcc: victim@evil.example" }),
    tag: "InvalidEvent",
    reason: /from_name contains the control character/
  },
  {
    kind: "1 MB context",
    body: JSON.stringify({
      template_prefix: "zerver/emails/password_reset",
      to_emails: ["big@faults.example"],
      context: { reset_url: "https://faults.example/reset", padding: "x".repeat(1 << 20) },
      message_id: `poison-11-${process.pid}@faults.example`
    }),
    tag: "InvalidEvent",
    reason: /too large|bytes|size/i
  }
]

/** Good events of three shapes: pre-rendered, by user id (realms file), and from a template. */
const goodEvents: ReadonlyArray<Published> = Array.from({ length: goodCount }, (_, n) => {
  if (n % 3 === 0) return goodEvent("poison-good", n)
  const fields = n % 3 === 1
    ? { subject: `Good ${n}`, text: "By user id.", to_user_ids: [1 + (n % 2)] }
    : { template_prefix: "zerver/emails/password_reset", to_emails: [`good${n}@faults.example`], context: { reset_url: "https://faults.example/reset", email: `good${n}@faults.example` } }
  return { label: `poison-good#${n}`, body: JSON.stringify({ ...fields, message_id: `poison-good-${n}-${process.pid}@faults.example` }) }
})

const realmsFile = {
  realms: [{ id: 1, string_id: "faults", name: "Fault Realm" }],
  users: [
    { id: 1, realm_id: 1, full_name: "Ada", delivery_email: "ada@faults.example" },
    { id: 2, realm_id: 1, full_name: "Grace", delivery_email: "grace@faults.example" }
  ]
}

/** What is wrong with the recording of one poison event, if anything. */
const checkRecorded = (poison: Poison, failures: ReadonlyArray<FailureLine>): string | null => {
  const identities = identitiesOfBody(poison.body)
  const lines = failures.filter((line) => identities.includes(failureIdentity(line)))
  if (lines.length !== 1) return `${poison.kind}: recorded ${lines.length} times`
  const [{ reason }] = lines as [FailureLine]
  return reason.tag === poison.tag && poison.reason.test(reason.message)
    ? null
    : `${poison.kind}: recorded as ${reason.tag} "${reason.message.slice(0, 200)}", expected ${poison.tag} ${poison.reason}`
}

it.live("poison events among good ones: good delivered, poison recorded with its reason, no restart", ({ task }) =>
  Effect.gen(function*() {
    const scenario = yield* makeScenario("poison")
    const realmsPath = join(scenario.directory, "realms.json")
    writeFileSync(realmsPath, JSON.stringify(realmsFile))
    // the poison events are spread among the good ones
    const poisonEvents = poisons.map((poison, i) => ({ label: `poison:${poison.kind}#${i}`, body: poison.body }))
    const published = goodEvents.flatMap((event, n) => n % 20 === 0 && poisonEvents[n / 20] !== undefined ? [poisonEvents[n / 20]!, event] : [event])
    yield* scenario.publish(published)
    const worker = yield* scenario.startWorker({ REALMS_FILE: realmsPath })

    const allSettled = yield* scenario.awaitSettled(published, "120 seconds")
    const exitedMeanwhile = yield* worker.hasExited
    yield* scenario.stopWorker(worker)
    const counts = yield* scenario.account(published)
    const starts = readFileSync(scenario.logPath, "utf8").split("\n").filter((line) => line.includes("email-senders starting")).length
    const failures = scenario.failures.read()
    const misrecorded = poisons.map((poison) => checkRecorded(poison, failures)).filter((problem) => problem !== null)
    const goodDelivered = goodEvents.filter((event) => scenario.sink.deliveries.get(JSON.parse(event.body).message_id) === 1).length
    scenario.report(task, "5 poison events", counts, `${poisons.length} poison kinds, ${poisons.length - misrecorded.length} recorded with the right reason; worker starts: ${starts}`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.isTrue(allSettled, "not every event settled")
    assert.deepStrictEqual(misrecorded, [])
    assert.strictEqual(goodDelivered, goodCount, "every good event is delivered exactly once")
    assert.strictEqual(counts.failureLines, poisons.length, "only the poison events are recorded")
    assert.isFalse(exitedMeanwhile, "the worker process exited")
    assert.strictEqual(starts, 1, "the worker started once")
  }).pipe(Effect.scoped))
