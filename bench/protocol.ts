/** What the benchmark's processes share: the clock, the refusal rule, the sink's messages and the test events. */

/** Epoch milliseconds with sub-millisecond resolution, comparable between processes on one machine. */
export const wallClockMillis = (): number => performance.timeOrigin + performance.now()

/** FNV-1a, 32 bits: a cheap, stable hash so the sink refuses the same recipients in every run. */
const fnv1a = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

export const isRefusedOnFirstTry = (recipient: string, percent: number): boolean => fnv1a(recipient) % 100 < percent

export interface SinkReport {
  readonly type: "report"
  /** accepted messages, in acceptance order (a duplicate appears twice) */
  readonly messageIds: ReadonlyArray<string>
  readonly acceptedAt: ReadonlyArray<number>
  /** a recipient of the message had been refused once (451) before */
  readonly retried: ReadonlyArray<boolean>
  readonly refusals: number
}

export type SinkMessage =
  | { readonly type: "listening"; readonly port: number }
  | { readonly type: "progress"; readonly distinct: number; readonly total: number }
  | SinkReport

export type SinkRequest = { readonly type: "report" } | { readonly type: "close" }

/** Message-IDs carry the event's index: `<index>.<run>@bench.invalid`. */
export const messageIdOf = (run: string, index: number): string => `${index}.${run}@bench.invalid`

export const indexOfMessageId = (messageId: string): number => Number.parseInt(messageId, 10)

export const recipientOf = (index: number): string => `user${index}@bench.invalid`

const paragraph = "Hello from the benchmark. This paragraph stands for the body of a typical notification email, " +
  "with a few sentences of text and a link to https://chat.example.com/#narrow/stream/1-general.\n"

/** Roughly the size of Zulip's notification emails: 1 KB of text and 3 KB of HTML. */
export const emailText = paragraph.repeat(5)
export const emailHtml = `<html><body>${`<p style="font-family: sans-serif; color: #333">${paragraph}</p>`.repeat(12)}</body></html>`
export const emailSubject = "Benchmark notification"

/** A pre-rendered `email_senders` event (no database or realm needed). */
export const eventFor = (run: string, index: number): string =>
  JSON.stringify({
    subject: emailSubject,
    text: emailText,
    html: emailHtml,
    to_emails: [recipientOf(index)],
    message_id: messageIdOf(run, index)
  })

/**
 * The same email from a Zulip-dialect template: the shipped `invitation` (extends its base, imports its macros and
 * its stylesheet into a `<style>` block, `{% trans %}` blocks, CSS inlined), as Zulip's invitation producer sends it.
 */
export const templateEventFor = (run: string, index: number): string =>
  JSON.stringify({
    template_prefix: "zerver/emails/invitation",
    to_emails: [recipientOf(index)],
    language: "en",
    context: {
      referrer_full_name: "Iago Example",
      referrer_email: "iago@chat.example.com",
      referrer_realm_name: "Example Chat",
      activate_url: `https://chat.example.com/join/${index}-invitation-key/`,
      corporate_enabled: false
    },
    message_id: messageIdOf(run, index)
  })
