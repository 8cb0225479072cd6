/**
 * An event's lifecycle through the HTTP API, on every store set-up: details
 * and dates (400 naming the field), drafts seen by their organizer and admins
 * only, publish / close / cancel, changes by the owner or an admin (403 for
 * another organizer), sections added and edited (409 CAPACITY_BELOW_TAKEN
 * with minimum), the sale window's 409s and their metrics, the sold-out
 * memory ended by a capacity raise, a cancelled event's holds released, and
 * ids in uppercase refused.
 */
import t, { type Test } from 'tap'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent } from '../helpers/create-event.ts'
import { injectClient } from '../helpers/http-client.ts'
import { checkViaApi } from '../helpers/invariant.ts'
import { parseExposition, total } from '../helpers/prometheus-text.ts'
import { missing } from '../helpers/services.ts'
import { STORE_SETUPS } from '../helpers/store-setups.ts'
import { principals, roleHeaders } from '../helpers/tokens.ts'

const as = await principals()
const rival = await roleHeaders('organizer', 'rival-organizer')
const customer = await roleHeaders('customer', 'buyer-1')
const inMs = (ms: number): string => new Date(Date.now() + ms).toISOString()
const GA = [{ name: 'GA', price: 10, capacity: 5 }]

for (const setup of STORE_SETUPS) {
  const skip = await missing(...setup.needs)
  if (skip !== undefined) console.log(`# SKIPPED event lifecycle API on ${setup.name}: ${skip}`)

  t.test(`event lifecycle API on ${setup.name}`, { skip }, async (t: Test) => {
    const app = await buildApp(t, await setup.env(t))
    const organizer = injectClient(app, as.organizer)
    const service = injectClient(app, as.service)
    const admin = injectClient(app, as.admin)
    const other = injectClient(app, rival)
    const buyer = injectClient(app, customer)
    const anonymous = injectClient(app)
    const create = async (body: Record<string, unknown>) => await organizer.request('POST', '/api/events', { name: 'Show', sections: GA, ...body })
    const book = async (eventId: string, sectionId: string, qty = 1, extra: Record<string, unknown> = {}) =>
      await service.request('POST', '/bookings', { eventId, sectionId, qty, userId: 'fan', ...extra })

    t.test('an event made as before is published and on sale; details and dates are kept', async t => {
      const plain = await create({})
      t.equal(plain.status, 201)
      t.match(plain.body.data, { status: 'published', saleState: 'on_sale' })
      const dated = await create({ description: 'Doors 19:00', venue: 'Hall 1', startsAt: '2030-06-01T21:00:00+02:00', endsAt: '2030-06-01T23:00:00Z', salesStart: inMs(3_600_000) })
      t.equal(dated.status, 201)
      t.match(dated.body.data, { description: 'Doors 19:00', venue: 'Hall 1', startsAt: '2030-06-01T19:00:00.000Z', saleState: 'not_open' })
      t.same((await anonymous.request('GET', `/api/events/${dated.body.data._id as string}`)).body.data, dated.body.data, 'read back as answered')
    })

    t.test('dates out of order and malformed ones are 400 naming the field', async t => {
      const ends = await create({ startsAt: '2030-06-01T19:00:00Z', endsAt: '2030-06-01T18:00:00Z' })
      t.match([ends.status, ends.body.error], [400, { code: 'VALIDATION_ERROR', field: 'endsAt' }])
      const sales = await create({ salesStart: '2030-06-01T19:00:00Z', salesEnd: '2030-06-01T19:00:00Z' })
      t.match([sales.status, sales.body.error], [400, { code: 'VALIDATION_ERROR', field: 'salesEnd' }])
      const malformed = await create({ salesStart: 'next tuesday' })
      t.match([malformed.status, malformed.body.error], [400, { code: 'VALIDATION_ERROR', field: 'salesStart' }])
      const status = await create({ status: 'cancelled' })
      t.match([status.status, status.body.error], [400, { field: 'status' }], 'an event is created draft or published')
    })

    t.test('a draft is seen by its organizer and admins only, and takes no booking until published', async t => {
      const draft = await create({ status: 'draft' })
      const id: string = draft.body.data._id
      const sectionId: string = draft.body.data.sections[0]._id
      t.match(draft.body.data, { status: 'draft', saleState: 'draft' })
      for (const [who, client] of [['anonymous', anonymous], ['a customer', buyer], ['another organizer', other]] as const) {
        t.equal((await client.request('GET', `/api/events/${id}`)).status, 404, `${who}: 404`)
        t.notOk((await client.request('GET', '/api/events?limit=100')).body.data.items.some((e: { _id: string }) => e._id === id), `${who}: not listed`)
      }
      for (const client of [organizer, admin]) {
        t.equal((await client.request('GET', `/api/events/${id}`)).status, 200)
        t.ok((await client.request('GET', '/api/events?limit=100')).body.data.items.some((e: { _id: string }) => e._id === id), 'listed')
      }
      t.equal((await anonymous.request('GET', `/api/events/${id}`, undefined, { authorization: 'Bearer nonsense' })).status, 401, 'a token sent is checked')
      t.match((await book(id, sectionId)).body.error, { code: 'NOT_FOUND' }, 'a draft takes no booking')
      t.equal((await other.request('POST', `/api/events/${id}/publish`)).status, 404, 'another organizer does not see it')
      const published = await organizer.request('POST', `/api/events/${id}/publish`)
      t.match([published.status, published.body.data], [200, { status: 'published', saleState: 'on_sale' }])
      t.equal((await anonymous.request('GET', `/api/events/${id}`)).status, 200, 'seen by all once published')
      t.equal((await book(id, sectionId)).status, 201)
    })

    t.test('publish, close, cancel: idempotent, refused where the move is not allowed', async t => {
      const { eventId, sectionId } = await createEvent(organizer, [5])
      t.equal((await other.request('POST', `/api/events/${eventId}/close`)).status, 403, 'another organizer: 403')
      t.equal((await buyer.request('POST', `/api/events/${eventId}/close`)).status, 403, 'a customer: 403')
      const held = await book(eventId, sectionId, 1, { hold: true })
      t.equal(held.status, 201)
      const closed = await organizer.request('POST', `/api/events/${eventId}/close`)
      t.match([closed.status, closed.body.data], [200, { status: 'closed', saleState: 'closed' }])
      t.equal((await organizer.request('POST', `/api/events/${eventId}/close`)).status, 200, 'closing again changes nothing')
      t.match((await book(eventId, sectionId)).body.error, { code: 'SALE_CLOSED' })
      const confirmed = await service.request('POST', `/api/bookings/${held.body.data._id as string}/confirm`, { paymentRef: 'psp-1' })
      t.match([confirmed.status, confirmed.body.data], [200, { status: 'confirmed' }], 'a hold taken in the window is confirmed after it')
      t.equal((await admin.request('POST', `/api/events/${eventId}/publish`)).status, 200, 'an admin reopens it')
      t.equal((await book(eventId, sectionId)).status, 201)
      t.match((await organizer.request('POST', `/api/events/${eventId}/cancel`)).body.data, { status: 'cancelled', saleState: 'cancelled' })
      const again = await organizer.request('POST', `/api/events/${eventId}/publish`)
      t.match([again.status, again.body.error], [409, { code: 'INVALID_STATE', status: 'cancelled' }])
      t.match((await book(eventId, sectionId)).body.error, { code: 'SALE_CLOSED' })
    })

    t.test('cancelling an event releases its holds; confirmed bookings stay', async t => {
      const { eventId, sectionId } = await createEvent(organizer, [10])
      const held = await book(eventId, sectionId, 3, { hold: true })
      const sold = await book(eventId, sectionId, 2)
      await organizer.request('POST', `/api/events/${eventId}/cancel`)
      const section = (await anonymous.request('GET', `/api/events/${eventId}`)).body.data.sections[0]
      t.match(section, { remaining: 8, held: 0, sold: 2 })
      t.match((await service.request('GET', `/api/bookings/${held.body.data._id as string}`)).body.data, { status: 'cancelled' })
      t.match((await service.request('GET', `/api/bookings/${sold.body.data._id as string}`)).body.data, { status: 'confirmed' })
      t.same((await checkViaApi(service, eventId)).problems, [])
    })

    t.test('PATCH an event: fields set and cleared, dates checked against what is stored, owner or admin only', async t => {
      const { eventId, sectionId } = await createEvent(organizer, [5])
      const patched = await organizer.request('PATCH', `/api/events/${eventId}`, { name: 'Renamed', venue: 'Hall 2', startsAt: '2030-01-01T20:00:00Z', salesStart: inMs(3_600_000) })
      t.match([patched.status, patched.body.data], [200, { name: 'Renamed', venue: 'Hall 2', saleState: 'not_open' }])
      const refused = await book(eventId, sectionId)
      t.match([refused.status, refused.body.error], [409, { code: 'SALE_NOT_OPEN', opensAt: patched.body.data.salesStart }])
      // answered from memory now; a change must end that memory before it is answered
      t.match((await book(eventId, sectionId)).body.error, { code: 'SALE_NOT_OPEN' })
      const opened = await organizer.request('PATCH', `/api/events/${eventId}`, { salesStart: null, venue: null })
      t.equal(opened.status, 200)
      t.notOk('venue' in opened.body.data, 'null clears it')
      t.equal((await book(eventId, sectionId)).status, 201, 'on sale the moment the change is answered')
      const ends = await organizer.request('PATCH', `/api/events/${eventId}`, { endsAt: '2029-12-31T00:00:00Z' })
      t.match([ends.status, ends.body.error], [400, { field: 'endsAt' }], 'before the stored startsAt')
      t.equal((await other.request('PATCH', `/api/events/${eventId}`, { name: 'Mine' })).status, 403)
      t.equal((await admin.request('PATCH', `/api/events/${eventId}`, { name: 'By admin' })).status, 200)
      t.equal((await organizer.request('PATCH', `/api/events/${eventId}`, {})).status, 400, 'an empty change is refused')
      t.match((await organizer.request('PATCH', `/api/events/${eventId}`, { sections: [] })).body.error, { code: 'VALIDATION_ERROR' })
      const ended = await organizer.request('PATCH', `/api/events/${eventId}`, { salesEnd: inMs(-1000), salesStart: inMs(-60_000) })
      t.match(ended.body.data, { saleState: 'ended' })
      t.match((await book(eventId, sectionId)).body.error, { code: 'SALE_CLOSED' })
    })

    t.test('sections: added on sale at once, edited in their batch, capacity never below held + sold', async t => {
      const { eventId, sectionId } = await createEvent(organizer, [2])
      t.equal((await book(eventId, sectionId, 2)).status, 201)
      t.match((await book(eventId, sectionId)).body.error, { code: 'SOLD_OUT' })
      t.match((await book(eventId, sectionId)).body.error, { code: 'SOLD_OUT' }, 'from memory')
      const raised = await organizer.request('PATCH', `/api/events/${eventId}/sections/${sectionId}`, { capacity: 4 })
      t.match([raised.status, raised.body.data], [200, { _id: sectionId, capacity: 4, remaining: 2, sold: 2 }])
      t.equal((await book(eventId, sectionId)).status, 201, 'the raised seats are sold at once: the sold-out memory ended')
      const below = await organizer.request('PATCH', `/api/events/${eventId}/sections/${sectionId}`, { capacity: 2 })
      t.match([below.status, below.body.error], [409, { code: 'CAPACITY_BELOW_TAKEN', minimum: 3, requested: 2 }])
      const priced = await organizer.request('PATCH', `/api/events/${eventId}/sections/${sectionId}`, { price: 25, name: 'Front' })
      t.match(priced.body.data, { name: 'Front', price: 25 })
      t.match((await book(eventId, sectionId)).body.data, { unitPrice: 25 })
      t.equal((await other.request('PATCH', `/api/events/${eventId}/sections/${sectionId}`, { capacity: 9 })).status, 403)
      t.equal((await organizer.request('PATCH', `/api/events/${eventId}/sections/${'0'.repeat(24)}`, { capacity: 9 })).status, 404)
      t.match((await organizer.request('PATCH', `/api/events/${eventId}/sections/${sectionId}`, { capacity: 0 })).body.error, { field: 'capacity' })
      const added = await organizer.request('POST', `/api/events/${eventId}/sections`, { name: 'Balcony', price: 15, capacity: 3 })
      t.match([added.status, added.body.data], [201, { name: 'Balcony', capacity: 3, remaining: 3, held: 0, sold: 0 }])
      t.equal((await book(eventId, added.body.data._id as string, 3)).status, 201)
      t.equal((await other.request('POST', `/api/events/${eventId}/sections`, { name: 'X', price: 1, capacity: 1 })).status, 403)
      t.same((await checkViaApi(service, eventId)).problems, [])
    })

    t.test('ids are lowercase hex: another case is 400 on every route', async t => {
      const { eventId, sectionId } = await createEvent(organizer, [5])
      const upper = eventId.toUpperCase()
      t.match((await anonymous.request('GET', `/api/events/${upper}`)).body.error, { code: 'VALIDATION_ERROR' })
      t.match((await book(upper, sectionId)).body.error, { code: 'VALIDATION_ERROR', field: 'eventId' })
      t.match((await organizer.request('PATCH', `/api/events/${upper}`, { name: 'x' })).body.error, { code: 'VALIDATION_ERROR' })
    })

    t.test('the sale window\'s refusals are counted', async t => {
      const text = (await app.inject('/metrics')).body
      const samples = parseExposition(text)
      t.ok(total(samples, 'bookings_total', { outcome: 'not_open' }) >= 2, 'not_open counted')
      t.ok(total(samples, 'bookings_total', { outcome: 'closed' }) >= 3, 'closed counted')
    })
  })
}
