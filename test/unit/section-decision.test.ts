import t from 'tap'
import type { StoredBooking } from '../../lib/domain/allocation.ts'
import type { SectionOp, SectionState } from '../../lib/domain/section-ops.ts'
import { decideSection } from '../../lib/domain/section-decision.ts'
import type { SaleWindow } from '../../lib/domain/sale-rules.ts'
import { granted } from '../helpers/section-batch.ts'

const ids = { eventId: 'e'.repeat(24), sectionId: 's'.repeat(24) }
const now = new Date('2026-01-01T12:00:00.000Z')
const ON_SALE: SaleWindow = { status: 'published', salesStart: null, salesEnd: null }
let n = 0
const newId = () => String(++n).padStart(24, '0')

const section = (over: Partial<SectionState> = {}): SectionState =>
  ({ remaining: 0, capacity: 100, price: 10, sale: ON_SALE, owner: 'org', holdSeconds: null, maxPerUser: null, nextExpiry: null, waiting: 0, offerSeconds: null, now, ...over })

function stored (id: string, status: StoredBooking['status'], qty: number, userId: string, expiresAt?: Date): StoredBooking {
  const b: StoredBooking = { _id: id, ...ids, userId, qty, unitPrice: 10, amount: 10 * qty, status, createdAt: '2026-01-01T11:00:00.000Z' }
  if (expiresAt !== undefined) b.expiresAt = expiresAt.toISOString()
  return b
}

const decide = (state: SectionState, ops: SectionOp[], bookings: StoredBooking[], userSeats = new Map<string, number>()) =>
  decideSection({
    ref: ids, section: state, ops, existing: new Map(), bookings: new Map(bookings.map(b => [b._id, b])), userSeats,
    nextExpiry: { replace: false, at: null }, waitlist: null, offerDefaultMs: 60_000, newId, newEntryId: newId
  })

t.test('a due hold expires first and its seats serve the batch; a running one is confirmed', async t => {
  const due = stored('a'.repeat(24), 'held', 2, 'u1', new Date(now.getTime() - 1))
  const running = stored('b'.repeat(24), 'held', 1, 'u2', new Date(now.getTime() + 60_000))
  const { results, effects, expired } = decide(section(), [
    { kind: 'confirm', access: granted, bookingId: due._id, paymentRef: 'late' },
    { kind: 'confirm', access: granted, bookingId: running._id, paymentRef: 'p' },
    { kind: 'book', request: { ...ids, qty: 2, userId: 'u3' } }
  ], [due, running])
  t.same(results.map(r => r.kind), ['hold_expired', 'hold_confirmed', 'confirmed'])
  t.same(expired, [{ qty: 2, expiresAt: due.expiresAt }])
  t.same([effects.remaining, effects.held, effects.sold], [0, -3, 3], 'expired 2 back and sold again; 1 held moved to sold')
  t.same(effects.changes, [
    { id: due._id, from: 'held', to: 'expired', confirms: false },
    { id: running._id, from: 'held', to: 'confirmed', confirms: true, paymentRef: 'p' }
  ])
})

t.test('a hold expiring exactly now is expired: expiresAt is the first moment it is no longer held', async t => {
  const edge = stored('c'.repeat(24), 'held', 1, 'u', now)
  const { results } = decide(section(), [{ kind: 'confirm', access: granted, bookingId: edge._id }], [edge])
  t.equal(results[0].kind, 'hold_expired')
})

t.test('users\' seats: gains and give-backs per user, in userId order, only with a cap', async t => {
  const back = stored('d'.repeat(24), 'confirmed', 2, 'zed')
  const ops: SectionOp[] = [
    { kind: 'cancel', access: granted, bookingId: back._id },
    { kind: 'book', request: { ...ids, qty: 1, userId: 'bob' } },
    { kind: 'book', request: { ...ids, qty: 1, userId: 'amy', holdDefaultMs: 1000 } }
  ]
  const capped = decide(section({ remaining: 5, maxPerUser: 4 }), ops, [back], new Map([['zed', 2]]))
  t.same(capped.effects.userSeats, [{ userId: 'amy', delta: 1 }, { userId: 'bob', delta: 1 }, { userId: 'zed', delta: -2 }])
  t.same(capped.effects.nextExpiry, { replace: false, at: new Date(now.getTime() + 1000) }, 'the new hold\'s end is the next expiry')
  const open = decide(section({ remaining: 5 }), ops, [back])
  t.same(open.effects.userSeats, [], 'no cap, no counting')
})

t.test('the cap counts the batch\'s own bookings and what it gives back', async t => {
  const back = stored('e'.repeat(24), 'held', 2, 'u', new Date(now.getTime() + 60_000))
  const { results } = decide(section({ remaining: 10, maxPerUser: 3 }), [
    { kind: 'book', request: { ...ids, qty: 2, userId: 'u' } },
    { kind: 'cancel', access: granted, bookingId: back._id },
    { kind: 'book', request: { ...ids, qty: 2, userId: 'u' } }
  ], [back], new Map([['u', 2]]))
  // cancels are decided before bookings: u holds 0, then takes 2, then 1 more is allowed
  t.same(results.map(r => r.kind), ['confirmed', 'cancelled', 'limit_exceeded'])
  t.same(results[2], { kind: 'limit_exceeded', allowed: 1 })
})

t.test('a hold confirmed and cancelled in one batch is one change', async t => {
  const held = stored('f'.repeat(24), 'held', 2, 'u', new Date(now.getTime() + 60_000))
  const { results, effects } = decide(section(), [
    { kind: 'confirm', access: granted, bookingId: held._id, paymentRef: 'p' },
    { kind: 'cancel', access: granted, bookingId: held._id }
  ], [held])
  t.same(results.map(r => r.kind), ['hold_confirmed', 'cancelled'])
  t.same(effects.changes, [{ id: held._id, from: 'held', to: 'cancelled', confirms: true, paymentRef: 'p' }])
  t.same([effects.remaining, effects.held, effects.sold], [2, -2, 0])
})

t.test('a confirm or cancel the principal may not make changes nothing: forbidden, or not found when it may not see the booking', async t => {
  const held = stored('1'.repeat(24), 'held', 2, 'u', new Date(now.getTime() + 60_000))
  const asked: string[] = []
  const { results, effects } = decide(section(), [
    { kind: 'confirm', access: b => { asked.push(b.userId); return 'forbidden' }, bookingId: held._id, paymentRef: 'p' },
    { kind: 'cancel', access: () => 'hidden', bookingId: held._id },
    { kind: 'confirm', access: () => 'hidden', bookingId: held._id, paymentRef: 'p' }
  ], [held])
  t.same(results, [{ kind: 'forbidden' }, { kind: 'not_found' }, { kind: 'not_found' }])
  t.same(asked, ['u'], 'asked about the booking as read')
  t.same([effects.changes, effects.remaining, effects.held, effects.sold], [[], 0, 0, 0])
})
