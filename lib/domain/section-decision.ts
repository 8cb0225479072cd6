/**
 * Deciding one section's batch: pure, shared by every store adapter through
 * lib/store/section-batch.ts. Everything is decided at one moment, the database's
 * `now`: holds past their expiresAt expire first (all holds are released when
 * the event is cancelled), then seats are given back (releases,
 * cancellations), holds confirmed and the section edited, in their order,
 * then bookings and holds are allocated first come first served
 * (lib/domain/allocation.ts) from what is left, if the sale takes them then
 * (lib/domain/sale-rules.ts).
 */
import { allocate, publicBooking, roundMoney, type StoredBooking } from './allocation.ts'
import { isoText } from '../support/iso-text.ts'
import type { Booking, BookingStatus, SectionPatch } from '../api/schemas.ts'
import type { BookingChange, ExpiredHold, OpResult, SectionEffects, SectionOp, SectionState } from './section-ops.ts'
import { byText } from '../support/text-order.ts'
import { saleRefusal, type SaleRefusal } from './sale-rules.ts'

const FORBIDDEN: OpResult = { kind: 'forbidden' }
const NOT_FOUND: OpResult = { kind: 'not_found' }

export interface SectionDecision {
  results: OpResult[]
  effects: SectionEffects
  expired: ExpiredHold[]
  /** seats given back to the section by expiries, releases and cancellations */
  returned: number
  /** why the sale took no new booking at the batch's moment; null: it took them */
  refusal: SaleRefusal | null
}

/** Whether the batch releases every hold of the section (its event is cancelled, and a release was sent): then it reads them all. */
export function releasesHolds (section: Pick<SectionState, 'sale'>, ops: readonly SectionOp[]): boolean {
  return section.sale.status === 'cancelled' && ops.some(op => op.kind === 'release_holds')
}

/** The seats a booking takes from `remaining`, by status: held ones count in `held`, confirmed ones in `sold`. */
type Counter = 'held' | 'sold'
const COUNTED_IN: Partial<Record<BookingStatus, Counter>> = { held: 'held', confirmed: 'sold' }

