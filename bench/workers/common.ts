/** What the two baseline workers share: their settings from the environment, the email they send, shutdown. */
import type { SendMailOptions } from "nodemailer"

export interface BaselineSettings {
  readonly amqpUrl: string
  readonly queueName: string
  readonly smtpPort: number
  readonly connections: number
  readonly prefetch: number
}

const required = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`${name} is not set`)
  return value
}

export const settingsFromEnv = (): BaselineSettings => ({
  amqpUrl: process.env["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672",
  queueName: required("QUEUE_NAME"),
  smtpPort: Number(required("EMAIL_PORT")),
  connections: Number(process.env["SMTP_CONNECTIONS"] ?? "4"),
  prefetch: Number(process.env["PREFETCH"] ?? "100")
})

/** nodemailer's pooled SMTP transport on the sink; connections live as long as the process, like the worker's. */
export const poolOptions = (settings: BaselineSettings, connections: number) => ({
  pool: true as const,
  host: "127.0.0.1",
  port: settings.smtpPort,
  ignoreTLS: true,
  maxConnections: connections,
  maxMessages: Number.POSITIVE_INFINITY
})

interface RenderedEvent {
  readonly subject: string
  readonly text: string
  readonly html?: string
  readonly to_emails: ReadonlyArray<string>
  readonly message_id: string
  readonly failed_tries?: number
}

export const parseEvent = (body: Buffer): RenderedEvent => JSON.parse(body.toString("utf8")) as RenderedEvent

export const mailOf = (event: RenderedEvent): SendMailOptions => ({
  from: "Zulip <noreply@bench.invalid>",
  to: [...event.to_emails],
  subject: event.subject,
  text: event.text,
  ...(event.html === undefined ? {} : { html: event.html }),
  messageId: `<${event.message_id}>`
})

/** A 4xx reply (or no reply at all): worth another try. */
export const isTransient = (error: unknown): boolean => {
  const code = (error as { readonly responseCode?: number }).responseCode
  return code === undefined || (code >= 400 && code < 500)
}

/** SIGTERM/SIGINT: run `stop` and exit; unacknowledged deliveries go back to the broker. */
export const exitOnSignal = (stop: () => Promise<void>): void => {
  const onSignal = () => {
    stop().finally(() => process.exit(0))
  }
  process.once("SIGTERM", onSignal)
  process.once("SIGINT", onSignal)
}
