/**
 * The worker's metrics, all named `email_senders_*`. The pipeline updates the counters and histograms as events
 * settle; the gauges that mirror state (the SMTP pool, the broker connection, events in flight) are sampled when
 * `/metrics` is scraped (`operations/OperationsHttp.ts`), which serialises everything with Effect's Prometheus format.
 */
import { Clock, Duration, Effect, Metric } from "effect"

export const eventsConsumed = Metric.counter("email_senders_events_consumed_total", {
  description: "Deliveries taken from the queue",
  incremental: true
})

/** consumed − settled is what is in flight (`eventsInFlight`, computed when `/metrics` is scraped) */
export const eventsSettled = Metric.counter("email_senders_events_settled_total", {
  description: "Deliveries settled: acknowledged after a send, requeued, recorded as failed, or handed back",
  incremental: true
})

export const emailsSent = Metric.counter("email_senders_emails_sent_total", {
  description: "Emails the SMTP server accepted (250)",
  incremental: true
})

export const sendRetries = Metric.counter("email_senders_send_retries_total", {
  description: "In-process send attempts beyond the first (SEND_ATTEMPTS)",
  incremental: true
})

export const eventsRequeued = Metric.counter("email_senders_events_requeued_total", {
  description: "Events put back on the queue for a later try (failed_tries + 1)",
  incremental: true
})

/** labelled `error` (the error tag) and `smtp_class` (`4xx`, `5xx` or `none`) */
export const eventsFailed = Metric.counter("email_senders_events_failed_total", {
  description: "Events recorded in the errors file, by error tag and SMTP reply class",
  incremental: true
})

export const smtpSendSeconds = Metric.histogram("email_senders_smtp_send_seconds", {
  description: "Duration of one SMTP send call, whatever its outcome",
  boundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
})

export const deliveryLatencySeconds = Metric.histogram("email_senders_delivery_latency_seconds", {
  description: "From the event's Date header (its enqueue time) to the SMTP server's 250",
  boundaries: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400]
})

/** sampled when `/metrics` is scraped, as consumed − settled, so settling an event costs no more than a counter */
export const eventsInFlight = Metric.gauge("email_senders_events_in_flight", {
  description: "Deliveries being settled right now"
})

export const eventsWaitingOnOutage = Metric.gauge("email_senders_events_waiting_on_outage", {
  description: "Events waiting for SMTP or the database to come back (Unavailable)"
})

export const deliveriesRetryingFailureStore = Metric.gauge("email_senders_deliveries_retrying_failure_store", {
  description: "Deliveries holding a slot while their failure record cannot be written (the errors file); /readyz is not ready meanwhile"
})

export const consumerPaused = Metric.gauge("email_senders_consumer_paused", {
  description: "1 while at least one event is waiting for an outage to end"
})

export const brokerConnected = Metric.gauge("email_senders_broker_connected", {
  description: "1 while the RabbitMQ connection is open"
})

/** labelled `node`: one series per node of `AMQP_URL` (password hidden) */
export const brokerNode = Metric.gauge("email_senders_broker_node", {
  description: "1 for the RabbitMQ node the connection is open to, 0 for the other nodes of AMQP_URL"
})

export const smtpConnectionsOpen = Metric.gauge("email_senders_smtp_connections_open", {
  description: "SMTP connections open"
})

export const smtpConnectionsBusy = Metric.gauge("email_senders_smtp_connections_busy", {
  description: "SMTP connections in use by a send or a health check"
})

export const smtpConnectionsWaiting = Metric.gauge("email_senders_smtp_connections_waiting", {
  description: "Sends waiting for an SMTP connection: all are busy, or the pool is opening the one they need"
})

export const smtpHealthy = Metric.gauge("email_senders_smtp_healthy", {
  description: "1 when SMTP answers: the latest connection opening or NOOP succeeded (a NOOP is made at the scrape when it is older than READY_SMTP_CHECK_AGE)"
})

/**
 * Every counter at 0 from the start, and the histograms and outage gauges registered empty, so a scrape (and a
 * dashboard, an alert rule) sees the series before the first event.
 */
export const registerCounters: Effect.Effect<void> = Effect.forEach(
  [eventsConsumed, eventsSettled, emailsSent, sendRetries, eventsRequeued],
  (counter) => Metric.update(counter, 0),
  { discard: true }
).pipe(Effect.andThen(Effect.forEach(
  [smtpSendSeconds, deliveryLatencySeconds, eventsWaitingOnOutage, deliveriesRetryingFailureStore],
  (metric: Metric.Metric<number, unknown>) => Metric.value(metric),
  { discard: true }
)))

export const smtpCodeClass = (smtpCode: number | null): "4xx" | "5xx" | "none" =>
  smtpCode !== null && smtpCode >= 400 && smtpCode < 500 ? "4xx" : smtpCode !== null && smtpCode >= 500 ? "5xx" : "none"

export const countFailure = (reason: { readonly tag: string; readonly smtpCode: number | null }): Effect.Effect<void> =>
  Metric.update(Metric.withAttributes(eventsFailed, { error: reason.tag, smtp_class: smtpCodeClass(reason.smtpCode) }), 1)

export const timeSmtpSend = <A, E, R>(send: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.trackDuration(send, smtpSendSeconds, Duration.toSeconds)

/** Seconds from the event's `Date` header to now; nothing when the event carries no (parsable) date. */
export const observeDeliveryLatency = (date: string | null): Effect.Effect<void> => {
  const enqueuedAt = date === null ? Number.NaN : Date.parse(date)
  if (Number.isNaN(enqueuedAt)) return Effect.void
  return Effect.flatMap(
    Clock.currentTimeMillis,
    (now) => Metric.update(deliveryLatencySeconds, Math.max(0, now - enqueuedAt) / 1000)
  )
}

// ---- sending limits and the duplicate ledger (src/limits/) ----------------------------------------------------------

export const duplicatesSuppressed = Metric.counter("email_senders_duplicates_suppressed_total", {
  description: "Redelivered or retried events acknowledged without sending: their Message-ID is in the ledger (sent before)",
  incremental: true
})

export const throttledReplies = Metric.counter("email_senders_throttled_replies_total", {
  description: "Throttling replies from the SMTP server (454, 421 4.7.x, 451 4.7.1, 4xx saying rate or too many), fed back to the rate limiter",
  incremental: true
})

export const rateLimitWaitSeconds = Metric.histogram("email_senders_rate_limit_wait_seconds", {
  description: "Time an email waited for the rate limit (EMAIL_RATE_LIMIT, RATE_LIMIT_DOMAINS, throttling) before its send",
  boundaries: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600]
})

/** the window in which a crash can still duplicate an email: from the pipeline having the 250 to the ledger's write */
export const ledgerWindowSeconds = Metric.histogram("email_senders_ledger_window_seconds", {
  description: "From the SMTP server's 250 reaching the pipeline to the ledger write done: the only window in which a crash still duplicates",
  boundaries: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
})

/** labelled `use`: `rate_limit` or `ledger` */
export const redisFallbacks = Metric.counter("email_senders_redis_fallbacks_total", {
  description: "Operations done without Redis while it could not be reached: a per-process rate limit, a ledger check or write skipped",
  incremental: true
})

/** sampled when `/metrics` is scraped, from the connection's state */
export const redisConnected = Metric.gauge("email_senders_redis_connected", {
  description: "1 while the Redis connection (REDIS_URL) is up; while 0, limits are per process and the ledger skipped (REDIS_OUTAGE=fallback), or sending waits (stop)"
})
