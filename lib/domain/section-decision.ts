/**
 * Deciding one section's batch: pure, shared by every store adapter through
 * lib/store/section-batch.ts. Everything is decided at one moment, the database's
 * `now`: holds past their expiresAt expire first (all holds are released when
 * the event is cancelled), then seats are given back (releases,
 * cancellations), holds confirmed and the section edited, in their order,
 * then seats that are there go to the waiting list's first entries they fit
 * (lib/domain/waitlist.ts), then bookings and holds are allocated first come
 * first served (lib/domain/allocation.ts) from what is left, if the sale takes
 * them then (lib/domain/sale-rules.ts), and last users join the waiting list.
 */
import { allocate, holdEnd, publicBooking, roundMoney, type StoredBooking } from './allocation.ts'
import { isoText } from '../support/iso-text.ts'
import type { Booking, BookingStatus, SectionPatch } from '../api/schemas.ts'
import type { BookingChange, ExpiredHold, OpResult, SectionEffects, SectionOp, SectionRef, SectionState } from './section-ops.ts'
import { byText } from '../support/text-order.ts'
import { saleRefusal, type SaleRefusal } from './sale-rules.ts'
import { entryAfterOffer, isActive, publicEntry, type EntryChange, type StoredEntry, type WaitEntry, type WaitlistRead, type WaitStatus } from './waitlist.ts'

const FORBIDDEN: OpResult = { kind: 'forbidden' }
const NOT_FOUND: OpResult = { kind: 'not_found' }

export interface SectionDecision {
  results: OpResult[]
  effects: SectionEffects
  expired: ExpiredHold[]
  /** seats back on public sale: given back by expiries, releases, cancellations (or a capacity raised) and not offered to the waiting list */
  returned: number
  /** why the sale took no new booking at the batch's moment; null: it took them */
  refusal: SaleRefusal | null
  /** the waiting list read was not enough to know which entries fit: read more of it and decide again */
  readMore: boolean
}

/** Whether the batch releases every hold of the section (its event is cancelled, and a release was sent): then it reads them all. */
export function releasesHolds (section: Pick<SectionState, 'sale'>, ops: readonly SectionOp[]): boolean {
  return section.sale.status === 'cancelled' && ops.some(op => op.kind === 'release_holds')
}

/** The seats a booking takes from `remaining`, by status: held ones count in `held`, confirmed ones in `sold`. */
type Counter = 'held' | 'sold'
const COUNTED_IN: Partial<Record<BookingStatus, Counter>> = { held: 'held', confirmed: 'sold' }

