/**
 * Accounting for every published event: delivered (how many times, by Message-ID at the sink), recorded as failed
 * (a line of the `.errors` file), or still queued (drained from the worker's queues once it stopped). Whatever is
 * none of these is lost.
 */
import { createHash } from "node:crypto"
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs"
import { jsonDepth } from "../../../src/domain/jsonDepth.ts"
import { defaultWorkerSettings } from "../../../src/config/WorkerSettings.ts"

export interface Published {
  readonly body: string
  /** `<kind>#<n>`: how the scenario refers to it in messages */
  readonly label: string
}

/** The text the worker sees of a body: its UTF-8 bytes decoded (a lone surrogate becomes U+FFFD). */
const receivedText = (body: string): string => Buffer.from(body, "utf8").toString("utf8")

/**
 * What the worker records of a body: parsed when it is JSON no deeper than MAX_EVENT_DEPTH (the default), else the
 * text itself.
 */
export const recordedValue = (body: string): unknown => {
  const text = receivedText(body)
  try {
    const value = JSON.parse(text) as unknown
    return jsonDepth(value) > defaultWorkerSettings.maxEventDepth ? text : value
  } catch {
    return text
  }
}

/** What a record that keeps only part of its body (or none) is known by: the whole body's SHA-256. */
const bodyHashIdentity = (sha256: string): string => `sha256:${sha256}`

/** Every identity a published body can be found by: its own (`identityOf`), and its SHA-256 for a cut record. */
export const identitiesOfBody = (body: string): ReadonlyArray<string> => [
  identityOf(recordedValue(body)),
  bodyHashIdentity(createHash("sha256").update(receivedText(body)).digest("hex"))
]

/**
 * One identity for an event wherever it shows up: its `message_id` when it has one (a requeued copy carries another
 * `failed_tries` but the same id), else its JSON form as the errors file records it.
 */
export const identityOf = (value: unknown): string => {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const id = (value as { readonly message_id?: unknown }).message_id
    if (typeof id === "string" && id !== "") return `id:${id.replace(/^<|>$/g, "")}`
  }
  return `json:${JSON.stringify(value)}`
}

export const deliveryIdentity = (messageId: string): string => `id:${messageId}`

export interface FailureReason {
  readonly tag: string
  readonly message: string
  readonly attempts: number
  readonly smtpCode: number | null
  /** the whole body, when the record keeps only part of it */
  readonly body?: { readonly bytes: number; readonly sha256: string; readonly keptBytes: number }
}

export interface FailureLine {
  readonly event: unknown
  readonly reason: FailureReason
  /** the line's length in bytes, newline included */
  readonly bytes: number
}

/** The identity of a recorded event: by its body's SHA-256 when the record is cut, else `identityOf` its event. */
export const failureIdentity = (line: FailureLine): string =>
  line.reason.body === undefined ? identityOf(line.event) : bodyHashIdentity(line.reason.body.sha256)

/** Reads the `.errors` file as it grows (asctime TAB JSON array of one event TAB reason), line by line. */
export const makeFailureLog = (path: string) => {
  const lines: Array<FailureLine> = []
  let offset = 0
  let partial = ""
  return {
    read: (): ReadonlyArray<FailureLine> => {
      if (!existsSync(path)) return lines
      const size = statSync(path).size
      if (size > offset) {
        const buffer = Buffer.alloc(size - offset)
        const fd = openSync(path, "r")
        try {
          readSync(fd, buffer, 0, buffer.length, offset)
        } finally {
          closeSync(fd)
        }
        offset = size
        const text = partial + buffer.toString("utf8")
        const complete = text.split("\n")
        partial = complete.pop() ?? ""
        for (const line of complete) {
          const [, events, reason] = line.split("\t")
          const [event] = JSON.parse(events ?? "[]") as Array<unknown>
          lines.push({ event, reason: JSON.parse(reason ?? "null") as FailureReason, bytes: Buffer.byteLength(line) + 1 })
        }
      }
      return lines
    }
  }
}
export type FailureLog = ReturnType<typeof makeFailureLog>

export interface Tally {
  readonly published: number
  /** published events accepted by the sink at least once */
  readonly delivered: number
  /** deliveries beyond the first of an event */
  readonly duplicates: number
  /** published events with a line in the errors file */
  readonly failed: number
  /** lines in the errors file in all (more than `failed` means an event was recorded twice) */
  readonly failureLines: number
  readonly queued: number
  readonly lost: number
  /** some lost events (label: start of the body), for the failure message */
  readonly lostLabels: ReadonlyArray<string>
}

export const countBy = (identities: Iterable<string>): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const identity of identities) counts.set(identity, (counts.get(identity) ?? 0) + 1)
  return counts
}

export const tally = (
  published: ReadonlyArray<Published>,
  deliveries: ReadonlyMap<string, number>,
  failures: ReadonlyArray<FailureLine>,
  queuedBodies: ReadonlyArray<string>
): Tally => {
  const delivered = countBy([...deliveries].flatMap(([id, n]) => Array<string>(n).fill(deliveryIdentity(id))))
  const failed = countBy(failures.map(failureIdentity))
  const queued = countBy(queuedBodies.map((body) => identityOf(recordedValue(body))))
  const identities = published.map((item) => identitiesOfBody(item.body))
  const isIn = (counts: ReadonlyMap<string, number>) => (ids: ReadonlyArray<string>) => ids.some((id) => counts.has(id))
  const lost = published.filter((_, i) => ![delivered, failed, queued].some((counts) => isIn(counts)(identities[i]!)))
  return {
    published: published.length,
    delivered: identities.filter(isIn(delivered)).length,
    duplicates: identities.reduce((sum, [identity]) => sum + Math.max(0, (delivered.get(identity!) ?? 0) - 1), 0),
    failed: identities.filter(isIn(failed)).length,
    failureLines: failures.length,
    queued: identities.filter(isIn(queued)).length,
    lost: lost.length,
    lostLabels: lost.slice(0, 10).map((item) => `${item.label}: ${item.body.slice(0, 300)}`)
  }
}

/** How many published events are settled for now: delivered or recorded as failed. */
export const settledCount = (
  identities: ReadonlyArray<ReadonlyArray<string>>,
  deliveries: ReadonlyMap<string, number>,
  failures: ReadonlyArray<FailureLine>
): number => {
  const settled = new Set([
    ...[...deliveries.keys()].map(deliveryIdentity),
    ...failures.map(failureIdentity)
  ])
  return identities.filter((ids) => ids.some((identity) => settled.has(identity))).length
}
