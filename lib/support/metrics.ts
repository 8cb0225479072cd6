/**
 * The service's Prometheus metrics, registered on a Registry the caller owns
 * (one per app, so two apps in one process never share counters). Labels are
 * closed sets: no ids, no raw URLs. The HTTP histogram is plugins/metrics.ts's.
 */
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client'

export const BOOKING_OUTCOMES = ['confirmed', 'held', 'sold_out', 'not_open', 'closed', 'user_limit', 'limit', 'busy', 'replayed', 'invalid', 'denied', 'error'] as const
export const HOLD_OUTCOMES = ['held', 'confirmed', 'expired', 'released'] as const
export type HoldOutcome = typeof HOLD_OUTCOMES[number]
export type BookingOutcome = typeof BOOKING_OUTCOMES[number]

export function createMetrics (register: Registry) {
  collectDefaultMetrics({ register })
  // prom-client's default set has three gauges named *_total, which promtool rejects (prometheus/client_js#283)
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) register.removeSingleMetric(name)
  const registers = [register]
  const metrics = {
    register,
    bookings: new Counter({
      name: 'bookings_total',
      help: 'Booking requests by the outcome answered: confirmed, held, sold_out, user_limit (maxPerUser), limit (rate), busy, replayed, invalid, denied, error',
      labelNames: ['outcome'] as const,
      registers
    }),
    bookedSeats: new Counter({
      name: 'booked_seats_total',
      help: 'Seats sold by confirmed bookings',
      registers
    }),
    cancelledSeats: new Counter({
      name: 'cancelled_seats_total',
      help: 'Seats returned to their section by cancellations',
      registers
    }),
    holds: new Counter({
      name: 'holds_total',
      help: 'Holds by what became of them: held (made), confirmed, expired, released (cancelled while held)',
      labelNames: ['outcome'] as const,
      registers
    }),
    expiredSeats: new Counter({
      name: 'hold_expired_seats_total',
      help: 'Seats returned to their section by expired holds',
      registers
    }),
    holdConfirmSeconds: new Histogram({
      name: 'hold_confirm_seconds',
      help: 'Seconds from a hold to its confirmation',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600],
      registers
    }),
    sweeps: new Counter({
      name: 'expiry_sweeps_total',
      help: 'Runs of the expiry sweeper on this instance (one instance sweeps at a time)',
      registers
    }),
    expiryLag: new Histogram({
      name: 'hold_expiry_lag_seconds',
      help: 'Seconds from a hold\'s expiresAt to its seats being back on sale',
      buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30],
      registers
    }),
    soldOutAnswers: new Counter({
      name: 'sold_out_answers_total',
      help: 'SOLD_OUT answers by where they were decided: memory (a section known sold out, no lock, no transaction) or store (a batch)',
      labelNames: ['source'] as const,
      registers
    }),
    soldOutInvalidations: new Counter({
      name: 'sold_out_invalidations_total',
      help: 'Sold-out memories ended because seats were returned on some instance since the section was seen sold out',
      registers
    }),
    batchSize: new Histogram({
      name: 'booking_batch_size',
      help: 'Section operations (bookings, holds, confirms, cancellations) decided together in one transaction, over all its sections',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers
    }),
    batchSections: new Histogram({
      name: 'booking_batch_sections',
      help: 'Sections whose operations were decided together in one transaction (each under its own lock)',
      buckets: [1, 2, 5, 10, 20, 50, 100],
      registers
    }),
    queueDepth: new Gauge({
      name: 'booking_queue_depth',
      help: 'Section operations waiting for their section batch, summed over sections',
      registers
    }),
    lockAcquire: new Histogram({
      name: 'lock_acquire_seconds',
      help: 'Time in seconds to acquire a section lock, successful or not',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers
    }),
    lockFailures: new Counter({
      name: 'lock_failures_total',
      help: 'Section locks not acquired, by reason: timeout (held elsewhere past the deadline) or unavailable (no quorum)',
      labelNames: ['reason'] as const,
      registers
    }),
    storeTransaction: new Histogram({
      name: 'store_transaction_seconds',
      help: 'Store transaction duration in seconds, retries included, by store and operation (book: a section batch)',
      labelNames: ['store', 'operation'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers
    }),
    storeRetries: new Counter({
      name: 'store_transaction_retries_total',
      help: 'Store transactions run again after a conflict, by store and operation',
      labelNames: ['store', 'operation'] as const,
      registers
    }),
    changesRecorded: new Counter({
      name: 'changes_recorded_total',
      help: 'Changes recorded in the outbox (the change feed) by this instance\'s writes, by type',
      labelNames: ['type'] as const,
      registers
    }),
    webhookDeliveries: new Counter({
      name: 'webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome: delivered (2xx in time), failed (tried again later), gone (410: endpoint disabled), gave_up (past WEBHOOK_RETRY_HOURS: the next change goes on)',
      labelNames: ['outcome'] as const,
      registers
    }),
    webhookDeliverySeconds: new Histogram({
      name: 'webhook_delivery_seconds',
      help: 'Seconds a webhook delivery attempt took, answered or not',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers
    }),
    webhookDisabled: new Counter({
      name: 'webhook_endpoints_disabled_total',
      help: 'Webhook endpoints disabled by this instance, by reason: gone (410) or failures (WEBHOOK_DISABLE_AFTER in a row)',
      labelNames: ['reason'] as const,
      registers
    }),
    webhookLag: new Gauge({
      name: 'webhook_feed_lag_seconds',
      help: 'Age in seconds of the oldest change a webhook endpoint this instance delivers has yet to get, as of its last round (0: caught up)',
      registers
    }),
    waitlistEntries: new Counter({
      name: 'waitlist_entries_total',
      help: 'Entries that joined a section\'s waiting list',
      registers
    }),
    waitlistOffers: new Counter({
      name: 'waitlist_offers_total',
      help: 'Waiting-list offers by what happened: made (seats held for an entry), confirmed, lapsed (ran out), declined (released or left), skipped (would pass maxPerUser; no offer made)',
      labelNames: ['outcome'] as const,
      registers
    }),
    waitlistOfferDelay: new Histogram({
      name: 'waitlist_offer_delay_seconds',
      help: 'Seconds from seats coming back (a hold\'s expiresAt, else the batch that returned them) to their offer to the waiting list',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers
    }),
    storeErrors: new Counter({
      name: 'store_errors_total',
      help: 'Store operations that failed, by kind: unavailable, conflict, query',
      labelNames: ['kind'] as const,
      registers
    })
  }
  // Start outcome series at zero so rate() and alerts see them before the first event.
  for (const outcome of BOOKING_OUTCOMES) metrics.bookings.inc({ outcome }, 0)
  for (const outcome of HOLD_OUTCOMES) metrics.holds.inc({ outcome }, 0)
  for (const source of ['memory', 'store'] as const) metrics.soldOutAnswers.inc({ source }, 0)
  for (const reason of ['timeout', 'unavailable'] as const) metrics.lockFailures.inc({ reason }, 0)
  for (const outcome of ['delivered', 'failed', 'gone', 'gave_up'] as const) metrics.webhookDeliveries.inc({ outcome }, 0)
  for (const reason of ['gone', 'failures'] as const) metrics.webhookDisabled.inc({ reason }, 0)
  return metrics
}

export type Metrics = ReturnType<typeof createMetrics>
