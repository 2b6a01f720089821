/**
 * What a failure record keeps of a body that cannot be kept whole: its first bytes, bounded so the errors file grows
 * by at most `MAX_EVENT_BYTES` (plus the record's other fields) per refused message, and its full size and SHA-256.
 */
import { createHash } from "node:crypto"

/** The body a record was cut from, or could not be written from. */
export interface BodyDigest {
  /** the body's full size in UTF-8 bytes */
  readonly bytes: number
  readonly sha256: string
  /** how many of its bytes the record keeps (fewer than `bytes`: the record was cut and is not replayable) */
  readonly keptBytes: number
}

const jsonStringBytes = (text: string): number => Buffer.byteLength(JSON.stringify(text))

/**
 * The longest start of `text` whose JSON string form (escapes included: a control character takes 6 bytes) is at
 * most `maxBytes`. A character is never split: a cut through a UTF-8 sequence or a surrogate pair drops it whole.
 */
export const cutToFit = (text: string, maxBytes: number): string => {
  if (jsonStringBytes(text) <= maxBytes) return text
  // each character costs at least one byte, so the answer is within the first maxBytes characters
  let fits = 0
  let tooLong = Math.min(text.length, maxBytes)
  if (jsonStringBytes(text.slice(0, tooLong)) <= maxBytes) return text.slice(0, tooLong)
  while (tooLong - fits > 1) {
    const middle = Math.floor((fits + tooLong) / 2)
    if (jsonStringBytes(text.slice(0, middle)) <= maxBytes) fits = middle
    else tooLong = middle
  }
  const cut = text.slice(0, fits)
  // a high surrogate left without its pair would turn into an escape of a character the body never had alone
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut
}

export const digestBody = (body: string, kept: string): BodyDigest => ({
  bytes: Buffer.byteLength(body),
  sha256: createHash("sha256").update(body).digest("hex"),
  keptBytes: Buffer.byteLength(kept)
})

export const isCut = (digest: BodyDigest): boolean => digest.keptBytes < digest.bytes
