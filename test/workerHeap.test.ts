/** The worker process's heap (`src/cli/workerHeap.ts`): when the process restarts with a fixed growth, and what it needs. */
import { assert, describe, it } from "@effect/vitest"
import { heapFlagsGiven, heapNeededMb, planHeap } from "../src/cli/workerHeap.ts"

const MB = 2 ** 20
const defaults = { concurrency: 32, maxEventBytes: 512 * 1024 }
// what V8 gives a 64-bit process on a large host (old generation 4 GB), on an 8 GB host (2 GB), and on a 1 GB container
const largeHost = 4144 * MB
const eightGbHost = 2096 * MB
const smallContainer = 300 * MB

describe("worker heap", () => {
  it("needs 40 MB plus every event in flight three times", () => {
    assert.strictEqual(heapNeededMb(32, 512 * 1024), 88)
    assert.strictEqual(heapNeededMb(200, 512 * 1024), 340)
  })

  it("restarts with a 40 % growth where V8 would let the old generation grow 4× between collections", () => {
    const facts = { ...defaults, heapLimitBytes: largeHost, heapFlagsGiven: false, canReexecute: true }
    assert.deepStrictEqual(planHeap(facts), { _tag: "Reexecute", growingPercent: 40 })
    assert.deepStrictEqual(planHeap({ ...facts, heapLimitBytes: eightGbHost }), { _tag: "Reexecute", growingPercent: 40 })
  })

  it("keeps the heap it has when the operator set heap flags, V8 already grows it slowly, or it cannot restart", () => {
    const facts = { ...defaults, heapLimitBytes: largeHost, heapFlagsGiven: false, canReexecute: true }
    const kept = { _tag: "Keep", neededMb: 88, limitMb: 4144 } as const
    // a restarted process has the flag: never a second restart
    assert.deepStrictEqual(planHeap({ ...facts, heapFlagsGiven: true }), kept)
    assert.deepStrictEqual(planHeap({ ...facts, canReexecute: false }), kept)
    assert.deepStrictEqual(planHeap({ ...facts, heapLimitBytes: smallContainer }), { _tag: "Keep", neededMb: 88, limitMb: 300 })
    assert.strictEqual(planHeap({ ...facts, heapLimitBytes: 2047 * MB })._tag, "Keep")
  })

  it("reports a heap below what the settings need", () => {
    const plan = planHeap({ ...defaults, heapLimitBytes: 64 * MB, heapFlagsGiven: true, canReexecute: true })
    assert.deepStrictEqual(plan, { _tag: "Keep", neededMb: 88, limitMb: 64 })
  })

  it("finds a heap size or growth given on the command line or in NODE_OPTIONS, in either spelling", () => {
    assert.isTrue(heapFlagsGiven(["--max-old-space-size=256"], undefined))
    assert.isTrue(heapFlagsGiven([], "--enable-source-maps --max_old_space_size=256"))
    assert.isTrue(heapFlagsGiven(["--heap-growing-percent=40"], undefined))
    assert.isTrue(heapFlagsGiven(["--heap_growing_percent=60"], undefined))
    assert.isFalse(heapFlagsGiven(["--enable-source-maps"], "--max-semi-space-size=8"))
    assert.isFalse(heapFlagsGiven([], undefined))
  })
})
