/**
 * The store contract: what every adapter guarantees, tested through the Store
 * port alone. Run per adapter by contract.test.ts. Concurrency here is raw:
 * no lock is taken, so the database's own guard is what is being tested.
 */
import type { Test } from 'tap'
import { publicBooking, type BookingRequest, type Decision } from '../../lib/domain/allocation.ts'
import type { Booking } from '../../lib/api/schemas.ts'
import type { Store } from '../../lib/store/store.ts'
import { invariantProblems } from '../helpers/invariant.ts'
import { granted, sectionBatch } from '../helpers/section-batch.ts'
import type { OpenedStore, StoreAdapter } from './adapters.ts'
import { holdsContract } from './contract-holds.ts'
import { lifecycleContract } from './contract-lifecycle.ts'
import { changesContract } from './contract-changes.ts'
import { waitlistContract } from './contract-waitlist.ts'
import { cursorsContract } from './contract-cursors.ts'

function request (ids: { eventId: string, sectionId: string }, qty: number, userId: string, idempotencyKey?: string): BookingRequest {
  return { ...ids, qty, userId, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) }
}

const kinds = (decisions: Decision[] | null) => decisions?.map(d => d.kind)

/** The sub of the organizer owning the suite's events. */
const ORGANIZER = 'organizer-1'

/** The invariant of every section of the event, over all its bookings, read through the Store port. */
async function assertInvariant (t: Test, store: Store, eventId: string): Promise<void> {
  const event = await store.getEvent(eventId)
  t.ok(event, 'event exists')
  const bookings = []
  for (let page = 1; ; page++) {
    const { items } = await store.listBookings({ eventId, page, limit: 100 })
    bookings.push(...items)
    if (items.length < 100) break
  }
  t.same(invariantProblems(event?.sections ?? [], bookings), [], 'capacity == remaining + held + sold, remaining >= 0')
}

