/**
 * Scenario 6: recipients refused for good (550) are attempted once and recorded once; recipients refused for now
 * (451 on the first RCPT only) are requeued with REQUEUE_DELAY and delivered on the next try.
 */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { recipientsMessageId } from "../../src/domain/recipientCopy.ts"
import { failureIdentity, identitiesOfBody, identityOf, type Published } from "./support/ledger.ts"
import { goodEvent, makeScenario } from "./support/scenario.ts"

const perKind = 30

interface Expectation {
  readonly event: Published
  readonly messageId: string
  /** RCPT TO attempts expected per scripted address */
  readonly rcpt: ReadonlyArray<readonly [address: string, attempts: number]>
  readonly deliveries: number
  readonly failureLines: number
  /** the recipients a partly accepted message's record is a copy for (it has their own Message-ID) */
  readonly recordedFor?: ReadonlyArray<string>
}

const expectation = (kind: string, n: number, to: ReadonlyArray<string>, rcpt: Expectation["rcpt"], deliveries: number, failureLines: number): Expectation => {
  const messageId = `${kind}-${n}-${process.pid}@faults.example`
  const body = JSON.stringify({ subject: `Refusal ${kind} #${n}`, text: "Scripted refusals.", to_emails: to, message_id: messageId })
  return { event: { label: `${kind}#${n}`, body }, messageId, rcpt, deliveries, failureLines }
}

const expectations: ReadonlyArray<Expectation> = Array.from({ length: perKind }, (_, n) => {
  const permanent = `p${n}+550@faults.example`
  const temporary = `t${n}+451first@faults.example`
  const mixedRefused = `m${n}+550@faults.example`
  const good = goodEvent("refusal-good", n)
  return [
    expectation("permanent", n, [permanent], [[permanent, 1]], 0, 1),
    expectation("temporary", n, [temporary], [[temporary, 2]], 1, 0),
    // one recipient refused for good, one accepted: delivered to the one, the other recorded in a copy for it alone
    { ...expectation("mixed", n, [`m${n}@faults.example`, mixedRefused], [[mixedRefused, 1]], 1, 1), recordedFor: [mixedRefused] },
    { event: good, messageId: JSON.parse(good.body).message_id, rcpt: [], deliveries: 1, failureLines: 0 }
  ]
}).flat()

it.live("550 recipients: one attempt, recorded once; 451-once recipients: requeued, then delivered once", ({ task }) =>
  Effect.gen(function*() {
    const scenario = yield* makeScenario("refusals")
    const published = expectations.map((expectation) => expectation.event)
    yield* scenario.publish(published)
    const worker = yield* scenario.startWorker()

    const allSettled = yield* scenario.awaitSettled(published, "120 seconds")
    // a mixed event counts as settled once delivered; the graceful stop lets its record be written
    yield* scenario.stopWorker(worker)
    const counts = yield* scenario.account(published)
    const failures = scenario.failures.read()
    const problems = expectations.flatMap(({ event, messageId, rcpt, deliveries, failureLines, recordedFor }) => {
      const identities = recordedFor === undefined
        ? identitiesOfBody(event.body)
        : [identityOf({ message_id: recipientsMessageId(`<${messageId}>`, recordedFor) })]
      const lines = failures.filter((line) => identities.includes(failureIdentity(line)))
      return [
        ...rcpt.flatMap(([address, attempts]) =>
          scenario.sink.rcptAttempts(address) === attempts ? [] : [`${event.label}: ${scenario.sink.rcptAttempts(address)} RCPT TO ${address}, expected ${attempts}`]
        ),
        ...((scenario.sink.deliveries.get(messageId) ?? 0) === deliveries ? [] : [`${event.label}: delivered ${scenario.sink.deliveries.get(messageId) ?? 0} times, expected ${deliveries}`]),
        ...(lines.length === failureLines ? [] : [`${event.label}: recorded ${lines.length} times, expected ${failureLines}`]),
        ...lines.filter((line) => line.reason.tag !== "Rejected" || !line.reason.message.includes("550")).map((line) => `${event.label}: recorded as ${line.reason.tag} ${line.reason.message}`)
      ]
    })
    scenario.report(task, "6 550 / 451-once recipients", counts, `${perKind} each of 550, 451-once, mixed and good; broken expectations (RCPT count, deliveries, records): ${problems.length}`)

    assert.strictEqual(counts.lost, 0, `lost: ${counts.lostLabels.join(", ")}`)
    assert.isTrue(allSettled, "not every event settled")
    assert.deepStrictEqual(problems.slice(0, 20), [])
  }).pipe(Effect.scoped))
