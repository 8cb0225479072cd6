/**
 * The store contract for an event's lifecycle: its details and status as
 * stored, drafts in lists, the sale window decided by the database's clock
 * in the booking's own batch, changes of the event (decided on it as stored,
 * refused whole), sections added and edited through their batch (capacity
 * never below held + sold), a cancelled event's holds released, a cap set
 * anew counting the seats already taken, and one rule for ids in another case.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import type { BookingRequest, Decision } from '../../lib/domain/allocation.ts'
import type { EventInput } from '../../lib/api/schemas.ts'
import { InvalidInputError } from '../../lib/domain/errors.ts'
import type { OpResult, SectionOp } from '../../lib/domain/section-ops.ts'
import { assertDatesInOrder, withFields, type EventFields } from '../../lib/domain/sale-rules.ts'
import { newSection, type Store } from '../../lib/store/store.ts'
import { invariantProblems } from '../helpers/invariant.ts'
import { granted, sectionBatch } from '../helpers/section-batch.ts'

const ORGANIZER = 'organizer-1'
type Ids = { eventId: string, sectionId: string }

const inMs = (ms: number): string => new Date(Date.now() + ms).toISOString()
const buy = (ids: Ids, qty: number, userId: string): BookingRequest => ({ ...ids, qty, userId })
const hold = (ids: Ids, qty: number, userId: string): BookingRequest => ({ ...ids, qty, userId, holdDefaultMs: 600_000 })

export function lifecycleContract (t: Test, store: () => Store): void {
  async function newEvent (over: Partial<EventInput> = {}, capacity = 10) {
    const event = await store().createEvent({ name: 'Lifecycle', sections: [{ name: 'GA', price: 10, capacity }], ...over }, ORGANIZER)
    return { event, ids: { eventId: event._id, sectionId: event.sections[0]._id } }
  }
  const batch = async (ids: Ids, ...ops: SectionOp[]): Promise<OpResult[]> => (await sectionBatch(store(), ids.eventId, ids.sectionId, ops)).results
  const book = async (request: BookingRequest): Promise<OpResult> => (await batch(request, { kind: 'book', request }))[0]
  const edit = async (ids: Ids, change: SectionOp & { kind: 'edit' } extends { change: infer C } ? C : never) =>
    (await batch(ids, { kind: 'edit', change, mayEdit: () => true }))[0]
  const change = async (id: string, fields: EventFields) =>
    await store().changeEvent(id, current => { assertDatesInOrder(withFields(current, fields)); return { fields, addSections: [] } })
  async function assertInvariant (t: Test, eventId: string): Promise<void> {
    const event = await store().getEvent(eventId)
    const { items } = await store().listBookings({ eventId, page: 1, limit: 100 })
    t.same(invariantProblems(event?.sections ?? [], items), [], 'capacity == remaining + held + sold, remaining >= 0')
  }
  const sectionOf = async (ids: Ids) => (await store().getEvent(ids.eventId))?.sections.find(s => s._id === ids.sectionId)

  t.test('lifecycle: an event keeps its details and status; one made without them is published with no window', async (t: Test) => {
    const plain = await newEvent()
    t.equal(plain.event.status, 'published')
    t.notOk('salesStart' in plain.event, 'no window')
    const details = {
      description: 'Opening night', venue: 'Hall 1', startsAt: '2030-06-01T19:00:00.000Z', endsAt: '2030-06-01T23:00:00.000Z',
      salesStart: '2030-05-01T10:00:00.000Z', salesEnd: '2030-06-01T18:00:00.000Z'
    }
    const { event } = await newEvent({ ...details, status: 'draft' })
    t.match(event, { ...details, status: 'draft', owner: ORGANIZER })
    t.same(await store().getEvent(event._id), event, 'read back as created')
    t.equal(await store().getEvent(event._id.toUpperCase()), null, 'the id in uppercase is not found: ids are lowercase')
  })

  t.test('lifecycle: drafts are listed to their owner and to all-seeing viewers only', async (t: Test) => {
    const { event: draft } = await newEvent({ status: 'draft' })
    const listed = async (drafts: 'none' | 'all' | { owner: string }) =>
      (await store().listEvents({ page: 1, limit: 100, drafts })).items.some(e => e._id === draft._id)
    t.equal(await listed('none'), false, 'not to the public')
    t.equal(await listed({ owner: 'someone-else' }), false, 'not to another organizer')
    t.equal(await listed({ owner: ORGANIZER }), true, 'to its owner')
    t.equal(await listed('all'), true, 'to an admin')
    const none = await store().listEvents({ page: 1, limit: 100, drafts: 'none' })
    const all = await store().listEvents({ page: 1, limit: 100, drafts: 'all' })
    t.ok(all.total > none.total, 'totals count what the viewer may see')
  })

  t.test('lifecycle: before salesStart not open (with opensAt), from salesEnd closed, a draft takes nothing', async (t: Test) => {
    const later = await newEvent({ salesStart: inMs(3_600_000) })
    t.same(await book(buy(later.ids, 1, 'u')), { kind: 'not_open', opensAt: later.event.salesStart })
    const ended = await newEvent({ salesStart: inMs(-7_200_000), salesEnd: inMs(-3_600_000) })
    t.same(await book(buy(ended.ids, 1, 'u')), { kind: 'closed' })
    const draft = await newEvent({ status: 'draft' })
    t.same(await book(buy(draft.ids, 1, 'u')), { kind: 'draft' })
    for (const { ids } of [later, ended, draft]) t.equal((await sectionOf(ids))?.remaining, 10, 'nothing taken')
  })

  t.test('lifecycle: the database\'s clock opens the sale: no booking before salesStart', async (t: Test) => {
    const { event, ids } = await newEvent({ salesStart: inMs(1500) })
    const opensAt = Date.parse(event.salesStart as string)
    let first: OpResult | undefined
    let refused = 0
    while (Date.now() < opensAt + 5000) {
      const result = await book(buy(ids, 1, `u${refused}`))
      if (result.kind === 'confirmed') { first = result; break }
      t.equal(result.kind, 'not_open')
      refused++
      await sleep(20)
    }
    t.ok(refused > 0, 'refused before the opening')
    t.equal(first?.kind, 'confirmed', 'sold once open')
    if (first?.kind === 'confirmed') t.ok(Date.parse(first.booking.createdAt) >= opensAt, 'made at or after salesStart, by the database\'s clock')
  })

  t.test('lifecycle: a closed sale refuses bookings and holds; a hold taken before may still be confirmed', async (t: Test) => {
    const { event, ids } = await newEvent()
    const held = await book(hold(ids, 2, 'payer'))
    t.equal(held.kind, 'held')
    // remembered by the store (a batch just wrote it): the change must still be seen at once
    t.equal((await change(event._id, { status: 'closed' }))?.status, 'closed')
    t.same(await book(buy(ids, 1, 'late')), { kind: 'closed' })
    t.same(await book(hold(ids, 1, 'late')), { kind: 'closed' })
    if (held.kind !== 'held') return
    const confirmed = (await batch(ids, { kind: 'confirm', access: granted, bookingId: held.booking._id }))[0]
    t.equal(confirmed.kind, 'hold_confirmed')
    t.equal((await change(event._id, { status: 'published' }))?.status, 'published')
    t.equal((await book(buy(ids, 1, 'again'))).kind, 'confirmed', 'published again: on sale')
    await assertInvariant(t, event._id)
  })

  t.test('lifecycle: a change is decided on the event as stored; a refusal writes nothing', async (t: Test) => {
    const { event } = await newEvent({ startsAt: '2030-06-01T19:00:00.000Z' })
    const changed = await change(event._id, { name: 'Renamed', venue: 'Hall 2', description: 'new', salesEnd: '2030-05-31T00:00:00.000Z' })
    t.match(changed, { name: 'Renamed', venue: 'Hall 2', description: 'new', salesEnd: '2030-05-31T00:00:00.000Z', startsAt: '2030-06-01T19:00:00.000Z' })
    const cleared = await change(event._id, { venue: null, salesEnd: null })
    t.notOk(cleared !== null && 'venue' in cleared, 'null clears venue')
    t.notOk(cleared !== null && 'salesEnd' in cleared, 'null clears salesEnd')
    const refused = await change(event._id, { name: 'Never', endsAt: '2030-06-01T18:00:00.000Z' }).catch((err: unknown) => err)
    t.ok(refused instanceof InvalidInputError, 'endsAt before the stored startsAt is refused')
    t.match(refused, { details: { field: 'endsAt' } })
    t.equal((await store().getEvent(event._id))?.name, 'Renamed', 'nothing of the refused change was written')
    t.equal(await store().changeEvent('0123456789abcdef01234567', () => ({ fields: {}, addSections: [] })), null, 'no such event: null')
  })

  t.test('lifecycle: a section added is on sale at once with the event\'s rules', async (t: Test) => {
    const { event } = await newEvent()
    const added = newSection({ name: 'Balcony', price: 25.555, capacity: 3 })
    const changed = await store().changeEvent(event._id, () => ({ fields: {}, addSections: [added] }))
    t.same(changed?.sections.map(s => s.name), ['GA', 'Balcony'], 'after the others')
    t.equal(changed?.sections[1].price, 25.56, 'price in cents')
    const result = await book(buy({ eventId: event._id, sectionId: added._id }, 3, 'u'))
    t.equal(result.kind, 'confirmed')
    t.equal((await book(buy({ eventId: event._id, sectionId: added._id }, 1, 'u'))).kind, 'sold_out')
    await assertInvariant(t, event._id)
  })

  t.test('lifecycle: capacity raised and lowered in the section\'s batch, never below held + sold', async (t: Test) => {
    const { event, ids } = await newEvent({}, 5)
    t.equal((await book(buy(ids, 3, 'a'))).kind, 'confirmed')
    t.equal((await book(hold(ids, 1, 'b'))).kind, 'held')
    t.same(await edit(ids, { capacity: 3 }), { kind: 'capacity_below_taken', minimum: 4 })
    t.same(await edit(ids, { capacity: 4 }), { kind: 'edited' })
    t.match(await sectionOf(ids), { capacity: 4, remaining: 0, held: 1, sold: 3 })
    t.same(await book(buy(ids, 1, 'c')), { kind: 'sold_out', remaining: 0 })
    t.same(await edit(ids, { capacity: 6 }), { kind: 'edited' })
    t.match(await sectionOf(ids), { capacity: 6, remaining: 2 })
    t.equal((await book(buy(ids, 2, 'c'))).kind, 'confirmed', 'the raised seats are sold at once')
    // an edit and bookings in one batch: the edit first, then the bookings from what it left
    const [raised, booked, refused] = await batch(ids, { kind: 'edit', change: { capacity: 7 }, mayEdit: () => true },
      { kind: 'book', request: buy(ids, 1, 'd') }, { kind: 'book', request: buy(ids, 1, 'e') })
    t.same([raised.kind, booked.kind, refused.kind], ['edited', 'confirmed', 'sold_out'])
    t.same(await edit(ids, { capacity: 1 }).then(r => r.kind), 'capacity_below_taken')
    t.equal((await batch(ids, { kind: 'edit', change: { capacity: 9 }, mayEdit: () => false }))[0].kind, 'forbidden')
    await assertInvariant(t, event._id)
  })

  t.test('lifecycle: a price applies to bookings made after it; a booking keeps its unitPrice', async (t: Test) => {
    const { event, ids } = await newEvent()
    const before = await book(buy(ids, 2, 'a'))
    t.same(await edit(ids, { price: 12.345, name: 'Stalls' }), { kind: 'edited' })
    const after = await book(buy(ids, 2, 'b'))
    t.match(before, { booking: { unitPrice: 10, amount: 20 } })
    t.match(after, { booking: { unitPrice: 12.35, amount: 24.7 } })
    t.match(await sectionOf(ids), { name: 'Stalls', price: 12.35 })
    if (before.kind === 'confirmed') t.match(await store().getBooking(before.booking._id), { unitPrice: 10, amount: 20 })
    t.equal(event.sections[0].price, 10)
  })

  t.test('lifecycle: edits racing bookings never oversell', async (t: Test) => {
    const { event, ids } = await newEvent({}, 20)
    const ops: Array<Promise<unknown>> = []
    for (let i = 0; i < 60; i++) {
      ops.push(book(buy(ids, 1, `u${i}`)).catch(() => undefined))
      if (i % 6 === 0) ops.push(edit(ids, { capacity: 10 + (i % 4) * 5 }).catch(() => undefined))
    }
    await Promise.all(ops)
    await assertInvariant(t, event._id)
  })

  t.test('lifecycle: a cancelled event releases its holds; confirmed bookings stay', async (t: Test) => {
    const { event, ids } = await newEvent({ maxPerUser: 5 })
    const held = await book(hold(ids, 2, 'h'))
    const sold = await book(buy(ids, 3, 's'))
    t.equal((await change(event._id, { status: 'cancelled' }))?.status, 'cancelled')
    t.same(await batch(ids, { kind: 'release_holds' }), [{ kind: 'swept' }])
    t.match(await sectionOf(ids), { remaining: 7, held: 0, sold: 3 })
    if (held.kind === 'held') t.match(await store().getBooking(held.booking._id), { status: 'cancelled' })
    if (sold.kind === 'confirmed') t.match(await store().getBooking(sold.booking._id), { status: 'confirmed' })
    t.same(await book(buy(ids, 1, 'late')), { kind: 'closed' })
    t.same(await batch(ids, { kind: 'release_holds' }), [{ kind: 'swept' }], 'again: nothing more')
    await assertInvariant(t, event._id)
    // a release sent for an event that is not cancelled releases nothing
    const other = await newEvent()
    const kept = await book(hold(other.ids, 1, 'h'))
    await batch(other.ids, { kind: 'release_holds' })
    if (kept.kind === 'held') t.match(await store().getBooking(kept.booking._id), { status: 'held' })
  })

  t.test('lifecycle: a cap set anew counts the seats users already hold and bought', async (t: Test) => {
    const { event, ids } = await newEvent()
    t.equal((await book(buy(ids, 2, 'fan'))).kind, 'confirmed')
    t.equal((await book(hold(ids, 1, 'fan'))).kind, 'held')
    await change(event._id, { maxPerUser: 4 })
    t.same(await book(buy(ids, 2, 'fan')), { kind: 'limit_exceeded', allowed: 1 } satisfies Decision)
    t.equal((await book(buy(ids, 1, 'fan'))).kind, 'confirmed')
    t.equal((await book(buy(ids, 4, 'other'))).kind, 'confirmed', 'another user has its own cap')
  })
}
