/**
 * Holds through the HTTP API, on every store set-up: hold, confirm (and its
 * webhook retries), 410 past expiresAt, release, the sweeper returning seats
 * with no traffic at all, maxPerUser, who may confirm, the answers' schemas
 * and the hold metrics.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent, type EventView } from '../helpers/create-event.ts'
import { injectClient, type ApiClient } from '../helpers/http-client.ts'
import { checkViaApi } from '../helpers/invariant.ts'
import { parseExposition, total } from '../helpers/prometheus-text.ts'
import { missing } from '../helpers/services.ts'
import { STORE_SETUPS } from '../helpers/store-setups.ts'
import { principals, roleHeaders } from '../helpers/tokens.ts'

const as = await principals()
/** Short, so expiry is waited out in the test; the sweeper runs often. */
const HOLD_TTL_MS = 1000
const EXPIRY_SWEEP_MS = 100

async function sectionOf (app: FastifyInstance, eventId: string): Promise<EventView['sections'][number]> {
  return (await app.inject(`/api/events/${eventId}`)).json().data.sections[0]
}

for (const setup of STORE_SETUPS) {
  const skip = await missing(...setup.needs)
  if (skip !== undefined) console.log(`# SKIPPED holds API on ${setup.name}: ${skip}`)

  t.test(`holds API on ${setup.name}`, { skip }, async (t: Test) => {
    const env = await setup.env(t)
    const app = await buildApp(t, { ...env, HOLD_TTL_MS: String(HOLD_TTL_MS), EXPIRY_SWEEP_MS: String(EXPIRY_SWEEP_MS) })
    const service = injectClient(app, as.service)
    const organizer = injectClient(app, as.organizer)
    const newEvent = async (capacity: number, rules: { holdSeconds?: number, maxPerUser?: number } = {}) =>
      await createEvent(organizer, [capacity], { name: 'Checkout', price: 40, ...rules })
    const hold = async (client: ApiClient, eventId: string, sectionId: string, qty: number, userId?: string) =>
      await client.request('POST', '/bookings', { eventId, sectionId, qty, hold: true, ...(userId === undefined ? {} : { userId }) })

    t.test('hold, confirm, the webhook\'s retry, another paymentRef', async t => {
      const { eventId, sectionId, event } = await newEvent(5, { holdSeconds: 600 })
      t.match(event, { holdSeconds: 600, sections: [{ capacity: 5, remaining: 5, held: 0, sold: 0 }] })
      const held = await hold(service, eventId, sectionId, 2, 'buyer-1')
      t.equal(held.status, 201)
      t.match(held.body.data, { status: 'held', qty: 2, userId: 'buyer-1', amount: 80 })
      t.equal(Date.parse(held.body.data.expiresAt) - Date.parse(held.body.data.createdAt), 600_000, 'the event\'s holdSeconds')
      t.match(await sectionOf(app, eventId), { remaining: 3, held: 2, sold: 0 })
      const id: string = held.body.data._id
      const confirmed = await service.request('POST', `/api/bookings/${id}/confirm`, { paymentRef: 'psp-123' })
      t.equal(confirmed.status, 200)
      t.match(confirmed.body.data, { _id: id, status: 'confirmed', paymentRef: 'psp-123' })
      t.ok(confirmed.body.data.confirmedAt)
      const retry = await service.request('POST', `/api/bookings/${id}/confirm`, { paymentRef: 'psp-123' })
      t.same([retry.status, retry.body.data], [200, confirmed.body.data], 'the same paymentRef answers the same')
      const other = await service.request('POST', `/api/bookings/${id}/confirm`, { paymentRef: 'psp-999' })
      t.match([other.status, other.body.error], [409, { code: 'INVALID_STATE', status: 'confirmed' }])
      t.match(await sectionOf(app, eventId), { remaining: 3, held: 0, sold: 2 })
      t.same((await checkViaApi(service, eventId)).problems, [])
    })

    t.test('a confirm may come without a body', async t => {
      const { eventId, sectionId } = await newEvent(2)
      const held = await hold(service, eventId, sectionId, 1, 'buyer-2')
      const confirmed = await service.request('POST', `/api/bookings/${held.body.data._id as string}/confirm`)
      t.match([confirmed.status, confirmed.body.data], [200, { status: 'confirmed' }])
      t.notOk(confirmed.body.data.paymentRef)
    })

    t.test('past expiresAt: 410 HOLD_EXPIRED, the seats are back, and nothing is confirmed', async t => {
      const { eventId, sectionId } = await newEvent(2)
      const held = await hold(service, eventId, sectionId, 2, 'late-payer')
      t.equal(Date.parse(held.body.data.expiresAt) - Date.parse(held.body.data.createdAt), HOLD_TTL_MS, 'HOLD_TTL_MS without holdSeconds')
      await sleep(HOLD_TTL_MS + 50)
      const late = await service.request('POST', `/api/bookings/${held.body.data._id as string}/confirm`, { paymentRef: 'late' })
      t.match([late.status, late.body.error], [410, { code: 'HOLD_EXPIRED' }])
      const stored = await service.request('GET', `/api/bookings/${held.body.data._id as string}`)
      t.match(stored.body.data, { status: 'expired' })
      t.match(await sectionOf(app, eventId), { remaining: 2, held: 0, sold: 0 })
      t.same((await checkViaApi(service, eventId)).problems, [])
    })

    t.test('the sweeper returns the seats of an expired hold with no traffic at all', async t => {
      const { eventId, sectionId } = await newEvent(3)
      await hold(service, eventId, sectionId, 3, 'walked-away')
      t.match(await sectionOf(app, eventId), { remaining: 0, held: 3 })
      // no request touches the section: only the sweeper can give the seats back
      let section = await sectionOf(app, eventId)
      for (let i = 0; i < 100 && section.remaining !== 3; i++) {
        await sleep(EXPIRY_SWEEP_MS)
        section = await sectionOf(app, eventId)
      }
      t.match(section, { remaining: 3, held: 0, sold: 0 }, 'the seats are back')
      const list = await service.request('GET', `/bookings?eventId=${eventId}&status=expired`)
      t.equal(list.body.data.total, 1, 'listed as expired')
    })

    t.test('cancel releases a hold: the seats are back at once', async t => {
      const { eventId, sectionId } = await newEvent(2, { holdSeconds: 600 })
      const held = await hold(service, eventId, sectionId, 2, 'changed-mind')
      const sold = await service.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId: 'next' })
      t.equal(sold.status, 409, 'held seats are not for sale')
      const released = await service.request('POST', `/api/bookings/${held.body.data._id as string}/cancel`)
      t.match([released.status, released.body.data], [200, { status: 'cancelled' }])
      const next = await service.request('POST', '/bookings', { eventId, sectionId, qty: 2, userId: 'next' })
      t.equal(next.status, 201, 'the released seats sell at once, even right after a sold-out answer')
      const confirm = await service.request('POST', `/api/bookings/${held.body.data._id as string}/confirm`)
      t.match([confirm.status, confirm.body.error], [409, { code: 'INVALID_STATE', status: 'cancelled' }])
    })

    t.test('maxPerUser: 409 LIMIT_EXCEEDED with allowed, for holds and bookings alike', async t => {
      const { eventId, sectionId } = await newEvent(10, { maxPerUser: 3 })
      t.equal((await hold(service, eventId, sectionId, 2, 'capped')).status, 201)
      const over = await service.request('POST', '/bookings', { eventId, sectionId, qty: 2, userId: 'capped' })
      t.match([over.status, over.body.error], [409, { code: 'LIMIT_EXCEEDED', allowed: 1, requested: 2 }])
      t.equal((await service.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId: 'capped' })).status, 201)
    })

    t.test('who confirms: the owner, a service, an admin; not the organizer; another customer sees nothing', async t => {
      const { eventId, sectionId } = await newEvent(5, { holdSeconds: 600 })
      const customer = injectClient(app, await roleHeaders('customer', 'cust-a'))
      const mine = await hold(customer, eventId, sectionId, 1)
      t.match([mine.status, mine.body.data], [201, { userId: 'cust-a', status: 'held' }])
      const path = `/api/bookings/${mine.body.data._id as string}/confirm`
      const stranger = await injectClient(app, await roleHeaders('customer', 'cust-b')).request('POST', path, {})
      t.equal(stranger.status, 404, 'another customer: the booking does not exist for them')
      const byOrganizer = await organizer.request('POST', path, {})
      t.match([byOrganizer.status, byOrganizer.body.error], [403, { code: 'FORBIDDEN' }])
      const anonymous = await app.inject({ method: 'POST', url: path })
      t.equal(anonymous.statusCode, 401)
      t.equal((await customer.request('POST', path, { paymentRef: 'card' })).status, 200, 'the owner confirms')
      const theirs = await hold(service, eventId, sectionId, 1, 'someone')
      t.equal((await injectClient(app, as.admin).request('POST', `/api/bookings/${theirs.body.data._id as string}/confirm`, {})).status, 200, 'an admin confirms')
    })

    t.test('bad input names the field', async t => {
      const { eventId, sectionId } = await newEvent(5)
      const badHold = await service.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId: 'u', hold: 'yes' })
      t.match([badHold.status, badHold.body.error], [400, { code: 'VALIDATION_ERROR', field: 'hold' }])
      const held = await hold(service, eventId, sectionId, 1, 'u')
      const path = `/api/bookings/${held.body.data._id as string}/confirm`
      const badRef = await service.request('POST', path, { paymentRef: '' })
      t.match([badRef.status, badRef.body.error], [400, { field: 'paymentRef' }])
      const extra = await service.request('POST', path, { paymentRef: 'ok', amount: 1 })
      t.match([extra.status, extra.body.error], [400, { field: 'amount' }])
      const badEvent = await organizer.request('POST', '/api/events', { name: 'x', sections: [{ name: 'a', price: 1, capacity: 1 }], maxPerUser: 0 })
      t.match([badEvent.status, badEvent.body.error], [400, { field: 'maxPerUser' }])
      const unknown = await service.request('POST', '/api/bookings/0123456789abcdef01234567/confirm', {})
      t.equal(unknown.status, 404)
    })

    t.test('hold metrics count what became of the holds', async t => {
      const metrics = parseExposition((await app.inject('/metrics')).body)
      for (const outcome of ['held', 'confirmed', 'expired', 'released']) {
        t.ok(total(metrics, 'holds_total', { outcome }) > 0, `holds_total{outcome="${outcome}"} counted`)
      }
      t.ok(total(metrics, 'hold_expired_seats_total') >= 5, 'expired seats returned')
      t.ok(total(metrics, 'hold_confirm_seconds_count') > 0, 'hold to confirm observed')
      t.ok(total(metrics, 'hold_expiry_lag_seconds_count') > 0, 'expiry lag observed')
      t.ok(total(metrics, 'expiry_sweeps_total') > 0, 'the sweeper ran')
      t.ok(total(metrics, 'bookings_total', { outcome: 'user_limit' }) > 0, 'LIMIT_EXCEEDED counted as user_limit')
      t.ok(total(metrics, 'bookings_total', { outcome: 'held' }) > 0, 'holds counted as held bookings')
    })
  })
}
