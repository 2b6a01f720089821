/**
 * A copy of an event for some of its recipients only: what is requeued for the recipients a server deferred (4xx)
 * and recorded for those it refused (5xx) when it accepted the message for others. The copy goes to those
 * recipients alone, so neither a retry nor a replay sends the email again to anyone who has it.
 */
import { createHash } from "node:crypto"
import { parseMailbox } from "./addresses.ts"
import type { EmailEvent, JsonObject } from "./EmailEvent.ts"

const sameAddress = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase()

/**
 * The Message-ID of the copy: the original's, with a tag naming the recipients added to its left part, e.g.
 * `<abc.rcpt-3f2a9c0b1d4e@host>`. The same recipients always give the same id, so a redelivered copy keeps it, and
 * it differs from the original's, which the accepted recipients already have.
 */
export const recipientsMessageId = (messageId: string, addresses: ReadonlyArray<string>): string => {
  const id = messageId.replace(/^<|>$/g, "")
  const digest = createHash("sha256")
    .update([...addresses].map((address) => address.toLowerCase()).sort().join("\n"))
    .digest("hex")
    .slice(0, 12)
  const at = id.lastIndexOf("@")
  return at < 0 ? `<${id}.rcpt-${digest}>` : `<${id.slice(0, at)}.rcpt-${digest}${id.slice(at)}>`
}

/**
 * The event's JSON sent to `addresses` (bare envelope addresses) only, with the Message-ID for them. An event that
 * named users keeps naming users (so their realm and language stay) when `userIds` knows each address's user; an
 * event that named its recipients by email keeps their entries as written (display names included); otherwise the
 * copy names the addresses as the server saw them.
 */
export const eventForRecipients = (
  event: EmailEvent,
  messageId: string,
  addresses: ReadonlyArray<string>,
  userIds: ReadonlyMap<string, number> = new Map()
): JsonObject => {
  const { to_email: _email, to_emails: _emails, to_user_id: _userId, to_user_ids: _userIds, ...rest } = event.original
  const message_id = recipientsMessageId(messageId, addresses)
  const ids = addresses.map((address) => userIds.get(address.toLowerCase()))
  if (event.recipients._tag === "UserIds" && ids.every((id) => id !== undefined)) {
    return { ...rest, to_user_ids: [...new Set(ids)], message_id }
  }
  const written = event.recipients._tag === "Emails" ? event.recipients.emails : []
  const entries = addresses.map((address) =>
    written.find((entry) => {
      const mailbox = parseMailbox(entry)
      return mailbox !== null && sameAddress(mailbox.address, address)
    }) ?? address
  )
  return { ...rest, to_emails: entries, message_id }
}
