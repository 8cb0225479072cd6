/**
 * A sale not yet open, answered from memory on one instance: only while the
 * opening is more than OPENING_MARGIN_MS away by the section's last batch
 * (then the database decides every booking), ended at once by a change of
 * the event, and never learnt from a batch begun before such a change; a
 * sell-out remembered within SOLD_OUT_CACHE_MS, its own bound.
 * A real embedded store; the batches the store runs are counted.
 */
import t from 'tap'
import { SaleNotOpenError, SoldOutError } from '../../lib/domain/errors.ts'
import type { Principal } from '../../lib/domain/principal.ts'
import { createEventService } from '../../lib/service/event-service.ts'
import { OPENING_MARGIN_MS } from '../../lib/service/booking-service.ts'
import type { Store } from '../../lib/store/store.ts'
import { SERVICE, bookingService, counting, embeddedStore } from '../helpers/booking-service.ts'

const ORGANIZER: Principal = { sub: 'organizer-1', roles: ['organizer'] }
let store: Store
t.before(async () => { ({ store } = await embeddedStore(t)) })

async function openingIn (ms: number) {
  const event = await store.createEvent({ name: 'Opening', salesStart: new Date(Date.now() + ms).toISOString(), sections: [{ name: 'GA', price: 10, capacity: 100 }] }, ORGANIZER.sub)
  return { eventId: event._id, sectionId: event.sections[0]._id, salesStart: event.salesStart as string }
}

const refusal = async (promise: Promise<unknown>): Promise<unknown> => await promise.then(() => 'booked', (err: unknown) => err)

t.test('well before the opening the refusal comes from memory; a change of the event ends it before it is answered', async t => {
  const ids = await openingIn(3_600_000)
  const { store: counted, calls } = counting(store)
  const { svc } = bookingService({ store: counted })
  const events = createEventService({ store: counted, bookings: svc, answerWithinMs: 5000 })
  for (let i = 0; i < 3; i++) {
    const refused = await refusal(svc.book(SERVICE, { ...ids, qty: 1, userId: `early-${i}` }))
    t.type(refused, SaleNotOpenError)
    t.match(refused, { details: { opensAt: ids.salesStart } })
  }
  const batches = calls.bookBatch
  for (let i = 0; i < 20; i++) t.type(await refusal(svc.book(SERVICE, { ...ids, qty: 1, userId: `storm-${i}` })), SaleNotOpenError)
  t.equal(calls.bookBatch, batches, 'the storm cost no batch')
  await events.update(ORGANIZER, ids.eventId, { salesStart: null })
  t.match(await svc.book(SERVICE, { ...ids, qty: 1, userId: 'first' }), { booking: { status: 'confirmed' } }, 'on sale once the change is answered')
})

t.test('within the margin of the opening every booking goes to its batch: the database decides', async t => {
  const ids = await openingIn(OPENING_MARGIN_MS / 2)
  const { store: counted, calls } = counting(store)
  const { svc } = bookingService({ store: counted })
  const first = calls.bookBatch
  t.type(await refusal(svc.book(SERVICE, { ...ids, qty: 1, userId: 'a' })), SaleNotOpenError)
  t.type(await refusal(svc.book(SERVICE, { ...ids, qty: 1, userId: 'b' })), SaleNotOpenError)
  t.equal(calls.bookBatch - first, 2, 'each refusal was the database\'s')
})

t.test('a batch begun before a change learns nothing from what it saw', async t => {
  const ids = await openingIn(3_600_000)
  // the store answers the first batch only once the test lets it: after it read the section, before it is learnt
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  let first = true
  let answered!: () => void
  const read = new Promise<void>(resolve => { answered = resolve })
  const slow: Store = {
    ...store,
    sectionsBatch: async (...args) => {
      const result = await store.sectionsBatch(...args)
      if (first) {
        first = false
        answered()
        await held
      }
      return result
    }
  }
  const { svc } = bookingService({ store: slow })
  const events = createEventService({ store: slow, bookings: svc, answerWithinMs: 5000 })
  // a second refusal first, so the section's next batch would be remembered
  const early = refusal(svc.book(SERVICE, { ...ids, qty: 1, userId: 'early' }))
  await read
  await events.update(ORGANIZER, ids.eventId, { salesStart: null })
  release()
  t.type(await early, SaleNotOpenError, 'decided before the change')
  t.match(await svc.book(SERVICE, { ...ids, qty: 1, userId: 'after' }), { booking: { status: 'confirmed' } }, 'not refused from a memory of before the change')
})

t.test('each refusal keeps its own bound: SOLD_OUT_CACHE_MS=0 remembers no sell-out, whatever a sale not open may be remembered for', async t => {
  const event = await store.createEvent({ name: 'Sold out', sections: [{ name: 'GA', price: 10, capacity: 1 }] }, ORGANIZER.sub)
  const ids = { eventId: event._id, sectionId: event.sections[0]._id }
  const { store: counted, calls } = counting(store)
  const { svc } = bookingService({ store: counted, soldOutCacheMs: 0 })
  t.match(await svc.book(SERVICE, { ...ids, qty: 1, userId: 'first' }), { booking: { status: 'confirmed' } })
  const before = calls.bookBatch
  for (let i = 0; i < 3; i++) t.type(await refusal(svc.book(SERVICE, { ...ids, qty: 1, userId: `late-${i}` })), SoldOutError)
  t.equal(calls.bookBatch - before, 3, 'every refusal was the database\'s')
})
