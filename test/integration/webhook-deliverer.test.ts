/**
 * The deliverer's rules over a real store (embedded) and a real receiver
 * that keeps failing: a change that fails for WEBHOOK_RETRY_HOURS is given
 * up and the next one is tried; WEBHOOK_DISABLE_AFTER failures in a row
 * disable the endpoint; the wait between tries grows from the base to the
 * cap, with jitter; and one endpoint's changes are only those it wants.
 */
import { PGlite } from '@electric-sql/pglite'
import { Registry } from 'prom-client'
import t, { type Test } from 'tap'
import { endpointWants, retryDelayMs, type DeliveryRules } from '../../lib/domain/webhooks.ts'
import { createWebhookDeliverer } from '../../lib/service/webhook-deliverer.ts'
import { pgliteClient } from '../../lib/store/sql/pglite-client.ts'
import { createSqlStore } from '../../lib/store/sql/sql-store.ts'
import type { Store } from '../../lib/store/store.ts'
import { createMetrics } from '../../lib/support/metrics.ts'
import { sendWebhook } from '../../lib/webhooks/send.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { pollUntil } from '../helpers/poll.ts'
import { startReceiver } from '../helpers/webhook-receiver.ts'

t.test('the wait between tries: from the base, doubling, capped, jittered in its upper half', async t => {
  const rules = { retryBaseMs: 100, retryMaxMs: 1000 }
  t.same([1, 2, 3, 4, 5, 10].map(n => retryDelayMs(n, rules, () => 1)), [100, 200, 400, 800, 1000, 1000])
  t.same([1, 2, 5].map(n => retryDelayMs(n, rules, () => 0)), [50, 100, 500])
  t.equal(retryDelayMs(1000, rules, () => 1), 1000, 'no overflow far out')
})

t.test('an endpoint wants its types of its owner\'s events (an admin\'s: every event\'s)', async t => {
  const change = { type: 'booking.held' as const, owner: 'org-1' }
  t.ok(endpointWants({ owner: 'org-1', types: ['booking.held'] }, change))
  t.notOk(endpointWants({ owner: 'org-2', types: ['booking.held'] }, change))
  t.notOk(endpointWants({ owner: 'org-1', types: ['booking.confirmed'] }, change))
  t.ok(endpointWants({ owner: '', types: ['booking.held'] }, change))
})

async function setup (t: Test, rules: DeliveryRules) {
  const db = await PGlite.create(await pgliteDataDir(t))
  t.teardown(async () => { await db.close() })
  const store: Store = createSqlStore(pgliteClient(db), { kind: 'embedded' })
  await store.init()
  const receiver = await startReceiver(t)
  receiver.mode = 'fail'
  const metrics = createMetrics(new Registry())
  const deliverer = createWebhookDeliverer({
    store,
    holder: 'test-instance',
    send: sendWebhook,
    rules,
    allow: { http: true, private: true },
    timeoutMs: 500,
    leaseMs: 5000,
    pollMs: 10,
    retentionHours: 24,
    metrics,
    onError: (err) => { t.error(err) }
  })
  t.teardown(deliverer.stop)
  const hook = await store.createWebhook({ _id: 'wh_000000000000000000000001', owner: '', url: receiver.url, types: ['event.created'], secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })
  receiver.setSecret(hook.secret)
  const events = []
  for (const name of ['first', 'second']) events.push(await store.createEvent({ name, sections: [{ name: 'GA', price: 1, capacity: 1 }] }, 'org'))
  deliverer.start()
  return { store, receiver, metrics, hook, events }
}

t.test('a change failing for WEBHOOK_RETRY_HOURS is given up; the next one is tried', async t => {
  // 0.0004 h: 1.44 s of failures per change
  const { store, receiver, metrics, hook, events } = await setup(t, { retryBaseMs: 20, retryMaxMs: 100, retryHours: 0.0004, disableAfter: 10_000 })
  await pollUntil('both changes given up', async () => (await metrics.webhookDeliveries.get()).values.find(v => v.labels.outcome === 'gave_up')?.value === 2 ? true : undefined)
  const tried = [...new Set(receiver.deliveries.map(d => d.change.eventId))]
  t.same(tried, events.map(e => e._id), 'the first change tried until given up, then the second')
  const after = await store.getWebhook(hook._id)
  t.match(after, { disabled: false, lastError: /HTTP 500/ })
  t.ok((after?.failures ?? 0) > 2, 'failures in a row counted on')
  receiver.mode = 'ok'
  const third = await store.createEvent({ name: 'third', sections: [{ name: 'GA', price: 1, capacity: 1 }] }, 'org')
  await pollUntil('the next change delivered', async () => receiver.accepted().some(d => d.change.eventId === third._id) ? true : undefined)
  t.notOk(receiver.accepted().some(d => events.some(e => e._id === d.change.eventId)), 'the given-up changes are not sent again')
})

t.test('WEBHOOK_DISABLE_AFTER failures in a row disable the endpoint', async t => {
  const { store, receiver, metrics, hook } = await setup(t, { retryBaseMs: 10, retryMaxMs: 20, retryHours: 24, disableAfter: 4 })
  const disabled = await pollUntil('disabled', async () => {
    const w = await store.getWebhook(hook._id)
    return w?.disabled === true ? w : undefined
  })
  t.match(disabled, { disabled: true, failures: 4, disabledReason: '4 failed deliveries in a row' })
  t.equal(receiver.deliveries.length, 4, 'tried four times, then no more')
  t.equal((await metrics.webhookDisabled.get()).values.find(v => v.labels.reason === 'failures')?.value, 1)
})
