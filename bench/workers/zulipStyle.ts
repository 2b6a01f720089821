/**
 * Zulip-style worker (§2 of the Zulip reference): one persistent SMTP connection; deliveries (prefetch 100) are
 * collected into batches of up to 100, flushed when full or 1 s after the previous flush; a batch's events are
 * sent one after another and the batch is acknowledged (`multiple`) once all are done. A failed send is re-published
 * to the tail of the queue with `failed_tries + 1` while `failed_tries <= 3`, as Zulip's `retry_event` does.
 */
import { type ConsumeMessage, connect } from "amqplib"
import { createTransport } from "nodemailer"
import { exitOnSignal, mailOf, parseEvent, poolOptions, settingsFromEnv } from "./common.ts"

const batchSize = 100
const flushAfterMillis = 1000
const maxRequestRetries = 3

const settings = settingsFromEnv()
const transport = createTransport(poolOptions(settings, 1))
const connection = await connect(settings.amqpUrl)
const channel = await connection.createChannel()
await channel.assertQueue(settings.queueName, { durable: true })
await channel.prefetch(Math.max(settings.prefetch, batchSize))

const sendEvent = async (message: ConsumeMessage): Promise<void> => {
  const event = parseEvent(message.content)
  try {
    await transport.sendMail(mailOf(event))
  } catch {
    const failedTries = (event.failed_tries ?? 0) + 1
    if (failedTries <= maxRequestRetries) {
      const retry = Buffer.from(JSON.stringify({ ...event, failed_tries: failedTries }))
      channel.sendToQueue(settings.queueName, retry, { persistent: true })
    }
  }
}

let events: Array<ConsumeMessage> = []
let lastFlush = performance.now()
let consuming = false

/**
 * pika's loop: after each delivery, and on the 1 s inactivity tick, flush a full batch or one whose previous flush
 * started 1 s ago or more.
 */
const maybeFlush = async (): Promise<void> => {
  if (consuming) return
  const now = performance.now()
  if (events.length < batchSize && now < lastFlush + flushAfterMillis) return
  lastFlush = now
  if (events.length === 0) return
  consuming = true
  const batch = events
  events = []
  for (const message of batch) await sendEvent(message)
  channel.ack(batch[batch.length - 1]!, true)
  consuming = false
  await maybeFlush()
}

await channel.consume(settings.queueName, (message) => {
  if (message === null) return
  events.push(message)
  void maybeFlush()
})
const tick = setInterval(() => void maybeFlush(), flushAfterMillis)

exitOnSignal(async () => {
  clearInterval(tick)
  transport.close()
  await connection.close()
})
