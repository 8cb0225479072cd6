/**
 * The store contract for holds: every transition (held -> confirmed |
 * expired | cancelled, confirmed -> cancelled), every refusal, the sweep of
 * due holds with no other traffic, and the per-user cap across sections.
 * Expiry is real: holds are made short and the test waits them out, since
 * the database's clock decides.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import type { BookingRequest, Decision } from '../../lib/domain/allocation.ts'
import type { Booking } from '../../lib/api/schemas.ts'
import type { OpResult, SectionOp } from '../../lib/domain/section-ops.ts'
import type { Store } from '../../lib/store/store.ts'
import { invariantProblems } from '../helpers/invariant.ts'
import { granted, sectionBatch } from '../helpers/section-batch.ts'

const ORGANIZER = 'organizer-1'
/** Long enough that a hold never expires during a test that does not wait for it. */
const LONG_MS = 600_000
const SHORT_MS = 300

type Ids = { eventId: string, sectionId: string }

const hold = (ids: Ids, qty: number, userId: string, holdDefaultMs = LONG_MS, idempotencyKey?: string): BookingRequest =>
  ({ ...ids, qty, userId, holdDefaultMs, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) })
const buy = (ids: Ids, qty: number, userId: string): BookingRequest => ({ ...ids, qty, userId })

function bookingOf (result: OpResult | Decision): Booking {
  if ('booking' in result) return result.booking
  throw new Error(`expected a booking, got ${JSON.stringify(result)}`)
}

