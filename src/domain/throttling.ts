/**
 * Which SMTP replies mean "you are sending too fast": Amazon SES' `454 Throttling failure`, Microsoft's and Google's
 * `421 4.7.x`, `451 4.7.1`, or any 4xx whose text says so. Such a reply is the provider's limit speaking, not the
 * message's problem: the limiter slows every worker down and the event is requeued without spending a try.
 */
import type { SendEmailError, Unavailable } from "./errors.ts"

const throttlingText = /throttl|\brate\b|rate[ -]?limit|too many/i

/** Whether a 4xx reply (its code and text) is a throttling reply. */
export const isThrottlingReply = (smtpCode: number, response: string): boolean => {
  if (smtpCode < 400 || smtpCode >= 500) return false
  if (smtpCode === 454) return true
  if (smtpCode === 421 && /\b4\.7\.\d+/.test(response)) return true
  if (smtpCode === 451 && /\b4\.7\.1\b/.test(response)) return true
  return throttlingText.test(response)
}

/** Whether a failed send was refused by the provider's rate limit. */
export const isThrottled = (error: SendEmailError | Unavailable): boolean =>
  error._tag === "NotDelivered" && error.smtpCode !== null && isThrottlingReply(error.smtpCode, error.response ?? "")