export function decideSection (input: {
  ref: SectionRef
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
  /** the section's waiting list as read (null: not read, nothing of it fits or is named) */
  waitlist: WaitlistRead | null
  /** an offer's length when the event sets no waitlistOfferSeconds */
  offerDefaultMs: number
  newId: () => string
  newEntryId: () => string
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
  // each entry's status as the batch leaves it, and its moves (one per entry, from what was read)
  const entries = new Map<string, StoredEntry>((input.waitlist?.named ?? []).map(e => [e._id, e]))
  for (const e of input.waitlist?.waiting ?? []) if (!entries.has(e._id)) entries.set(e._id, e)
  const entryChanges = new Map<string, EntryChange>()
  const entryInserts: StoredEntry[] = []
  const offers: WaitEntry[] = []
  let waitingDelta = 0

  function moveEntry (entry: StoredEntry, to: WaitStatus, bookingId?: string): StoredEntry {
    if (entry.status === 'waiting') waitingDelta--
    const change = entryChanges.get(entry._id) ?? { id: entry._id, from: entry.status, to }
    change.to = to
    if (bookingId !== undefined) change.bookingId = bookingId
    entryChanges.set(entry._id, change)
    const moved: StoredEntry = bookingId === undefined ? { ...entry, status: to } : { ...entry, status: to, bookingId }
    entries.set(entry._id, moved)
    return moved
  }

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
    // an offer's hold decides its entry: confirmed, lapsed, or declined (left)
    const served = booking.status === 'held' && booking.waitlistId !== undefined ? entryAfterOffer(to) : undefined
    if (served !== undefined) {
      const entry = entries.get(booking.waitlistId as string)
      // not read: offered, as long as its hold is held
      if (entry === undefined) entryChanges.set(booking.waitlistId as string, { id: booking.waitlistId as string, from: 'offered', to: served })
      else moveEntry(entry, served)
    }
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
    if (op.kind === 'leave') results[i] = leave(op.entryId)
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

  /** An entry leaves: a waiting one at once; an offered one declines, its hold released (its seats go to the next in line). */
  function leave (id: string): OpResult {
    const entry = entries.get(id)
    if (entry === undefined) return NOT_FOUND
    if (entry.status === 'waiting') return { kind: 'left', entry: publicEntry(moveEntry(entry, 'left')), changed: true }
    if (entry.status !== 'offered') return { kind: 'left', entry: publicEntry(entry), changed: false }
    const hold = entry.bookingId === undefined ? undefined : current.get(entry.bookingId)
    // offered since the leave read it: its hold was not read with the batch
    if (hold === undefined) return { kind: 'stale' }
    if (hold.status === 'held') move(hold, 'cancelled', { cancelledAt: at })
    return { kind: 'left', entry: publicEntry(entries.get(id) as StoredEntry), changed: true }
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
  const userSeats = new Map(input.userSeats)
  for (const [userId, delta] of userDelta) userSeats.set(userId, (userSeats.get(userId) ?? 0) + delta)

  // Seats that are there go to the waiting list first: each waiting entry they fit, in position order.
  const offerInserts: StoredBooking[] = []
  let readMore = false
  const waitlist = input.waitlist
  if (refusal === null && waitlist !== null) {
    let seats = section.remaining + counters.remaining
    let passed = 0
    for (const read of waitlist.waiting) {
      if (seats === 0) break
      passed++
      const entry = entries.get(read._id) as StoredEntry
      if (entry.status !== 'waiting' || entry.qty > seats) continue
      const seatsOfUser = userSeats.get(entry.userId) ?? 0
      if (section.maxPerUser !== null && seatsOfUser + entry.qty > section.maxPerUser) {
        moveEntry(entry, 'skipped')
        continue
      }
      const booking = offer(entry)
      seats -= entry.qty
      userSeats.set(entry.userId, seatsOfUser + entry.qty)
      userDelta.set(entry.userId, (userDelta.get(entry.userId) ?? 0) + entry.qty)
      offers.push(publicEntry(moveEntry(entry, 'offered', booking._id)))
    }
    // every entry read was passed and seats are left: the entries not read may fit them
    readMore = !waitlist.complete && passed === waitlist.waiting.length && seats > 0
  }

  /** A held booking for the entry's user: the seats move from remaining to held at once. */
  function offer (entry: StoredEntry): StoredBooking {
    const unitPrice = edits.price ?? section.price
    const booking: StoredBooking = {
      _id: input.newId(),
      eventId: entry.eventId,
      sectionId: entry.sectionId,
      userId: entry.userId,
      qty: entry.qty,
      unitPrice,
      amount: roundMoney(unitPrice * entry.qty),
      status: 'held',
      createdAt: at,
      expiresAt: holdEnd(now, section.offerSeconds, input.offerDefaultMs),
      waitlistId: entry._id,
      eventOwner: section.owner
    }
    counters.remaining -= entry.qty
    counters.held += entry.qty
    offerInserts.push(booking)
    return booking
  }

  const books = ops.flatMap((op, i) => op.kind === 'book' ? [{ request: op.request, i }] : [])
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
  for (const [userId, seats] of allocation.userSeats) {
    userDelta.set(userId, (userDelta.get(userId) ?? 0) + seats)
    userSeats.set(userId, (userSeats.get(userId) ?? 0) + seats)
  }

  // Last, users join the list: only for seats the section cannot serve once all else is decided.
  let lastPosition = waitlist?.lastPosition ?? 0
  ops.forEach((op, i) => {
    if (op.kind === 'join') results[i] = join(op.userId, op.qty)
  })

  function join (userId: string, qty: number): OpResult {
    const active = [...entries.values(), ...entryInserts].find(e => e.userId === userId && isActive(e.status))
    if (active !== undefined) return { kind: 'joined', entry: publicEntry(active), created: false }
    if (refusal !== null) return refusal.kind === 'not_open' ? { kind: 'not_open', opensAt: isoText(refusal.opensAt) } : refusal
    if (qty <= allocation.remainingAfter) return { kind: 'seats_available', remaining: allocation.remainingAfter }
    if (section.maxPerUser !== null) {
      const allowed = Math.max(0, section.maxPerUser - (userSeats.get(userId) ?? 0))
      if (qty > allowed) return { kind: 'limit_exceeded', allowed }
    }
    const entry: StoredEntry = {
      _id: input.newEntryId(),
      eventId: input.ref.eventId,
      sectionId: input.ref.sectionId,
      userId,
      qty,
      position: ++lastPosition,
      status: 'waiting',
      createdAt: at,
      eventOwner: section.owner
    }
    entryInserts.push(entry)
    waitingDelta++
    return { kind: 'joined', entry: publicEntry(entry), created: true }
  }

  const inserts = offerInserts.length === 0 ? allocation.inserts : [...offerInserts, ...allocation.inserts]
  const holdEnds = inserts.flatMap(b => b.expiresAt === undefined ? [] : [new Date(b.expiresAt).getTime()])
  const firstNewEnd = holdEnds.length === 0 ? null : new Date(Math.min(...holdEnds))
  return {
    results,
    expired,
    returned: Math.max(0, counters.remaining),
    refusal,
    readMore,
    effects: {
      ...edits,
      capacity: counters.capacity,
      remaining: counters.remaining - allocation.taken,
      held: counters.held + allocation.heldTaken,
      sold: counters.sold + allocation.taken - allocation.heldTaken,
      inserts,
      changes: [...changes.values()],
      waiting: waitingDelta,
      waitlist: { inserts: entryInserts, changes: [...entryChanges.values()] },
      offers,
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