export function storeContract (t: Test, adapter: StoreAdapter): void {
  let location: string
  let opened: OpenedStore
  let store: Store

  t.before(async () => {
    location = await adapter.location(t)
    opened = await adapter.open(location)
    store = opened.store
  })
  t.teardown(async () => { await opened?.close() })

  /** A batch of bookings only: the decisions, or null when the section is unknown. */
  async function bookBatch (eventId: string, sectionId: string, requests: BookingRequest[]): Promise<{ decisions: Decision[] | null, remaining: number }> {
    const { results, remaining } = await sectionBatch(store, eventId, sectionId, requests.map(request => ({ kind: 'book' as const, request })))
    if (remaining === null) return { decisions: null, remaining: 0 }
    return { decisions: results as Decision[], remaining }
  }

  /** A booking as answered: what the store holds without its storage-only fields. */
  async function answered (id: string): Promise<Booking | null> {
    const stored = await store.getBooking(id)
    return stored === null ? null : publicBooking(stored)
  }

  /** A batch of one cancellation, as the booking service sends it: null when the booking is unknown. */
  async function cancelBooking (id: string): Promise<{ booking: Booking, changed: boolean } | null> {
    const booking = await store.getBooking(id)
    if (booking === null) return null
    const { results: [result] } = await sectionBatch(store, booking.eventId, booking.sectionId, [{ kind: 'cancel', access: granted, bookingId: id }])
    return result.kind === 'cancelled' ? result : null
  }

  async function newEvent (capacities: number[], price = 25) {
    const event = await store.createEvent({ name: 'Contract', sections: capacities.map((capacity, i) => ({ name: `S${i}`, price, capacity })) }, ORGANIZER)
    return event
  }

  t.test('init is safe to run again', async t => {
    await store.init()
    await store.ping()
    t.pass('second init and ping succeeded')
  })

  t.test('events: create, get, list with paging', async t => {
    const a = await store.createEvent({ name: 'A', sections: [{ name: 'Floor', price: 99.99, capacity: 3 }, { name: 'Balcony', price: 10, capacity: 2 }] }, ORGANIZER)
    t.match(a._id, /^[0-9a-f]{24}$/)
    t.same(a.sections.map(s => [s.name, s.price, s.capacity, s.remaining]), [['Floor', 99.99, 3, 3], ['Balcony', 10, 2, 2]])
    t.not(a.sections[0]._id, a.sections[1]._id)
    const got = await store.getEvent(a._id)
    t.same(got, a, 'read back as created')
    t.equal(await store.getEvent('0123456789abcdef01234567'), null, 'unknown id -> null')
    const b = await store.createEvent({ name: 'B', sections: [{ name: 'GA', price: 5, capacity: 1 }] }, ORGANIZER)
    const page1 = await store.listEvents({ page: 1, limit: 1, drafts: 'none' })
    t.ok(page1.total >= 2)
    t.equal(page1.items.length, 1)
    t.equal(page1.items[0]._id, b._id, 'newest first')
    const page2 = await store.listEvents({ page: 2, limit: 1, drafts: 'none' })
    t.equal(page2.items[0]._id, a._id)
    t.equal(page2.items[0].sections.length, 2, 'listed events carry their sections')
  })

  t.test('bookBatch decides first come first served and moves remaining down', async t => {
    const event = await newEvent([5])
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const result = await bookBatch(ids.eventId, ids.sectionId, [
      request(ids, 2, 'u1'), request(ids, 4, 'u2'), request(ids, 3, 'u3'), request(ids, 1, 'u4')
    ])
    t.same(kinds(result.decisions), ['confirmed', 'sold_out', 'confirmed', 'sold_out'])
    t.equal(result.remaining, 0)
    t.same(result.decisions![1], { kind: 'sold_out', remaining: 3 }, 'a request larger than what is left is told what is left')
    const confirmed = result.decisions![0]
    if (confirmed.kind !== 'confirmed') throw new Error('expected confirmed')
    t.match(confirmed.booking, { userId: 'u1', qty: 2, unitPrice: 25, amount: 50, status: 'confirmed', ...ids })
    t.same(await answered(confirmed.booking._id), confirmed.booking, 'stored as answered')
    t.equal((await store.getEvent(event._id))!.sections[0].remaining, 0)
    await assertInvariant(t, store, event._id)
  })

  t.test('bookBatch on an unknown event or section decides nothing', async t => {
    const event = await newEvent([5])
    const other = await newEvent([5])
    const unknown = '0123456789abcdef01234567'
    t.equal((await bookBatch(unknown, event.sections[0]._id, [request({ eventId: unknown, sectionId: event.sections[0]._id }, 1, 'u')])).decisions, null)
    t.equal((await bookBatch(event._id, unknown, [request({ eventId: event._id, sectionId: unknown }, 1, 'u')])).decisions, null)
    t.equal((await bookBatch(event._id, other.sections[0]._id, [request({ eventId: event._id, sectionId: other.sections[0]._id }, 1, 'u')])).decisions,
      null, 'a section of another event is not found')
    t.equal((await store.getEvent(other._id))!.sections[0].remaining, 5)
  })

  t.test('idempotency keys: replay, reuse with another body, duplicates within a batch', async t => {
    const event = await newEvent([10])
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const key = `k-${Date.now()}-${Math.random()}`
    const first = await bookBatch(ids.eventId, ids.sectionId, [request(ids, 2, 'u1', key), request(ids, 2, 'u1', key), request(ids, 3, 'u1', key)])
    t.same(kinds(first.decisions), ['confirmed', 'replayed', 'key_reused'])
    const original = first.decisions![0] as Extract<Decision, { kind: 'confirmed' }>
    t.same((first.decisions![1] as Extract<Decision, { kind: 'replayed' }>).booking, original.booking)
    const again = await bookBatch(ids.eventId, ids.sectionId, [request(ids, 2, 'u1', key)])
    t.same(again.decisions, [{ kind: 'replayed', booking: original.booking }], 'a later retry gets the original booking')
    t.equal(again.remaining, 8, 'and nothing more is sold')
    const stored = await store.findByIdempotencyKey(key)
    t.equal(stored?._id, original.booking._id)
    t.equal(await store.findByIdempotencyKey('never-used'), null)
    await assertInvariant(t, store, event._id)
  })

  t.test('racing transactions with one idempotency key book once', async t => {
    const event = await newEvent([10, 10])
    const key = `race-${Date.now()}-${Math.random()}`
    const [s0, s1] = event.sections
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => {
      const sectionId = (i % 2 === 0 ? s0 : s1)._id
      return bookBatch(event._id, sectionId, [request({ eventId: event._id, sectionId }, 1, 'racer', key)])
    }))
    const all = results.flatMap(r => r.decisions ?? [])
    t.equal(all.filter(d => d.kind === 'confirmed').length, 1, 'exactly one booking is made')
    t.equal(all.filter(d => d.kind === 'confirmed' || d.kind === 'replayed' || d.kind === 'key_reused').length, 8, 'the others replay it or are refused')
    const { total } = await store.listBookings({ eventId: event._id, page: 1, limit: 10 })
    t.equal(total, 1)
    await assertInvariant(t, store, event._id)
  })

  t.test('racing transactions without any lock never oversell', async t => {
    const event = await newEvent([10])
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      bookBatch(ids.eventId, ids.sectionId, [request(ids, 1, `u${i}`), request(ids, 1, `v${i}`)])))
    const confirmed = results.flatMap(r => r.decisions ?? []).filter(d => d.kind === 'confirmed').length
    t.equal(confirmed, 10, 'exactly capacity seats are sold')
    t.equal((await store.getEvent(event._id))!.sections[0].remaining, 0)
    await assertInvariant(t, store, event._id)
  })

  t.test('listBookings filters, pages and counts', async t => {
    const event = await newEvent([20, 20])
    const [s0, s1] = event.sections
    const user = `lister-${Date.now()}`
    await bookBatch(event._id, s0._id, [1, 2, 3].map(q => request({ eventId: event._id, sectionId: s0._id }, q, user)))
    await bookBatch(event._id, s1._id, [request({ eventId: event._id, sectionId: s1._id }, 1, 'someone-else')])
    const byEvent = await store.listBookings({ eventId: event._id, page: 1, limit: 2 })
    t.equal(byEvent.total, 4)
    t.equal(byEvent.items.length, 2)
    t.same([byEvent.page, byEvent.limit], [1, 2])
    const page2 = await store.listBookings({ eventId: event._id, page: 2, limit: 2 })
    t.equal(page2.items.length, 2)
    t.equal(new Set([...byEvent.items, ...page2.items].map(b => b._id)).size, 4, 'pages do not overlap')
    t.equal((await store.listBookings({ userId: user, page: 1, limit: 10 })).total, 3)
    t.equal((await store.listBookings({ eventId: event._id, sectionId: s1._id, page: 1, limit: 10 })).total, 1)
    t.equal((await store.listBookings({ sectionId: s0._id, page: 1, limit: 10 })).total, 3, 'by section alone')
    t.equal((await store.listBookings({ eventId: event._id, userId: 'nobody', page: 1, limit: 10 })).total, 0)
    const beyond = await store.listBookings({ eventId: event._id, page: 9, limit: 10 })
    t.same([beyond.items.length, beyond.total], [0, 4], 'a page past the end is empty but keeps the total')
  })

  t.test('bookings carry their event\'s owner, and a list can be narrowed to one owner\'s events', async t => {
    const mine = await newEvent([5])
    const theirs = await store.createEvent({ name: 'Other', sections: [{ name: 'A', price: 1, capacity: 5 }] }, 'organizer-2')
    const user = `owned-${Date.now()}`
    for (const event of [mine, theirs]) {
      const ids = { eventId: event._id, sectionId: event.sections[0]._id }
      await bookBatch(ids.eventId, ids.sectionId, [request(ids, 1, user)])
    }
    const all = await store.listBookings({ userId: user, page: 1, limit: 10 })
    t.same(all.items.map(b => b.eventOwner).sort(), [ORGANIZER, 'organizer-2'], 'the owner is stamped when booked')
    const narrowed = await store.listBookings({ userId: user, eventOwner: 'organizer-2', page: 1, limit: 10 })
    t.same([narrowed.total, narrowed.items.map(b => b.eventId)], [1, [theirs._id]])
    t.equal((await store.getBooking(all.items[0]._id))?.eventOwner, all.items[0].eventOwner, 'and read back with the booking')
  })

  t.test('bookings read by id at the same moment each get their own', async t => {
    const event = await newEvent([10])
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const { decisions } = await bookBatch(ids.eventId, ids.sectionId, [1, 2, 3].map(n => request(ids, n, `reader-${n}`)))
    const made = (decisions ?? []).map(d => (d as Extract<Decision, { kind: 'confirmed' }>).booking)
    t.equal(made.length, 3)
    const asked = [...made.map(b => b._id), made[0]._id, '0123456789abcdef01234567', 'not-an-id']
    const read = await Promise.all(asked.map(async id => await store.getBooking(id)))
    t.same(read.map(b => b === null ? null : [b._id, b.userId, b.qty]),
      [...made.map(b => [b._id, b.userId, b.qty]), [made[0]._id, 'reader-1', 1], null, null],
      'each read answers its own id; unknown and malformed ids are not found')
  })

  t.test('events read by id at the same moment each get their own, sections in order', async t => {
    const made = [await newEvent([4, 5]), await newEvent([6])]
    const asked = [made[0]._id, made[1]._id, made[0]._id, '0123456789abcdef01234567', 'not-an-id']
    const read = await Promise.all(asked.map(async id => await store.getEvent(id)))
    t.same(read.map(e => e === null ? null : [e._id, e.sections.map(s => s.capacity)]),
      [[made[0]._id, [4, 5]], [made[1]._id, [6]], [made[0]._id, [4, 5]], null, null],
      'each read answers its own id; unknown and malformed ids are not found')
  })

  t.test('cancelBooking gives seats back once', async t => {
    const event = await newEvent([3])
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const { decisions } = await bookBatch(ids.eventId, ids.sectionId, [request(ids, 3, 'u')])
    const booking = (decisions![0] as Extract<Decision, { kind: 'confirmed' }>).booking
    const first = await cancelBooking(booking._id)
    t.equal(first?.changed, true)
    t.equal(first?.booking.status, 'cancelled')
    t.ok(first?.booking.cancelledAt, 'cancelledAt set')
    t.equal((await store.getEvent(event._id))!.sections[0].remaining, 3)
    const second = await cancelBooking(booking._id)
    t.equal(second?.changed, false, 'cancelling again changes nothing')
    t.equal((await store.getEvent(event._id))!.sections[0].remaining, 3)
    t.equal(await cancelBooking('0123456789abcdef01234567'), null)
    t.equal((await store.listBookings({ eventId: event._id, status: 'cancelled', page: 1, limit: 10 })).total, 1)
    t.equal((await store.listBookings({ eventId: event._id, page: 1, limit: 10 })).total, 1, 'a cancelled booking is still listed')
    t.equal((await store.listBookings({ eventId: event._id, status: 'confirmed', page: 1, limit: 10 })).total, 0)
    await assertInvariant(t, store, event._id)
  })

  t.test('one batch gives seats back and books them', async t => {
    const event = await newEvent([2])
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const { decisions } = await bookBatch(ids.eventId, ids.sectionId, [request(ids, 2, 'early')])
    const early = (decisions![0] as Extract<Decision, { kind: 'confirmed' }>).booking
    const { results, remaining } = await sectionBatch(store, ids.eventId, ids.sectionId, [
      { kind: 'book', request: request(ids, 2, 'late') },
      { kind: 'cancel', access: granted, bookingId: early._id },
      { kind: 'cancel', access: granted, bookingId: early._id }
    ])
    t.same(results.map(r => r.kind), ['confirmed', 'cancelled', 'cancelled'], 'the seats given back serve a booking of the same batch')
    t.same(results.slice(1).map(r => r.kind === 'cancelled' && r.changed), [true, false], 'a booking is cancelled once')
    t.equal(remaining, 0)
    t.equal((await store.getBooking(early._id))?.status, 'cancelled')
    await assertInvariant(t, store, event._id)
  })

  t.test('one batch over sections of two events: each section decided as if alone', async t => {
    const first = await newEvent([2, 1])
    const second = await newEvent([1])
    const [a, b] = first.sections.map(s => ({ eventId: first._id, sectionId: s._id }))
    const c = { eventId: second._id, sectionId: second.sections[0]._id }
    const results = await store.sectionsBatch([
      { ...a, ops: [{ kind: 'book', request: request(a, 2, 'x') }] },
      { ...b, ops: [{ kind: 'book', request: request(b, 2, 'y') }, { kind: 'book', request: request(b, 1, 'z') }] },
      { ...c, ops: [{ kind: 'book', request: request(c, 1, 'w') }] }
    ])
    t.same(results.map(r => r.results.map(o => o.kind)), [['confirmed'], ['sold_out', 'confirmed'], ['confirmed']],
      'a request that does not fit is sold out only in its own section; a smaller one after it still fits')
    t.same(results.map(r => r.remaining), [0, 0, 0])
    t.same((await store.getEvent(first._id))!.sections.map(s => s.remaining), [0, 0])
    t.equal((await store.getEvent(second._id))!.sections[0].remaining, 0)
    await assertInvariant(t, store, first._id)
    await assertInvariant(t, store, second._id)
  })

  t.test('one batch: a section that is not there, or not of its event, is not found; the others are booked', async t => {
    const event = await newEvent([3])
    const other = await newEvent([3])
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const wrongEvent = { eventId: event._id, sectionId: other.sections[0]._id }
    const missing = { eventId: event._id, sectionId: '0123456789abcdef01234567' }
    const results = await store.sectionsBatch([
      { ...wrongEvent, ops: [{ kind: 'book', request: request(wrongEvent, 1, 'u') }] },
      { ...ids, ops: [{ kind: 'book', request: request(ids, 1, 'u') }] },
      { ...missing, ops: [{ kind: 'book', request: request(missing, 1, 'u') }] }
    ])
    t.same(results.map(r => [r.results[0].kind, r.remaining]), [['not_found', null], ['confirmed', 2], ['not_found', null]])
    t.equal((await store.getEvent(other._id))!.sections[0].remaining, 3, 'the other event is untouched')
  })

  t.test('a section just booked through its own event is still not found through another event\'s id', async t => {
    const event = await newEvent([3])
    const other = await newEvent([3])
    const own = { eventId: other._id, sectionId: other.sections[0]._id }
    const wrongEvent = { eventId: event._id, sectionId: other.sections[0]._id }
    // booked through its own event first: a store that remembers sections it wrote now knows this one
    t.equal((await sectionBatch(store, own.eventId, own.sectionId, [{ kind: 'book', request: request(own, 1, 'u') }])).results[0].kind, 'confirmed')
    const { results, remaining } = await sectionBatch(store, wrongEvent.eventId, wrongEvent.sectionId, [{ kind: 'book', request: request(wrongEvent, 1, 'u') }])
    t.same([results[0].kind, remaining], ['not_found', null])
    t.equal((await store.getEvent(other._id))!.sections[0].remaining, 2, 'only its own event\'s booking took a seat')
    t.same((await store.listBookings({ eventId: event._id, page: 1, limit: 10 })).items, [], 'nothing booked under the other event')
    await assertInvariant(t, store, other._id)
    await assertInvariant(t, store, event._id)
  })

  t.test('one batch: an idempotency key sent to two sections books once, the other is refused as reused', async t => {
    const event = await newEvent([3, 3])
    const [a, b] = event.sections.map(s => ({ eventId: event._id, sectionId: s._id }))
    const key = `two-sections-${Date.now()}`
    const results = await store.sectionsBatch([
      { ...a, ops: [{ kind: 'book', request: request(a, 1, 'k', key) }] },
      { ...b, ops: [{ kind: 'book', request: request(b, 1, 'k', key) }] }
    ])
    t.same(results.map(r => r.results[0].kind).sort(), ['confirmed', 'key_reused'])
    t.same((await store.getEvent(event._id))!.sections.map(s => s.remaining).sort(), [2, 3], 'one seat taken in all')
    await assertInvariant(t, store, event._id)
  })

  t.test('one batch: a confirm, a cancel and bookings in different sections all apply together', async t => {
    const event = await newEvent([2, 2])
    const [a, b] = event.sections.map(s => ({ eventId: event._id, sectionId: s._id }))
    const { decisions } = await bookBatch(a.eventId, a.sectionId, [request(a, 2, 'gone')])
    const gone = (decisions![0] as Extract<Decision, { kind: 'confirmed' }>).booking
    const results = await store.sectionsBatch([
      { ...a, ops: [{ kind: 'cancel', access: granted, bookingId: gone._id }, { kind: 'book', request: request(a, 1, 'next') }] },
      { ...b, ops: [{ kind: 'book', request: request(b, 2, 'all') }, { kind: 'cancel', access: granted, bookingId: gone._id }] }
    ])
    t.same(results.map(r => r.results.map(o => o.kind)), [['cancelled', 'confirmed'], ['confirmed', 'not_found']],
      'a booking is found in its own section only')
    t.same(results.map(r => r.remaining), [1, 0])
    await assertInvariant(t, store, event._id)
  })

  t.test('a cancellation only finds bookings of its own section', async t => {
    const event = await newEvent([2, 2])
    const [s0, s1] = event.sections
    const { decisions } = await bookBatch(event._id, s0._id, [request({ eventId: event._id, sectionId: s0._id }, 1, 'u')])
    const booking = (decisions![0] as Extract<Decision, { kind: 'confirmed' }>).booking
    const { results } = await sectionBatch(store, event._id, s1._id, [{ kind: 'cancel', access: granted, bookingId: booking._id }])
    t.same(results, [{ kind: 'not_found' }])
    t.equal((await store.getBooking(booking._id))?.status, 'confirmed', 'nothing changed')
    t.same((await store.getEvent(event._id))!.sections.map(s => s.remaining), [1, 2])
  })

  t.test('data survives closing and reopening the store', async t => {
    const event = await newEvent([4])
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const { decisions } = await bookBatch(ids.eventId, ids.sectionId, [request(ids, 3, 'durable', `durable-${Date.now()}`)])
    const booking = (decisions![0] as Extract<Decision, { kind: 'confirmed' }>).booking
    await opened.close()
    opened = await adapter.open(location)
    store = opened.store
    t.same(await answered(booking._id), booking)
    t.equal((await store.getEvent(event._id))!.sections[0].remaining, 1)
    await assertInvariant(t, store, event._id)
  })

  holdsContract(t, () => store)
  lifecycleContract(t, () => store)
  changesContract(t, () => store)
  waitlistContract(t, () => store)
  cursorsContract(t, () => store)
}
