import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import { createChangeService, type ChangeService } from '../lib/service/change-service.ts'
import { createWebhookDeliverer } from '../lib/service/webhook-deliverer.ts'
import { WORK_MS } from '../lib/support/deadline.ts'
import { sendWebhook } from '../lib/webhooks/send.ts'

declare module 'fastify' {
  interface FastifyInstance {
    changes: ChangeService
  }
}

/**
 * The change feed and webhooks: the service the routes use, and the
 * deliverer that runs beside the booking path on every instance (each
 * endpoint leased to one instance at a time).
 */
export default fp(async (fastify) => {
  const c = fastify.config
  const allow = { http: c.WEBHOOK_ALLOW_HTTP, private: c.WEBHOOK_ALLOW_PRIVATE }
  fastify.decorate('changes', createChangeService({ store: fastify.store, allow, answerWithinMs: c.LOCK_WAIT_MS + WORK_MS }))
  const deliverer = createWebhookDeliverer({
    store: fastify.store,
    // unique per process: a restarted instance does not take its predecessor's leases for its own
    holder: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
    send: sendWebhook,
    rules: { retryBaseMs: c.WEBHOOK_RETRY_BASE_MS, retryMaxMs: c.WEBHOOK_RETRY_MAX_MS, retryHours: c.WEBHOOK_RETRY_HOURS, disableAfter: c.WEBHOOK_DISABLE_AFTER },
    allow,
    timeoutMs: c.WEBHOOK_TIMEOUT_MS,
    leaseMs: c.WEBHOOK_LEASE_MS,
    pollMs: c.WEBHOOK_POLL_MS,
    retentionHours: c.CHANGES_RETENTION_HOURS,
    metrics: fastify.metrics,
    onError: (err) => { fastify.log.warn({ err }, 'webhook delivery round failed; the next tick tries again') }
  })
  fastify.addHook('onReady', async () => { deliverer.start() })
  // before the store closes (onClose hooks run in reverse order): the leases are given back while it is there
  fastify.addHook('onClose', async () => { await deliverer.stop() })
}, { name: 'webhooks', dependencies: ['config', 'store', 'metrics'] })
