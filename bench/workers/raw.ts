/**
 * Raw baseline, the practical ceiling: an amqplib consumer (prefetch 100) feeding nodemailer's pooled transport
 * (`SMTP_CONNECTIONS` connections). Each delivery is sent as soon as it arrives and acknowledged after its 250; a
 * transient refusal puts it straight back on the queue (nack with requeue). No framework, no retry policy.
 */
import { connect } from "amqplib"
import { createTransport } from "nodemailer"
import { exitOnSignal, isTransient, mailOf, parseEvent, poolOptions, settingsFromEnv } from "./common.ts"

const settings = settingsFromEnv()
const transport = createTransport(poolOptions(settings, settings.connections))
const connection = await connect(settings.amqpUrl)
const channel = await connection.createChannel()
await channel.assertQueue(settings.queueName, { durable: true })
await channel.prefetch(settings.prefetch)
await channel.consume(settings.queueName, (message) => {
  if (message === null) return
  transport.sendMail(mailOf(parseEvent(message.content))).then(
    () => channel.ack(message),
    (error: unknown) => isTransient(error) ? channel.nack(message, false, true) : channel.ack(message)
  )
})

exitOnSignal(async () => {
  transport.close()
  await connection.close()
})
