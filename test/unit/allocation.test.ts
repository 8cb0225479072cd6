import t from 'tap'
import { allocate, publicBooking, replayDecision, requestHash, type BookingRequest, type StoredBooking } from '../../lib/domain/allocation.ts'

const ids = { eventId: 'e'.repeat(24), sectionId: 's'.repeat(24) }
const req = (qty: number, userId = 'u', idempotencyKey?: string): BookingRequest => ({ ...ids, qty, userId, idempotencyKey })
let n = 0
const newId = () => String(++n).padStart(24, '0')
const now = new Date('2026-01-01T00:00:00.000Z')
/** No hold length, no cap: the event's rules of a plain sale. */
const open = { rules: { holdSeconds: null, maxPerUser: null, owner: 'organizer-1', refusal: null }, userSeats: new Map<string, number>() }

t.test('first come first served; a request that does not fit is refused with what is left', async t => {
  const a = allocate({ remaining: 5, unitPrice: 12.5, requests: [req(3), req(3), req(2), req(1)], existing: new Map(), ...open, now, newId })
  t.same(a.decisions.map(d => d.kind), ['confirmed', 'sold_out', 'confirmed', 'sold_out'])
  t.same(a.decisions[1], { kind: 'sold_out', remaining: 2 })
  t.same(a.decisions[3], { kind: 'sold_out', remaining: 0 })
  t.equal(a.taken, 5)
  t.equal(a.remainingAfter, 0)
  t.equal(a.inserts.length, 2)
  t.match(a.inserts[0], { qty: 3, unitPrice: 12.5, amount: 37.5, status: 'confirmed', createdAt: now.toISOString() })
  t.equal(a.inserts[0].eventOwner, 'organizer-1', 'the stored row carries the event\'s owner')
  const answer = a.decisions[0]
  t.notOk(answer.kind === 'confirmed' && 'eventOwner' in answer.booking, 'the answer does not')
  t.strictSame(answer.kind === 'confirmed' ? answer.booking : null, publicBooking(a.inserts[0]), 'otherwise the same booking')
})

t.test('nothing fits: nothing taken', async t => {
  const a = allocate({ remaining: 0, unitPrice: 1, requests: [req(1), req(2)], existing: new Map(), ...open, now, newId })
  t.equal(a.taken, 0)
  t.same(a.inserts, [])
})

t.test('money is rounded to cents', async t => {
  const a = allocate({ remaining: 10, unitPrice: 0.1, requests: [req(3)], existing: new Map(), ...open, now, newId })
  t.equal(a.inserts[0].amount, 0.3)
})

t.test('idempotency keys: stored key replays or is refused; duplicates inside the batch replay the new booking', async t => {
  const stored: StoredBooking = { _id: 'x'.repeat(24), ...ids, userId: 'u', qty: 2, unitPrice: 1, amount: 2, status: 'confirmed', createdAt: now.toISOString(), idempotencyKey: 'old', requestHash: requestHash(req(2)) }
  const a = allocate({
    remaining: 10,
    unitPrice: 1,
    requests: [req(2, 'u', 'old'), req(3, 'u', 'old'), req(1, 'u', 'new'), req(1, 'u', 'new'), req(2, 'u', 'new')],
    existing: new Map([['old', stored]]),
    ...open,
    now,
    newId
  })
  t.same(a.decisions.map(d => d.kind), ['replayed', 'key_reused', 'confirmed', 'replayed', 'key_reused'])
  t.same((a.decisions[0] as { booking: unknown }).booking, publicBooking(stored), 'replay answers the public booking, no storage fields')
  t.same((a.decisions[3] as { booking: unknown }).booking, (a.decisions[2] as { booking: unknown }).booking)
  t.equal(a.taken, 1, 'only the new key books seats')
  t.equal(a.inserts[0].idempotencyKey, 'new')
  t.equal(a.inserts[0].requestHash, requestHash(req(1, 'u', 'new')))
})

t.test('requestHash covers every body field and ignores the key', async t => {
  const base = requestHash(req(1, 'u'))
  t.equal(requestHash(req(1, 'u', 'any-key')), base)
  t.not(requestHash(req(2, 'u')), base)
  t.not(requestHash(req(1, 'v')), base)
  t.not(requestHash({ ...req(1, 'u'), sectionId: 't'.repeat(24) }), base)
  t.not(requestHash({ ...req(1, 'u'), eventId: 'f'.repeat(24) }), base)
})

t.test('replayDecision', async t => {
  const stored: StoredBooking = { _id: 'x'.repeat(24), ...ids, userId: 'u', qty: 1, unitPrice: 1, amount: 1, status: 'confirmed', createdAt: now.toISOString(), idempotencyKey: 'k', requestHash: requestHash(req(1)) }
  t.equal(replayDecision(stored, req(1, 'u', 'k')).kind, 'replayed')
  t.equal(replayDecision(stored, req(1, 'other', 'k')).kind, 'key_reused')
})
