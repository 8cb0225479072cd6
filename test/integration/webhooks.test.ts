/**
 * The change feed and webhooks through the HTTP API, on every store set-up,
 * with a real receiver verifying every signature: who reads the feed and who
 * makes endpoints, what each sees, deliveries in feed order and equal to the
 * feed, retries after 500s, 410 disabling an endpoint, URLs refused, and the
 * metrics.
 */
import t, { type Test } from 'tap'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent } from '../helpers/create-event.ts'
import { injectClient, type ApiClient } from '../helpers/http-client.ts'
import { pollUntil } from '../helpers/poll.ts'
import { parseExposition, total } from '../helpers/prometheus-text.ts'
import { missing } from '../helpers/services.ts'
import { STORE_SETUPS } from '../helpers/store-setups.ts'
import { principals, roleHeaders } from '../helpers/tokens.ts'
import { startReceiver } from '../helpers/webhook-receiver.ts'

const as = await principals()
const customer = await roleHeaders('customer', 'buyer-1')
const otherOrganizer = await roleHeaders('organizer', 'organizer-2')

/** Every change of the feed visible to `client`, following nextCursor from `after`. */
async function feed (client: ApiClient, query = ''): Promise<any[]> {
  const items: any[] = []
  let after: string | undefined
  for (;;) {
    const res = await client.request('GET', `/api/changes?limit=50${query}${after === undefined ? '' : `&after=${after}`}`)
    if (res.status !== 200) throw new Error(`feed answered ${res.status}: ${res.text}`)
    items.push(...res.body.data.items)
    if (res.body.data.items.length === 0) return items
    after = res.body.data.nextCursor
  }
}

const FAST = { WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_POLL_MS: '20', WEBHOOK_RETRY_BASE_MS: '50', WEBHOOK_RETRY_MAX_MS: '200', WEBHOOK_TIMEOUT_MS: '1000', WEBHOOK_LEASE_MS: '3000' }

