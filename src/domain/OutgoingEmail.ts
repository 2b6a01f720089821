/**
 * A fully built email, ready for the SMTP connection: every header value is final and safe (the builder has
 * validated addresses and refused control characters), so the transport only serialises it.
 */

export interface OutgoingEmail {
  /** `<id@host>`; the same for every redelivery of one event */
  readonly messageId: string
  /** SMTP envelope: MAIL FROM is always the no-reply address, RCPT TO the bare recipient addresses */
  readonly envelope: { readonly from: string; readonly to: ReadonlyArray<string> }
  readonly from: string
  readonly to: ReadonlyArray<string>
  readonly replyTo: ReadonlyArray<string>
  readonly subject: string
  readonly text: string
  readonly html: string | null
  /** the `Date` header, RFC 2822 */
  readonly date: string
  /** further headers in order, e.g. `List-Id`, `List-Unsubscribe`, `X-Auto-Response-Suppress` */
  readonly headers: ReadonlyArray<readonly [name: string, value: string]>
  /** for log lines only: the template's short name and the realm's string id */
  readonly template: string
  readonly realm: string | null
}

/** What the server said about one message. */
export interface DeliveryReport {
  readonly accepted: ReadonlyArray<string>
  /** recipients refused while others were accepted (a partly delivered message) */
  readonly rejected: ReadonlyArray<{ readonly address: string; readonly smtpCode: number | null; readonly response: string }>
  readonly response: string
}
