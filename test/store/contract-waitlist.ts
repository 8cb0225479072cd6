/**
 * The store contract for the waiting list: users join only when the section
 * cannot serve them, once per section; seats that come back (cancel, expiry,
 * capacity raised, an offer lapsing or declined) go to the first waiting
 * entries they fit, in position order, as held offers, in the batch that
 * returns them; no public booking takes seats a fitting entry waits for; the
 * event's maxPerUser holds for offers too; each offer is recorded in the feed.
 */
import type { Test } from 'tap'
import type { BookingRequest } from '../../lib/domain/allocation.ts'
import type { OpResult, SectionOp } from '../../lib/domain/section-ops.ts'
import type { StoredEntry, WaitEntry } from '../../lib/domain/waitlist.ts'
import type { Store } from '../../lib/store/store.ts'
import type { SectionBatchResult } from '../../lib/store/section-batch.ts'
import { invariantProblems } from '../helpers/invariant.ts'
import { granted } from '../helpers/section-batch.ts'
import { feedShowing, readFeed } from './contract-changes.ts'

type Ids = { eventId: string, sectionId: string }
const LONG_MS = 600_000

export function waitlistContract (t: Test, store: () => Store): void {
  /** One section's batch, its offers lasting `offerMs`. */
  const run = async (ids: Ids, ops: SectionOp[], offerMs = LONG_MS): Promise<SectionBatchResult> =>
    (await store().sectionsBatch([{ ...ids, ops, offerDefaultMs: offerMs }]))[0]
  const one = async (ids: Ids, op: SectionOp, offerMs?: number): Promise<OpResult> => (await run(ids, [op], offerMs)).results[0]
  const book = async (ids: Ids, userId: string, qty: number, hold = false): Promise<OpResult> => {
    const request: BookingRequest = { ...ids, userId, qty }
    if (hold) request.holdDefaultMs = LONG_MS
    return await one(ids, { kind: 'book', request })
  }
  const join = async (ids: Ids, userId: string, qty: number): Promise<OpResult> => await one(ids, { kind: 'join', userId, qty })
  const entry = (result: OpResult): WaitEntry => {
    if (result.kind !== 'joined' && result.kind !== 'left') throw new Error(`not an entry: ${JSON.stringify(result)}`)
    return result.entry
  }
  const listed = async (ids: Ids, userId?: string): Promise<StoredEntry[]> =>
    await store().listWaitEntries({ eventId: ids.eventId, sectionId: ids.sectionId, limit: 100, ...(userId === undefined ? {} : { userId }) })
  const byId = async (ids: Ids): Promise<Map<string, StoredEntry>> => new Map((await listed(ids)).map(e => [e._id, e]))
  const section = async (ids: Ids) => (await store().getEvent(ids.eventId))!.sections.find(s => s._id === ids.sectionId)!
  async function invariant (t: Test, ids: Ids): Promise<void> {
    const event = await store().getEvent(ids.eventId)
    const { items } = await store().listBookings({ eventId: ids.eventId, page: 1, limit: 100 })
    t.same(invariantProblems(event!.sections, items), [], 'capacity == remaining + held + sold')
  }
  async function soldOutEvent (capacity: number, fields: { maxPerUser?: number, waitlistOfferSeconds?: number } = {}): Promise<Ids & { bookings: string[] }> {
    const event = await store().createEvent({ name: 'Waitlist', sections: [{ name: 'GA', price: 10, capacity }], ...fields }, 'organizer-waitlist')
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const bookings: string[] = []
    for (let i = 0; i < capacity; i++) {
      const result = await book(ids, `buyer-${i}`, 1)
      if (result.kind !== 'confirmed') throw new Error(`booking ${i}: ${result.kind}`)
      bookings.push(result.booking._id)
    }
    return { ...ids, bookings }
  }

  t.test('waitlist: joins only when the section cannot serve qty, once per user, in position order', async (t: Test) => {
    const event = await store().createEvent({ name: 'Waitlist', sections: [{ name: 'GA', price: 10, capacity: 3 }] }, 'organizer-waitlist')
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    t.same(await join(ids, 'early', 2), { kind: 'seats_available', remaining: 3 }, 'seats there: book instead')
    t.equal((await book(ids, 'buyer', 2)).kind, 'confirmed')
    t.same(await join(ids, 'early', 1), { kind: 'seats_available', remaining: 1 })
    const first = entry(await join(ids, 'early', 2))
    t.match(first, { userId: 'early', qty: 2, position: 1, status: 'waiting', eventId: ids.eventId, sectionId: ids.sectionId })
    const again = await join(ids, 'early', 3)
    t.same(again, { kind: 'joined', entry: first, created: false }, 'joining again answers the same entry')
    const second = entry(await join(ids, 'later', 4))
    t.equal(second.position, 2)
    t.equal((await section(ids)).waiting, 2, 'the section shows how many wait')
    t.same((await listed(ids)).map(e => e.userId), ['early', 'later'])
    t.same((await listed(ids, 'later')).map(e => e._id), [second._id], 'one user\'s entries')
    // one batch: two joins of one user make one entry
    const both = await run(ids, [{ kind: 'join', userId: 'twice', qty: 2 }, { kind: 'join', userId: 'twice', qty: 2 }])
    t.equal(entry(both.results[1])._id, entry(both.results[0])._id)
    t.equal((await section(ids)).waiting, 3)
  })

  t.test('waitlist: returned seats are offered in order to entries they fit, before any public booking', async (t: Test) => {
    const ids = await soldOutEvent(4)
    const big = entry(await join(ids, 'big', 4))
    const small = entry(await join(ids, 'small', 1))
    const pair = entry(await join(ids, 'pair', 2))
    const { cursor } = await readFeed(store())
    // three seats come back while a public buyer asks in the same batch: they go to the list
    const batch = await run(ids, [
      { kind: 'cancel', bookingId: ids.bookings[0], access: granted },
      { kind: 'cancel', bookingId: ids.bookings[1], access: granted },
      { kind: 'cancel', bookingId: ids.bookings[2], access: granted },
      { kind: 'book', request: { ...ids, userId: 'public', qty: 1 } }
    ])
    t.same(batch.results[3], { kind: 'sold_out', remaining: 0 }, 'no public booking takes seats a fitting entry waits for')
    t.equal(batch.remaining, 0)
    t.equal(batch.returned, 0, 'nothing came back on public sale')
    let after = await byId(ids)
    t.equal(after.get(big._id)?.status, 'waiting', 'the first entry does not fit three seats: passed over, still first')
    t.equal(after.get(small._id)?.status, 'offered', 'the entries that fit are offered, in position order')
    t.equal(after.get(pair._id)?.status, 'offered')
    const offered = [after.get(small._id)!, after.get(pair._id)!]
    const hold = await store().getBooking(offered[0].bookingId!)
    t.match(hold, { userId: 'small', qty: 1, status: 'held', waitlistId: small._id })
    t.match(await section(ids), { remaining: 0, held: 3, waiting: 1 })
    const feed = await feedShowing(store(), cursor, c => c.type === 'waitlist.offered', { types: ['waitlist.offered'] })
    t.same(feed.items.map(c => c.data), offered.map(({ eventOwner: _, ...e }) => e), 'one waitlist.offered change per offer, with the entry')
    // one seat back fits no waiting entry: the public books it
    const remnant = await run(ids, [
      { kind: 'cancel', bookingId: ids.bookings[3], access: granted },
      { kind: 'book', request: { ...ids, userId: 'public', qty: 1 } }
    ])
    t.equal(remnant.results[1].kind, 'confirmed', 'seats no waiting entry fits are on public sale')
    after = await byId(ids)
    t.equal(after.get(big._id)?.status, 'waiting')
    await invariant(t, ids)
  })

  t.test('waitlist: an offer confirmed serves its entry; one that lapses or is declined goes to the next in line', async (t: Test) => {
    const ids = await soldOutEvent(3)
    const first = entry(await join(ids, 'first', 1))
    const second = entry(await join(ids, 'second', 1))
    const third = entry(await join(ids, 'third', 1))
    await run(ids, [{ kind: 'cancel', bookingId: ids.bookings[0], access: granted }], 1)
    const offer = (await byId(ids)).get(first._id)!
    t.equal(offer.status, 'offered')
    // the offer lasted 1 ms: the next batch expires it and offers its seat on
    await new Promise(resolve => setTimeout(resolve, 20))
    const swept = await run(ids, [{ kind: 'expire' }])
    t.equal(swept.expired.length, 1)
    let now = await byId(ids)
    t.equal(now.get(first._id)?.status, 'lapsed')
    t.equal(now.get(second._id)?.status, 'offered')
    t.same(swept.waitlist.changes.map(c => c.to).sort(), ['lapsed', 'offered'])
    // declined: the entry leaves, its hold is released, the seat goes on
    const left = await one(ids, { kind: 'leave', entryId: second._id, bookingId: now.get(second._id)!.bookingId })
    t.match(left, { kind: 'left', changed: true, entry: { status: 'left' } })
    now = await byId(ids)
    t.equal((await store().getBooking(now.get(second._id)!.bookingId!))?.status, 'cancelled')
    const last = now.get(third._id)!
    t.equal(last.status, 'offered')
    const confirmed = await one(ids, { kind: 'confirm', bookingId: last.bookingId!, access: granted, paymentRef: 'pay' })
    t.equal(confirmed.kind, 'hold_confirmed')
    t.equal((await byId(ids)).get(third._id)?.status, 'confirmed')
    t.match(await section(ids), { remaining: 0, held: 0, sold: 3, waiting: 0 })
    const { eventOwner: _, ...served } = (await byId(ids)).get(third._id)!
    t.same(await one(ids, { kind: 'leave', entryId: third._id }), { kind: 'left', entry: served, changed: false },
      'a served entry leaving changes nothing')
    await invariant(t, ids)
  })

  t.test('waitlist: a waiting entry leaves; a capacity raised is offered to the list first', async (t: Test) => {
    const ids = await soldOutEvent(2)
    const gone = entry(await join(ids, 'gone', 1))
    const stays = entry(await join(ids, 'stays', 2))
    t.match(await one(ids, { kind: 'leave', entryId: gone._id }), { kind: 'left', changed: true })
    t.equal((await section(ids)).waiting, 1)
    const raised = await run(ids, [{ kind: 'edit', change: { capacity: 5 }, mayEdit: () => true }])
    t.equal(raised.remaining, 1, 'two of the three new seats offered, one on sale')
    t.equal((await byId(ids)).get(stays._id)?.status, 'offered')
    t.same(await one(ids, { kind: 'leave', entryId: '0123456789abcdef01234567' }), { kind: 'not_found' })
    // leaving and joining again in one batch: a new entry, at the end of the line
    const again = await run(ids, [{ kind: 'leave', entryId: gone._id }, { kind: 'join', userId: 'back', qty: 3 }])
    const back = entry(again.results[1])
    const rejoined = await run(ids, [{ kind: 'leave', entryId: back._id }, { kind: 'join', userId: 'back', qty: 3 }])
    t.match(rejoined.results, [{ kind: 'left', changed: true }, { kind: 'joined', created: true }])
    t.ok(entry(rejoined.results[1]).position > back.position, 'the new entry joins at the end')
    t.equal((await section(ids)).waiting, 1)
    await invariant(t, ids)
  })

  t.test('waitlist: maxPerUser holds for joins and offers', async (t: Test) => {
    const ids = await soldOutEvent(3, { maxPerUser: 2 })
    const event = await store().createEvent({ name: 'Other', sections: [{ name: 'A', price: 1, capacity: 2 }, { name: 'B', price: 1, capacity: 2 }], maxPerUser: 2 }, 'organizer-waitlist')
    const a = { eventId: event._id, sectionId: event.sections[0]._id }
    const b = { eventId: event._id, sectionId: event.sections[1]._id }
    t.equal((await book(a, 'capped', 2)).kind, 'confirmed')
    t.equal((await book(b, 'other', 2)).kind, 'confirmed')
    t.same(await join(b, 'capped', 1), { kind: 'limit_exceeded', allowed: 0 }, 'no room under the cap: refused with allowed')
    // joined within the cap, then the user takes seats elsewhere: the offer would pass it and is skipped
    const cappedLater = entry(await join(ids, 'late-capped', 2))
    const next = entry(await join(ids, 'next', 2))
    t.equal((await one(ids, { kind: 'cancel', bookingId: ids.bookings[0], access: granted })).kind, 'cancelled')
    t.equal((await byId(ids)).get(cappedLater._id)?.status, 'waiting', 'one seat fits neither entry')
    // late-capped holds one seat through a public booking of the remnant, then two come back
    t.equal((await book(ids, 'late-capped', 1)).kind, 'confirmed')
    const batch = await run(ids, [
      { kind: 'cancel', bookingId: ids.bookings[1], access: granted },
      { kind: 'cancel', bookingId: ids.bookings[2], access: granted }
    ])
    const now = await byId(ids)
    t.equal(now.get(cappedLater._id)?.status, 'skipped', 'an offer that would pass maxPerUser is not made')
    t.equal(now.get(next._id)?.status, 'offered', 'the next that fits is offered instead')
    t.same(batch.waitlist.changes.map(c => c.to), ['skipped', 'offered'])
    await invariant(t, ids)
  })
}
