/** The worker process's heap cap (`src/commands/workerHeap.ts`): when the process restarts with one, and its size. */
import { assert, describe, it } from "@effect/vitest"
import { heapCapMb, heapNeededMb, heapSizeGiven, planHeap } from "../src/commands/workerHeap.ts"

const MB = 2 ** 20
const defaults = { concurrency: 32, maxEventBytes: 512 * 1024 }
// what V8 gives a 64-bit process on a large host, and on a 1 GB container
const largeHost = 4144 * MB
const smallContainer = 300 * MB

describe("worker heap", () => {
  it("needs 40 MB plus every event in flight three times, and caps at twice that, never below 512 MB", () => {
    assert.strictEqual(heapNeededMb(32, 512 * 1024), 88)
    assert.strictEqual(heapCapMb(88), 512)
    assert.strictEqual(heapNeededMb(200, 512 * 1024), 340)
    assert.strictEqual(heapCapMb(340), 680)
  })

  it("restarts with the cap on a large host when no heap size was given", () => {
    const facts = { ...defaults, heapLimitBytes: largeHost, heapSizeGiven: false, canReexecute: true }
    assert.deepStrictEqual(planHeap(facts), { _tag: "Reexecute", maxOldSpaceMb: 512 })
    assert.deepStrictEqual(planHeap({ ...facts, concurrency: 200 }), { _tag: "Reexecute", maxOldSpaceMb: 680 })
  })

  it("keeps the heap it has when the operator sized it, V8 already chose a small one, or it cannot restart", () => {
    const facts = { ...defaults, heapLimitBytes: largeHost, heapSizeGiven: false, canReexecute: true }
    const kept = { _tag: "Keep", neededMb: 88, limitMb: 4144 } as const
    assert.deepStrictEqual(planHeap({ ...facts, heapSizeGiven: true }), kept)
    assert.deepStrictEqual(planHeap({ ...facts, canReexecute: false }), kept)
    assert.deepStrictEqual(planHeap({ ...facts, heapLimitBytes: smallContainer }), { _tag: "Keep", neededMb: 88, limitMb: 300 })
    // a restarted process has 512 MB of old generation plus the young one: never a second restart
    assert.strictEqual(planHeap({ ...facts, heapLimitBytes: 560 * MB })._tag, "Keep")
  })

  it("reports a heap below what the settings need", () => {
    const plan = planHeap({ ...defaults, heapLimitBytes: 64 * MB, heapSizeGiven: true, canReexecute: true })
    assert.deepStrictEqual(plan, { _tag: "Keep", neededMb: 88, limitMb: 64 })
  })

  it("finds a heap size given on the command line or in NODE_OPTIONS, in either spelling", () => {
    assert.isTrue(heapSizeGiven(["--max-old-space-size=256"], undefined))
    assert.isTrue(heapSizeGiven([], "--enable-source-maps --max_old_space_size=256"))
    assert.isFalse(heapSizeGiven(["--enable-source-maps"], "--max-semi-space-size=8"))
    assert.isFalse(heapSizeGiven([], undefined))
  })
})