export function decideSection (input: {
  section: SectionState
  ops: readonly SectionOp[]
  /** bookings already stored under the batch's idempotency keys */
  existing: ReadonlyMap<string, StoredBooking>
  /** the bookings the batch names (cancel, confirm) and the section's due holds, read under the section's lock */
  bookings: ReadonlyMap<string, StoredBooking>
  /** seats each user concerned holds plus has confirmed in the event (only read when the event caps them) */
  userSeats: ReadonlyMap<string, number>
  /** the next expiry as read with the due holds ({ replace: false } when they were not read) */
  nextExpiry: { replace: boolean, at: Date | null }
  newId: () => string
}): SectionDecision {
  const { section, ops } = input
  const { now } = section
  const at = isoText(now)
  const results: OpResult[] = new Array(ops.length)
  const counters = { remaining: 0, held: 0, sold: 0, capacity: 0 }
  const edits: { name?: string, price?: number } = {}
  // by booking id: a batch may confirm or cancel many of its section's bookings
  const changes = new Map<string, BookingChange>()
  const userDelta = new Map<string, number>()
  // each booking's status as the batch leaves it, so an id named twice is decided once
  const current = new Map<string, StoredBooking>(input.bookings)

  function move (booking: StoredBooking, to: BookingStatus, extra: Partial<Booking> = {}): Booking {
    const from = COUNTED_IN[booking.status]
    const into = COUNTED_IN[to]
    if (from !== undefined) counters[from] -= booking.qty
    if (into !== undefined) counters[into] += booking.qty
    if (from !== undefined && into === undefined) {
      counters.remaining += booking.qty
      userDelta.set(booking.userId, (userDelta.get(booking.userId) ?? 0) - booking.qty)
    }
    let change = changes.get(booking._id)
    if (change === undefined) {
      change = { id: booking._id, from: booking.status, to, confirms: false }
      changes.set(booking._id, change)
    }
    change.to = to
    if (to === 'confirmed') change.confirms = true
    if (extra.paymentRef !== undefined) change.paymentRef = extra.paymentRef
    const moved: StoredBooking = { ...booking, ...extra, status: to }
    current.set(booking._id, moved)
    return publicBooking(moved)
  }

  // Due holds expire before anything else is decided: their seats may serve this batch.
  const expired: ExpiredHold[] = []
  for (const booking of input.bookings.values()) {
    if (booking.status !== 'held' || booking.expiresAt === undefined || new Date(booking.expiresAt) > now) continue
    move(booking, 'expired')
    expired.push({ qty: booking.qty, expiresAt: booking.expiresAt })
  }
  // a cancelled event's holds go back (its confirmed bookings stay): the batch read them all
  if (releasesHolds(section, ops)) {
    for (const booking of [...current.values()]) if (booking.status === 'held') move(booking, 'cancelled', { cancelledAt: at })
  }

  ops.forEach((op, i) => {
    if (op.kind === 'expire' || op.kind === 'release_holds') results[i] = { kind: 'swept' }
    if (op.kind === 'edit') results[i] = op.mayEdit(section.owner) ? edit(op.change) : FORBIDDEN
    if (op.kind !== 'cancel' && op.kind !== 'confirm') return
    const booking = current.get(op.bookingId)
    // a booking the principal may not see is not there for it: its id reveals nothing
    const access = booking === undefined ? 'hidden' : op.access(booking)
    if (booking === undefined || access !== 'granted') {
      results[i] = access === 'forbidden' ? FORBIDDEN : NOT_FOUND
      return
    }
    results[i] = op.kind === 'cancel' ? cancel(booking) : confirm(booking, op.paymentRef)
  })

  function cancel (booking: StoredBooking): OpResult {
    if (booking.status === 'held' || booking.status === 'confirmed') {
      const from = booking.status
      return { kind: 'cancelled', booking: move(booking, 'cancelled', { cancelledAt: at }), changed: true, from }
    }
    // cancelled already, or an expired hold: nothing left to give back
    return { kind: 'cancelled', booking: publicBooking(booking), changed: false, from: booking.status }
  }

  function confirm (booking: StoredBooking, paymentRef: string | undefined): OpResult {
    if (booking.status === 'held') {
      const extra: Partial<Booking> = paymentRef === undefined ? { confirmedAt: at } : { confirmedAt: at, paymentRef }
      return { kind: 'hold_confirmed', booking: move(booking, 'confirmed', extra), changed: true }
    }
    if (booking.status === 'expired') return { kind: 'hold_expired', booking: publicBooking(booking) }
    // a payment provider's retry: the same reference gets the same answer
    if (booking.status === 'confirmed' && booking.paymentRef === paymentRef) {
      return { kind: 'hold_confirmed', booking: publicBooking(booking), changed: false }
    }
    return { kind: 'invalid_state', booking: publicBooking(booking) }
  }

  /** A capacity goes no lower than the seats held and sold as the batch has them so far. */
  function edit (change: SectionPatch): OpResult {
    if (change.capacity !== undefined) {
      const capacity = section.capacity + counters.capacity
      const taken = capacity - (section.remaining + counters.remaining)
      if (change.capacity < taken) return { kind: 'capacity_below_taken', minimum: taken }
      counters.capacity += change.capacity - capacity
      counters.remaining += change.capacity - capacity
    }
    if (change.name !== undefined) edits.name = change.name
    if (change.price !== undefined) edits.price = roundMoney(change.price)
    return { kind: 'edited' }
  }

  const refusal = saleRefusal(section.sale, now)
  const books = ops.flatMap((op, i) => op.kind === 'book' ? [{ request: op.request, i }] : [])
  const userSeats = new Map(input.userSeats)
  for (const [userId, delta] of userDelta) userSeats.set(userId, (userSeats.get(userId) ?? 0) + delta)
  const allocation = allocate({
    remaining: section.remaining + counters.remaining,
    unitPrice: edits.price ?? section.price,
    requests: books.map(b => b.request),
    existing: input.existing,
    rules: { holdSeconds: section.holdSeconds, maxPerUser: section.maxPerUser, owner: section.owner, refusal },
    userSeats,
    now,
    newId: input.newId
  })
  allocation.decisions.forEach((decision, n) => { results[books[n].i] = decision })
  for (const [userId, seats] of allocation.userSeats) userDelta.set(userId, (userDelta.get(userId) ?? 0) + seats)

  const { inserts } = allocation
  const holdEnds = inserts.flatMap(b => b.expiresAt === undefined ? [] : [new Date(b.expiresAt).getTime()])
  const firstNewEnd = holdEnds.length === 0 ? null : new Date(Math.min(...holdEnds))
  return {
    results,
    expired,
    returned: counters.remaining,
    refusal,
    effects: {
      ...edits,
      capacity: counters.capacity,
      remaining: counters.remaining - allocation.taken,
      held: counters.held + allocation.heldTaken,
      sold: counters.sold + allocation.taken - allocation.heldTaken,
      inserts,
      changes: [...changes.values()],
      userSeats: section.maxPerUser === null
        ? []
        : [...userDelta].filter(([, delta]) => delta !== 0).sort(([a], [b]) => byText(a, b)).map(([userId, delta]) => ({ userId, delta })),
      maxPerUser: section.maxPerUser,
      nextExpiry: { replace: input.nextExpiry.replace, at: earliest(input.nextExpiry.at, firstNewEnd) },
      at: now
    }
  }
}

/** Whether effects change the section itself (its capacity, name or price). */
export function editsSection (effects: Pick<SectionEffects, 'capacity' | 'name' | 'price'>): boolean {
  return effects.capacity !== 0 || effects.name !== undefined || effects.price !== undefined
}

/** A section's next expiry once a batch's effects are written: replaced when its due holds were read, else the earlier of the two. */
export function nextExpiryAfter (before: Date | null, change: SectionEffects['nextExpiry']): Date | null {
  return change.replace ? change.at : earliest(before, change.at)
}

/** The earlier of two moments, null meaning none. */
function earliest (a: Date | null, b: Date | null): Date | null {
  if (a === null) return b
  if (b === null) return a
  return a <= b ? a : b
}
