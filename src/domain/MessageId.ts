/**
 * A Message-ID that stays the same when the same event is delivered again, so a redelivery is recognisable
 * downstream. Taken from the event's `message_id` when the producer set one, else derived from the event's
 * content without `failed_tries` (the only key a retry changes). The ones the worker and its commands make have
 * one form: `<32 hex digits@EXTERNAL_HOST without its port>`.
 */
import { createHash, randomBytes } from "node:crypto"
import type { EmailEvent, JsonObject } from "./EmailEvent.ts"

/** JSON with object keys sorted, so equal events hash equally whatever their key order. */
const canonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value as JsonObject).filter(([, v]) => v !== undefined).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0
    )
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`
  }
  return JSON.stringify(value)
}

const formatMessageId = (hex: string, host: string): string => `<${hex}@${host}>`

/** A new Message-ID for an event `publish` or `replay` enqueues without one, in the worker's own form. */
export const randomMessageId = (host: string): string => formatMessageId(randomBytes(16).toString("hex"), host)

export const messageIdFor = (event: EmailEvent, host: string): string => {
  if (event.messageId !== null) {
    return event.messageId.startsWith("<") ? event.messageId : `<${event.messageId}>`
  }
  const { failed_tries: _ignored, ...content } = event.original
  const digest = createHash("sha256").update(canonicalJson(content)).digest("hex").slice(0, 32)
  return formatMessageId(digest, host)
}