for (const setup of STORE_SETUPS) {
  const skip = await missing(...setup.needs)
  if (skip !== undefined) console.log(`# SKIPPED webhooks API on ${setup.name}: ${skip}`)

  t.test(`changes and webhooks API on ${setup.name}`, { skip }, async (t: Test) => {
    const app = await buildApp(t, { ...await setup.env(t), ...FAST })
    const service = injectClient(app, as.service)
    const admin = injectClient(app, as.admin)
    const organizer = injectClient(app, as.organizer)
    const stranger = injectClient(app, otherOrganizer)

    t.test('who reads the feed and makes endpoints', async t => {
      t.equal((await injectClient(app).request('GET', '/api/changes')).status, 401)
      t.equal((await injectClient(app, customer).request('GET', '/api/changes')).status, 403)
      const bad = await service.request('GET', '/api/changes?after=12.x')
      t.match([bad.status, bad.body.error], [400, { code: 'VALIDATION_ERROR' }])
      const unknown = await service.request('GET', '/api/changes?after=99999999999999999999.1')
      t.equal(unknown.status, 400, 'a cursor out of any feed\'s range is refused, not a 500')
      t.match((await service.request('GET', '/api/changes?types=booking.sold')).body.error, { code: 'VALIDATION_ERROR' })
      t.equal((await service.request('POST', '/api/webhooks', { url: 'https://example.com/h', types: ['booking.held'] })).status, 403, 'a service makes none')
      const ftp = await organizer.request('POST', '/api/webhooks', { url: 'ftp://example.com/h', types: ['booking.held'] })
      t.match([ftp.status, ftp.body.error], [400, { code: 'VALIDATION_ERROR', field: 'url' }])
      t.equal((await organizer.request('POST', '/api/webhooks', { url: 'https://example.com/h', types: [] })).status, 400)
      t.equal((await organizer.request('POST', '/api/webhooks', { url: 'https://example.com/h', types: ['booking.held', 'booking.held'] })).status, 400)
    })

    t.test('an organizer\'s endpoint gets its events\' changes, in feed order, signed', async t => {
      const receiver = await startReceiver(t)
      const made = await organizer.request('POST', '/api/webhooks', { url: receiver.url, types: ['booking.held', 'booking.confirmed', 'booking.cancelled', 'event.created', 'section.changed'] })
      t.equal(made.status, 201)
      t.match(made.body.data, { scope: 'own_events', disabled: false, failures: 0 })
      t.match(made.body.data.secret, /^whsec_/)
      t.equal(made.headers.location, `/api/webhooks/${made.body.data._id}`)
      receiver.setSecret(made.body.data.secret)
      const id: string = made.body.data._id
      const got = await organizer.request('GET', `/api/webhooks/${id}`)
      t.notOk('secret' in got.body.data, 'the secret is shown once')
      t.equal((await stranger.request('GET', `/api/webhooks/${id}`)).status, 404, 'another organizer does not see it')
      t.equal((await stranger.request('DELETE', `/api/webhooks/${id}`)).status, 404)
      t.same((await stranger.request('GET', '/api/webhooks')).body.data, [])
      t.ok((await admin.request('GET', '/api/webhooks')).body.data.some((w: any) => w._id === id), 'an admin sees every endpoint')

      const { eventId, sectionId } = await createEvent(organizer, [20])
      const other = await createEvent(stranger, [5])
      const held = await service.request('POST', '/api/bookings', { eventId, sectionId, qty: 2, userId: 'u1', hold: true })
      const sold = await service.request('POST', '/api/bookings', { eventId, sectionId, qty: 1, userId: 'u2' })
      await service.request('POST', '/api/bookings', { eventId: other.eventId, sectionId: other.sectionId, qty: 1, userId: 'u3' })
      await service.request('POST', `/api/bookings/${held.body.data._id}/confirm`, { paymentRef: 'p1' })
      await service.request('POST', `/api/bookings/${sold.body.data._id}/cancel`)
      await organizer.request('PATCH', `/api/events/${eventId}/sections/${sectionId}`, { capacity: 25 })

      const mine = (await feed(admin)).filter(c => c.eventId === eventId)
      t.same(mine.map(c => c.type), ['event.created', 'booking.held', 'booking.confirmed', 'booking.confirmed', 'booking.cancelled', 'section.changed'])
      t.same((await feed(organizer)).filter(c => c.eventId === other.eventId), [], 'an organizer reads only its own events\' changes')
      t.same((await feed(service, '&types=booking.cancelled')).map(c => c.type), ['booking.cancelled'])
      await pollUntil('every change delivered', async () => receiver.accepted().length >= mine.length ? true : undefined, { timeoutMs: 20_000 })
      const accepted = receiver.accepted()
      t.same(accepted.map(d => d.change), mine, 'the deliveries are the feed, in its order')
      t.ok(receiver.deliveries.every(d => d.verified), 'every signature verifies')
      t.ok(accepted.every(d => d.id === d.change.id), 'webhook-id is the change\'s id')
      t.notOk(receiver.deliveries.some(d => d.change.eventId === other.eventId), 'nothing of another organizer\'s event')
      await pollUntil('progress saved', async () => (await organizer.request('GET', `/api/webhooks/${id}`)).body.data.delivered >= mine.length ? true : undefined)
      t.equal((await organizer.request('DELETE', `/api/webhooks/${id}`)).status, 204)
      t.equal((await organizer.request('GET', `/api/webhooks/${id}`)).status, 404)
    })

    t.test('a failing receiver is tried again with the same id and body; 410 disables', async t => {
      const receiver = await startReceiver(t)
      const made = await admin.request('POST', '/api/webhooks', { url: receiver.url, types: ['booking.confirmed'] })
      t.match(made.body.data, { scope: 'all_events' })
      receiver.setSecret(made.body.data.secret)
      const id: string = made.body.data._id
      receiver.mode = 'fail'
      const { eventId, sectionId } = await createEvent(organizer, [5])
      const booked = await service.request('POST', '/api/bookings', { eventId, sectionId, qty: 1, userId: 'r1' })
      await pollUntil('three failed tries', async () => receiver.deliveries.length >= 3 ? true : undefined)
      const failing = (await admin.request('GET', `/api/webhooks/${id}`)).body.data
      t.ok(failing.failures >= 1, 'failures counted')
      t.match(failing.lastError, /HTTP 500/)
      receiver.mode = 'ok'
      await pollUntil('delivered once the receiver is back', async () => receiver.accepted().length === 1 ? true : undefined)
      const tries = receiver.deliveries
      t.ok(tries.every(d => d.id === tries[0].id && JSON.stringify(d.change) === JSON.stringify(tries[0].change)), 'the same id and body on every try')
      t.match(tries[0].change, { type: 'booking.confirmed', data: { _id: booked.body.data._id } })
      await pollUntil('failures reset', async () => (await admin.request('GET', `/api/webhooks/${id}`)).body.data.failures === 0 ? true : undefined)

      receiver.mode = 'gone'
      await service.request('POST', '/api/bookings', { eventId, sectionId, qty: 1, userId: 'r2' })
      const disabled = await pollUntil('disabled by 410', async () => {
        const w = (await admin.request('GET', `/api/webhooks/${id}`)).body.data
        return w.disabled === true ? w : undefined
      })
      t.match(disabled, { disabled: true, disabledReason: /410/ })
      const before = receiver.deliveries.length
      receiver.mode = 'ok'
      await service.request('POST', '/api/bookings', { eventId, sectionId, qty: 1, userId: 'r3' })
      await new Promise(resolve => setTimeout(resolve, 300))
      t.equal(receiver.deliveries.length, before, 'a disabled endpoint gets nothing more')

      const metrics = parseExposition((await app.inject('/metrics')).body)
      t.ok(total(metrics, 'webhook_deliveries_total', { outcome: 'delivered' }) >= 1)
      t.ok(total(metrics, 'webhook_deliveries_total', { outcome: 'failed' }) >= 3)
      t.equal(total(metrics, 'webhook_endpoints_disabled_total', { reason: 'gone' }), 1)
      t.ok(total(metrics, 'changes_recorded_total', { type: 'booking.confirmed' }) >= 3)
      t.ok(total(metrics, 'changes_recorded_total', { type: 'event.created' }) >= 1)
    })
  })
}

t.test('webhook URLs: https and public addresses only, unless allowed', async (t: Test) => {
  const app = await buildApp(t, { ...await STORE_SETUPS[0].env(t) })
  const organizer = injectClient(app, as.organizer)
  for (const url of ['http://example.com/h', 'https://127.0.0.1/h', 'https://10.1.2.3/h', 'https://localhost/h', 'https://[::1]/h', 'https://169.254.169.254/latest']) {
    const res = await organizer.request('POST', '/api/webhooks', { url, types: ['booking.held'] })
    t.match([res.status, res.body.error], [400, { code: 'VALIDATION_ERROR', field: 'url' }], url)
  }
  t.equal((await organizer.request('POST', '/api/webhooks', { url: 'https://hooks.example.com/h', types: ['booking.held'] })).status, 201)
})