export function holdsContract (t: Test, store: () => Store): void {
  async function newEvent (capacities: number[], rules: { holdSeconds?: number, maxPerUser?: number } = {}) {
    const event = await store().createEvent({ name: 'Holds', sections: capacities.map((capacity, i) => ({ name: `S${i}`, price: 10, capacity })), ...rules }, ORGANIZER)
    return { event, ids: event.sections.map(s => ({ eventId: event._id, sectionId: s._id })) }
  }

  const batch = async (ids: Ids, ...ops: SectionOp[]) => await sectionBatch(store(), ids.eventId, ids.sectionId, ops)
  const book = async (request: BookingRequest) => (await batch(request, { kind: 'book', request })).results[0]
  const confirm = async (ids: Ids, bookingId: string, paymentRef?: string) =>
    (await batch(ids, paymentRef === undefined ? { kind: 'confirm', access: granted, bookingId } : { kind: 'confirm', access: granted, bookingId, paymentRef })).results[0]
  const cancel = async (ids: Ids, bookingId: string) => (await batch(ids, { kind: 'cancel', access: granted, bookingId })).results[0]

  async function section (ids: Ids) {
    const event = await store().getEvent(ids.eventId)
    const found = event?.sections.find(s => s._id === ids.sectionId)
    if (found === undefined) throw new Error('section not found')
    return found
  }

  async function assertInvariant (t: Test, eventId: string): Promise<void> {
    const event = await store().getEvent(eventId)
    const { items } = await store().listBookings({ eventId, page: 1, limit: 100 })
    t.same(invariantProblems(event?.sections ?? [], items), [], 'capacity == remaining + held + sold, each as its bookings say')
  }

  t.test('holds: a hold takes its seats at once, held until expiresAt', async t => {
    const { event, ids: [ids] } = await newEvent([5])
    const result = await book(hold(ids, 2, 'h1'))
    t.equal(result.kind, 'held')
    const held = bookingOf(result)
    t.equal(held.status, 'held')
    const ms = Date.parse(held.expiresAt ?? '') - Date.parse(held.createdAt)
    t.equal(ms, LONG_MS, 'expiresAt is createdAt plus the hold length')
    t.match(await section(ids), { remaining: 3, held: 2, sold: 0 })
    t.same((await store().getBooking(held._id))?.expiresAt, held.expiresAt, 'stored as answered')
    t.equal((await store().listBookings({ eventId: event._id, status: 'held', page: 1, limit: 10 })).total, 1)
    const bought = await book(buy(ids, 1, 'b1'))
    t.equal(bought.kind, 'confirmed', 'a plain booking is confirmed at once')
    t.match(await section(ids), { remaining: 2, held: 2, sold: 1 })
    await assertInvariant(t, event._id)
  })

  t.test('holds: a confirm or cancel carrying the booking as seen earlier is decided on the booking as it is', async t => {
    const { event, ids: [ids] } = await newEvent([5])
    const held = bookingOf(await book(hold(ids, 2, 's1')))
    const seen = await store().getBooking(held._id)
    if (seen === null) throw new Error('hold not stored')
    const confirmed = await batch(ids, { kind: 'confirm', access: granted, bookingId: held._id, paymentRef: 'p1', seen })
    t.match(confirmed.results[0], { kind: 'hold_confirmed', changed: true, booking: { status: 'confirmed', paymentRef: 'p1' } }, 'seen as it is: confirmed')
    // the same snapshot, now stale: still held in it, confirmed in the store
    const late = await batch(ids, { kind: 'confirm', access: granted, bookingId: held._id, paymentRef: 'p2', seen })
    t.match(late.results[0], { kind: 'invalid_state', booking: { status: 'confirmed', paymentRef: 'p1' } }, 'a stale snapshot never confirms twice')
    const cancelled = await batch(ids, { kind: 'cancel', access: granted, bookingId: held._id, seen })
    t.match(cancelled.results[0], { kind: 'cancelled', changed: true, from: 'confirmed' }, 'cancelled from what is stored, not from the snapshot')
    const again = await batch(ids, { kind: 'cancel', access: granted, bookingId: held._id, seen })
    t.match(again.results[0], { kind: 'cancelled', changed: false }, 'its seats come back once')
    t.match(await section(ids), { remaining: 5, held: 0, sold: 0 })
    await assertInvariant(t, event._id)
  })

  t.test('holds: the event\'s holdSeconds wins over the default length', async t => {
    const { ids: [ids] } = await newEvent([5], { holdSeconds: 120 })
    const held = bookingOf(await book(hold(ids, 1, 'h', 1000)))
    t.equal(Date.parse(held.expiresAt ?? '') - Date.parse(held.createdAt), 120_000)
    t.equal((await store().getEvent(ids.eventId))?.holdSeconds, 120, 'the event reports it')
  })

  t.test('holds: confirm, the same paymentRef again, another one, and what cannot be confirmed', async t => {
    const { event, ids: [ids] } = await newEvent([5])
    const held = bookingOf(await book(hold(ids, 2, 'c1')))
    const first = await confirm(ids, held._id, 'pay-1')
    t.match(first, { kind: 'hold_confirmed', changed: true, booking: { _id: held._id, status: 'confirmed', paymentRef: 'pay-1' } })
    t.ok(bookingOf(first).confirmedAt, 'confirmedAt set')
    t.match(await section(ids), { remaining: 3, held: 0, sold: 2 })
    t.same(await store().getBooking(held._id).then(b => b?.status), 'confirmed')
    const again = await confirm(ids, held._id, 'pay-1')
    t.same(again, { kind: 'hold_confirmed', changed: false, booking: bookingOf(first) }, 'a webhook retry gets the same answer')
    t.equal((await confirm(ids, held._id, 'pay-2')).kind, 'invalid_state', 'another paymentRef is refused')
    t.equal((await confirm(ids, held._id)).kind, 'invalid_state', 'no paymentRef is another one too')
    const plain = bookingOf(await book(buy(ids, 1, 'c2')))
    t.equal((await confirm(ids, plain._id)).kind, 'hold_confirmed', 'a booking confirmed at once, confirmed again without reference: the same')
    const released = bookingOf(await book(hold(ids, 1, 'c3')))
    await cancel(ids, released._id)
    t.match(await confirm(ids, released._id, 'late'), { kind: 'invalid_state', booking: { status: 'cancelled' } })
    t.same(await confirm(ids, '0123456789abcdef01234567'), { kind: 'not_found' })
    await assertInvariant(t, event._id)
  })

  t.test('holds: a batch confirms a hold once and decides the rest after it', async t => {
    const { event, ids: [ids] } = await newEvent([2])
    const held = bookingOf(await book(hold(ids, 2, 'd1')))
    const { results } = await batch(ids,
      { kind: 'confirm', access: granted, bookingId: held._id, paymentRef: 'p' },
      { kind: 'confirm', access: granted, bookingId: held._id, paymentRef: 'p' },
      { kind: 'book', request: buy(ids, 1, 'd2') })
    t.same(results.map(r => r.kind), ['hold_confirmed', 'hold_confirmed', 'sold_out'])
    t.same(results.slice(0, 2).map(r => r.kind === 'hold_confirmed' && r.changed), [true, false])
    await assertInvariant(t, event._id)
  })

  t.test('holds: a webhook\'s confirm and the buyer\'s cancel in one batch: confirmed, then cancelled', async t => {
    const { event, ids: [ids] } = await newEvent([3])
    const held = bookingOf(await book(hold(ids, 2, 'w1')))
    const { results } = await batch(ids, { kind: 'confirm', access: granted, bookingId: held._id, paymentRef: 'p' }, { kind: 'cancel', access: granted, bookingId: held._id })
    t.same(results.map(r => r.kind), ['hold_confirmed', 'cancelled'])
    t.match(await store().getBooking(held._id), { status: 'cancelled', paymentRef: 'p' })
    t.match(await section(ids), { remaining: 3, held: 0, sold: 0 })
    await assertInvariant(t, event._id)
  })

  t.test('holds: past expiresAt a hold is expired, never confirmed, and its seats are back', async t => {
    const { event, ids: [ids] } = await newEvent([3])
    const held = bookingOf(await book(hold(ids, 3, 'e1', SHORT_MS)))
    t.match(await section(ids), { remaining: 0, held: 3 })
    await sleep(SHORT_MS + 100)
    const { results: [result], expired, remaining } = await batch(ids, { kind: 'confirm', access: granted, bookingId: held._id, paymentRef: 'too-late' })
    t.match(result, { kind: 'hold_expired', booking: { _id: held._id, status: 'expired' } })
    t.same(expired, [{ qty: 3, expiresAt: held.expiresAt }], 'the batch reports what it expired')
    t.equal(remaining, 3)
    t.match(await store().getBooking(held._id), { status: 'expired' })
    t.notOk((await store().getBooking(held._id))?.paymentRef, 'never confirmed')
    t.match(await section(ids), { remaining: 3, held: 0, sold: 0 })
    t.equal((await confirm(ids, held._id, 'too-late')).kind, 'hold_expired', 'and stays expired')
    t.match(await cancel(ids, held._id), { kind: 'cancelled', changed: false, booking: { status: 'expired' } }, 'cancelling it gives nothing back twice')
    await assertInvariant(t, event._id)
  })

  t.test('holds: a section\'s next booking expires its due holds first and may sell their seats', async t => {
    const { event, ids: [ids] } = await newEvent([2])
    const held = bookingOf(await book(hold(ids, 2, 'f1', SHORT_MS)))
    t.equal((await book(buy(ids, 1, 'f2'))).kind, 'sold_out', 'while held, the seats are not for sale')
    await sleep(SHORT_MS + 100)
    const { results, expired } = await batch(ids, { kind: 'book', request: buy(ids, 2, 'f3') })
    t.equal(results[0].kind, 'confirmed', 'the expired seats serve the booking')
    t.equal(expired.length, 1)
    t.match(await store().getBooking(held._id), { status: 'expired' })
    t.match(await section(ids), { remaining: 0, held: 0, sold: 2 })
    await assertInvariant(t, event._id)
  })

  t.test('holds: release gives the seats back at once; cancel of a confirmed booking too', async t => {
    const { event, ids: [ids] } = await newEvent([4])
    const held = bookingOf(await book(hold(ids, 3, 'r1')))
    const released = await cancel(ids, held._id)
    t.match(released, { kind: 'cancelled', changed: true, from: 'held', booking: { status: 'cancelled' } })
    t.match(await section(ids), { remaining: 4, held: 0, sold: 0 })
    t.match(await cancel(ids, held._id), { kind: 'cancelled', changed: false }, 'releasing again changes nothing')
    const paid = bookingOf(await book(hold(ids, 2, 'r2')))
    await confirm(ids, paid._id, 'p')
    t.match(await cancel(ids, paid._id), { kind: 'cancelled', changed: true, from: 'confirmed' })
    t.match(await section(ids), { remaining: 4, held: 0, sold: 0 })
    await assertInvariant(t, event._id)
  })

  t.test('holds: with no other traffic, the sweep finds due sections and expires them', async t => {
    const { event, ids: [a, b] } = await newEvent([2, 2])
    bookingOf(await book(hold(a, 2, 's1', SHORT_MS)))
    bookingOf(await book(hold(b, 1, 's2')))
    await sleep(SHORT_MS + 100)
    const due = await store().dueSections(1000)
    t.ok(due.some(s => s.sectionId === a.sectionId), 'the section with an expired hold is due')
    t.notOk(due.some(s => s.sectionId === b.sectionId), 'a section whose holds still run is not')
    const { results, expired } = await batch(a, { kind: 'expire' })
    t.same(results, [{ kind: 'swept' }])
    t.equal(expired.length, 1)
    t.notOk((await store().dueSections(1000)).some(s => s.sectionId === a.sectionId), 'swept: no longer due')
    t.match(await section(a), { remaining: 2, held: 0 })
    t.match(await section(b), { remaining: 1, held: 1 })
    await assertInvariant(t, event._id)
  })

  t.test('holds: an Idempotency-Key replays a hold, and a hold is another body than a booking', async t => {
    const { ids: [ids] } = await newEvent([5])
    const key = `hold-${Date.now()}-${Math.random()}`
    const first = bookingOf(await book(hold(ids, 1, 'i1', LONG_MS, key)))
    t.match(await book(hold(ids, 1, 'i1', LONG_MS, key)), { kind: 'replayed', booking: first })
    t.equal((await book({ ...buy(ids, 1, 'i1'), idempotencyKey: key })).kind, 'key_reused')
    t.match(await section(ids), { remaining: 4, held: 1 })
  })

  t.test('maxPerUser: held plus confirmed seats of one user, across sections, never pass the cap', async t => {
    const { event, ids: [a, b] } = await newEvent([10, 10], { maxPerUser: 3 })
    t.equal(event.maxPerUser, 3)
    t.equal((await book(hold(a, 2, 'm1'))).kind, 'held')
    t.same(await book(hold(b, 2, 'm1')), { kind: 'limit_exceeded', allowed: 1 }, 'one seat left for this user in the event')
    const last = bookingOf(await book(buy(b, 1, 'm1')))
    t.same(await book(buy(a, 1, 'm1')), { kind: 'limit_exceeded', allowed: 0 })
    t.equal((await book(buy(a, 3, 'm2'))).kind, 'confirmed', 'another user has a cap of their own')
    await cancel(b, last._id)
    t.equal((await book(buy(a, 1, 'm1'))).kind, 'confirmed', 'a cancelled booking gives its seats back to the cap')
    const { results } = await batch(a, { kind: 'book', request: buy(a, 1, 'm3') }, { kind: 'book', request: buy(a, 3, 'm3') })
    t.same(results.map(r => r.kind), ['confirmed', 'limit_exceeded'], 'one batch counts its own bookings')
    await assertInvariant(t, event._id)
  })

  t.test('maxPerUser: an expired hold gives its seats back to the cap', async t => {
    const { ids: [ids] } = await newEvent([10], { maxPerUser: 2 })
    await book(hold(ids, 2, 'x1', SHORT_MS))
    t.equal((await book(buy(ids, 1, 'x1'))).kind, 'limit_exceeded')
    await sleep(SHORT_MS + 100)
    t.equal((await book(buy(ids, 2, 'x1'))).kind, 'confirmed')
  })

  t.test('maxPerUser: racing transactions in two sections, no lock taken, never pass the cap', async t => {
    const { event, ids } = await newEvent([20, 20], { maxPerUser: 3 })
    const results = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      const at = ids[i % 2]
      // two users per batch, named in both orders: the rows are still locked in one order
      const users = i % 4 < 2 ? ['ra', 'rb'] : ['rb', 'ra']
      return (await batch(at, ...users.map(u => ({ kind: 'book' as const, request: buy(at, 1, u) })))).results
    }))
    const all = results.flat()
    t.equal(all.filter(r => r.kind === 'confirmed').length, 6, 'three seats for each of the two users')
    t.ok(all.every(r => r.kind === 'confirmed' || r.kind === 'limit_exceeded'), 'the rest are refused by the cap')
    await assertInvariant(t, event._id)
  })

  t.test('maxPerUser: one batch over two sections counts the user\'s seats across both, and applies them', async t => {
    const { event, ids: [a, b] } = await newEvent([10, 10], { maxPerUser: 3 })
    const results = await store().sectionsBatch([
      { ...a, ops: [{ kind: 'book', request: hold(a, 2, 'x2') }] },
      { ...b, ops: [{ kind: 'book', request: buy(b, 2, 'x2') }, { kind: 'book', request: buy(b, 1, 'x2') }] }
    ])
    const outcomes = results.flatMap(r => r.results)
    // sections are decided in id order: whichever comes first takes its seats, the other gets what the cap leaves
    t.ok(outcomes.every(o => o.kind === 'held' || o.kind === 'confirmed' || o.kind === 'limit_exceeded'), outcomes.map(o => o.kind).join(', '))
    const seats = outcomes.reduce((n, o) => n + ('booking' in o ? o.booking.qty : 0), 0)
    t.equal(seats, 3, 'the user got exactly the cap over the batch')
    t.same(await book(buy(a, 1, 'x2')), { kind: 'limit_exceeded', allowed: 0 }, 'the batch\'s seats were stored for the cap')
    await assertInvariant(t, event._id)
  })
}
