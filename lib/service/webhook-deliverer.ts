/**
 * Webhook delivery: every instance ticks, leases the endpoints due a try
 * that no other instance holds (a lease in the store: one deliverer per
 * endpoint), and sends each endpoint's changes one at a time, in feed order,
 * signed (Standard Webhooks: webhook-id is the change's id, the same on
 * every try). Progress is saved under the lease every few deliveries and at
 * the end of a round; an instance that dies leaves its lease to run out, and
 * the next holder sends again from the last saved place: at least once.
 * Deliveries run beside bookings, never in their way: a booking's write has
 * recorded its change already, and nothing here holds a transaction open.
 * The same loop prunes old delivered changes, a small batch per tick.
 */
import { publicChange, type StoredChange } from '../domain/changes.ts'
import { endpointWants, retryDelayMs, type DeliveryRules, type WebhookEndpoint, type WebhookProgress } from '../domain/webhooks.ts'
import type { Metrics } from '../support/metrics.ts'
import type { Store } from '../store/store.ts'
import type { SendInput, SendOutcome } from '../webhooks/send.ts'
import type { WebhookAllow } from '../webhooks/targets.ts'
import { signedHeaders } from '../webhooks/signing.ts'
import { createTicker } from '../support/ticker.ts'

/** Endpoints one instance leases per tick at most. */
const ENDPOINTS_PER_TICK = 20
/** Changes read per page of an endpoint's feed (all types: those it does not want are passed over). */
const PAGE = 100
/** Progress is saved after this many deliveries at most (what a crash may send again). */
const SAVE_EVERY = 20
/** Changes pruned per tick at most; ticks are frequent, so this bounds each delete, not the pace. */
const PRUNE_BATCH = 500
const PRUNE_EVERY_MS = 10_000

export interface WebhookDelivererOptions {
  store: Pick<Store, 'claimWebhooks' | 'saveWebhook' | 'releaseWebhooks' | 'listChanges' | 'pruneChanges'>
  /** this instance, as lease holder */
  holder: string
  send: (input: SendInput) => Promise<SendOutcome>
  rules: DeliveryRules
  allow: WebhookAllow
  timeoutMs: number
  leaseMs: number
  pollMs: number
  retentionHours: number
  metrics: Pick<Metrics, 'webhookDeliveries' | 'webhookDeliverySeconds' | 'webhookDisabled' | 'webhookLag'>
  /** a round that failed on the store: logged, the next tick tries again */
  onError: (err: unknown) => void
  now?: () => number
}

export function createWebhookDeliverer (options: WebhookDelivererOptions) {
  const { store, holder, send, rules, allow, timeoutMs, leaseMs, metrics, onError } = options
  const now = options.now ?? Date.now
  let lastPrune = 0
  /** every store call is bounded: a stalled database costs a round, never the loop (nor shutdown) */
  const within = (): number => now() + Math.max(1000, leaseMs / 4)

  /** One round for one endpoint: its changes in order until it is caught up, fails, or the round has run half its lease. */
  async function round (endpoint: WebhookEndpoint): Promise<void> {
    const until = now() + leaseMs / 2
    const progress: WebhookProgress = {
      cursor: endpoint.cursor,
      failures: endpoint.failures,
      failingSince: endpoint.failingSince,
      nextAttemptAt: endpoint.nextAttemptAt,
      lastError: endpoint.lastError,
      disabled: false,
      delivered: 0
    }
    let unsaved = 0
    const save = async (): Promise<boolean> => {
      const held = await store.saveWebhook(endpoint._id, holder, progress, leaseMs, within())
      progress.delivered = 0
      unsaved = 0
      return held
    }
    let lag = 0
    for (;;) {
      const page = await store.listChanges({ after: progress.cursor, limit: PAGE }, within())
      if (page.items.length > 0) lag = Math.max(lag, (now() - Date.parse(page.items[0].occurredAt)) / 1000)
      for (const change of page.items) {
        if (!endpointWants(endpoint, change)) {
          progress.cursor = change.cursor
          continue
        }
        const delivered = await deliver(endpoint, change, progress)
        unsaved++
        if (!delivered) {
          metrics.webhookLag.set(lag)
          await save()
          return
        }
        if (unsaved >= SAVE_EVERY && !await save()) return
      }
      if (page.items.length < PAGE || now() >= until) break
    }
    if (progress.cursor !== endpoint.cursor || unsaved > 0) await save()
    metrics.webhookLag.set(0)
  }

  /** Sends one change; true when delivered (the cursor moves past it), false when the endpoint waits or is disabled. */
  async function deliver (endpoint: WebhookEndpoint, change: StoredChange, progress: WebhookProgress): Promise<boolean> {
    const body = JSON.stringify(publicChange(change))
    const outcome = await send({ url: endpoint.url, headers: signedHeaders(endpoint.secret, change.id, body, new Date(now())), body, timeoutMs, allow })
    metrics.webhookDeliverySeconds.observe(outcome.ms / 1000)
    const at = now()
    if (outcome.kind === 'delivered') {
      metrics.webhookDeliveries.inc({ outcome: 'delivered' })
      progress.cursor = change.cursor
      progress.failures = 0
      progress.failingSince = undefined
      progress.nextAttemptAt = new Date(at).toISOString()
      progress.delivered++
      return true
    }
    progress.failures++
    progress.failingSince ??= new Date(at).toISOString()
    progress.lastError = `${new Date(at).toISOString()} ${outcome.error}`.slice(0, 500)
    progress.nextAttemptAt = new Date(at + retryDelayMs(progress.failures, rules)).toISOString()
    if (outcome.gone || progress.failures >= rules.disableAfter) {
      metrics.webhookDeliveries.inc({ outcome: outcome.gone ? 'gone' : 'failed' })
      metrics.webhookDisabled.inc({ reason: outcome.gone ? 'gone' : 'failures' })
      progress.disabled = true
      progress.disabledReason = outcome.gone ? 'the receiver answered 410 Gone' : `${progress.failures} failed deliveries in a row`
      return false
    }
    if (at - Date.parse(progress.failingSince) >= rules.retryHours * 3_600_000) {
      // given up: the endpoint goes on with the next change at its next try
      metrics.webhookDeliveries.inc({ outcome: 'gave_up' })
      progress.cursor = change.cursor
      progress.failingSince = undefined
      return false
    }
    metrics.webhookDeliveries.inc({ outcome: 'failed' })
    return false
  }

  async function tick (): Promise<void> {
    try {
      const endpoints = await store.claimWebhooks(holder, leaseMs, ENDPOINTS_PER_TICK, within())
      await Promise.all(endpoints.map(async e => { await round(e).catch(onError) }))
      if (now() - lastPrune >= PRUNE_EVERY_MS) {
        lastPrune = now()
        await store.pruneChanges(new Date(now() - options.retentionHours * 3_600_000), PRUNE_BATCH, within())
      }
    } catch (err) {
      onError(err)
    }
  }

  const ticker = createTicker(options.pollMs, tick)
  return {
    start: ticker.start,
    /** Stops ticking; once the round under way has ended, gives its leases back so another instance goes on at once. */
    async stop (): Promise<void> {
      await ticker.stop()
      await store.releaseWebhooks(holder, within()).catch(onError)
    }
  }
}

export type WebhookDeliverer = ReturnType<typeof createWebhookDeliverer>
