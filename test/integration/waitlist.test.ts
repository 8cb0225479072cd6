/**
 * The waiting list through the HTTP API, on every store set-up: who may join
 * for whom and when (409 SEATS_AVAILABLE, 200 for the same entry), who sees
 * which entries, leaving, an offer made when seats come back and confirmed as
 * any hold, the sold-out answer to the public meanwhile, the answers'
 * schemas and the waiting-list metrics.
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
const alice = await roleHeaders('customer', 'alice')
const bob = await roleHeaders('customer', 'bob')
const otherOrganizer = await roleHeaders('organizer', 'someone-else')

for (const setup of STORE_SETUPS) {
  const skip = await missing(...setup.needs)
  if (skip !== undefined) console.log(`# SKIPPED waitlist API on ${setup.name}: ${skip}`)

  t.test(`waitlist API on ${setup.name}`, { skip }, async (t: Test) => {
    const env = await setup.env(t)
    const app = await buildApp(t, env)
    const service = injectClient(app, as.service)
    const organizer = injectClient(app, as.organizer)
    const customerA = injectClient(app, alice)
    const customerB = injectClient(app, bob)
    const stranger = injectClient(app, otherOrganizer)

    const { eventId, sectionId } = await createEvent(organizer, [2], { name: 'Waitlisted', waitlistOfferSeconds: 120 })
    const url = `/api/events/${eventId}/waitlist`

    const early = await customerA.request('POST', url, { sectionId, qty: 1 })
    t.match([early.status, early.body.error], [409, { code: 'SEATS_AVAILABLE', remaining: 2, requested: 1 }], 'seats there: book instead')
    const sold = await service.request('POST', '/api/bookings', { eventId, sectionId, qty: 2, userId: 'buyer' })
    t.equal(sold.status, 201)

    const joined = await customerA.request('POST', url, { sectionId, qty: 2 })
    t.equal(joined.status, 201)
    t.match(joined.body.data, { eventId, sectionId, userId: 'alice', qty: 2, position: 1, status: 'waiting' })
    const again = await customerA.request('POST', url, { sectionId, qty: 1 })
    t.same([again.status, again.body.data], [200, joined.body.data], 'joining again answers the same entry')
    t.equal((await customerA.request('POST', url, { sectionId, qty: 1, userId: 'bob' })).status, 403, 'a customer waits only as itself')
    const forBob = await service.request('POST', url, { sectionId, qty: 1, userId: 'bob' })
    t.match([forBob.status, forBob.body.data], [201, { userId: 'bob', position: 2 }], 'a service joins on behalf of a user')
    const noUser = await service.request('POST', url, { sectionId, qty: 1 })
    t.match([noUser.status, noUser.body.error], [400, { field: 'userId' }])
    const bad = await customerA.request('POST', url, { sectionId, qty: 11 })
    t.match([bad.status, bad.body.error], [400, { code: 'VALIDATION_ERROR' }])
    t.match(bad.body.error?.message, /qty/)
    t.equal((await customerA.request('POST', `/api/events/${eventId}/waitlist`, { sectionId: 'f'.repeat(24), qty: 1 })).status, 404)
    t.equal((await injectClient(app, {}).request('POST', url, { sectionId, qty: 1 })).status, 401)
    t.match((await app.inject(`/api/events/${eventId}`)).json().data.sections[0], { remaining: 0, waiting: 2 })

    t.test('who sees which entries', async t => {
      const all = await organizer.request('GET', url)
      t.same(all.body.data.items.map((e: { userId: string }) => e.userId), ['alice', 'bob'], 'its organizer: every entry, in order')
      t.equal(all.body.data.nextCursor, null)
      t.same((await customerB.request('GET', url)).body.data.items.map((e: { userId: string }) => e.userId), ['bob'], 'a customer: its own')
      t.same((await stranger.request('GET', url)).body.data.items, [], 'another organizer: its own (none)')
      const paged = await service.request('GET', `${url}?limit=1`)
      t.equal(paged.body.data.items.length, 1)
      const rest = await service.request('GET', `${url}?limit=1&cursor=${paged.body.data.nextCursor}`)
      t.same(rest.body.data.items.map((e: { userId: string }) => e.userId), ['bob'], 'the cursor reads on')
      t.equal((await service.request('GET', `${url}?cursor=nope`)).status, 400)
      t.equal((await service.request('DELETE', `/api/waitlist/${'0'.repeat(24)}`)).status, 404)
      t.equal((await customerB.request('DELETE', `/api/waitlist/${joined.body.data._id as string}`)).status, 404, 'another user\'s entry does not exist for it')
    })

    t.test('seats back go to the list first; the offer is a hold its user confirms', async t => {
      const returned = await service.request('POST', `/api/bookings/${sold.body.data._id as string}/cancel`)
      t.equal(returned.status, 200)
      const publicTry = await customerB.request('POST', '/api/bookings', { eventId, sectionId, qty: 1 })
      t.match([publicTry.status, publicTry.body.error], [409, { code: 'SOLD_OUT' }], 'the seats went to the list: sold out to the public')
      const entries = (await organizer.request('GET', url)).body.data.items
      t.match(entries, [{ userId: 'alice', status: 'offered' }, { userId: 'bob', status: 'waiting' }], 'the first in line that fits is offered')
      const offer = await customerA.request('GET', `/api/bookings/${entries[0].bookingId as string}`)
      t.match(offer.body.data, { status: 'held', qty: 2, userId: 'alice', waitlistId: entries[0]._id })
      t.equal(Date.parse(offer.body.data.expiresAt) - Date.parse(offer.body.data.createdAt), 120_000, 'the event\'s waitlistOfferSeconds')
      const paid = await customerA.request('POST', `/api/bookings/${entries[0].bookingId as string}/confirm`, { paymentRef: 'psp-1' })
      t.equal(paid.status, 200)
      t.match((await customerA.request('GET', url)).body.data.items, [{ status: 'confirmed' }])
      const left = await customerB.request('DELETE', `/api/waitlist/${forBob.body.data._id as string}`)
      t.match([left.status, left.body.data], [200, { status: 'left' }])
      t.match((await app.inject(`/api/events/${eventId}`)).json().data.sections[0], { remaining: 0, held: 0, sold: 2, waiting: 0 })
      t.same((await checkViaApi(service, eventId)).problems, [])
      const patched = await organizer.request('PATCH', `/api/events/${eventId}`, { waitlistOfferSeconds: 30 })
      t.match([patched.status, patched.body.data], [200, { waitlistOfferSeconds: 30 }], 'an event\'s offer length changes')
      const cleared = await organizer.request('PATCH', `/api/events/${eventId}`, { waitlistOfferSeconds: null })
      t.equal(cleared.body.data.waitlistOfferSeconds, undefined, 'null clears it: WAITLIST_OFFER_SECONDS applies')
      const metrics = parseExposition((await app.inject('/metrics')).body)
      t.equal(total(metrics, 'waitlist_entries_total'), 2)
      t.equal(total(metrics, 'waitlist_offers_total', { outcome: 'made' }), 1)
      t.equal(total(metrics, 'waitlist_offers_total', { outcome: 'confirmed' }), 1)
    })
  })
}
