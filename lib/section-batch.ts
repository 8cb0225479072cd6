/**
 * A batch of operations on one section, decided in one transaction: written
 * once here, run by every store adapter through the few primitives of
 * `SectionTx`. Seats given back are counted first, then bookings are
 * allocated first come first served (lib/allocation.ts), then everything is
 * applied in one guarded write.
 */
import { allocate, publicBooking, type BookingRequest, type Decision, type StoredBooking } from './allocation.ts'
import { RetryableConflict } from './errors.ts'
import { newId } from './ids.ts'
import type { Booking } from './schemas.ts'

export type SectionOp =
  | { kind: 'book', request: BookingRequest }
  | { kind: 'cancel', bookingId: string }

export type OpResult =
  | Decision
  | { kind: 'cancelled', booking: Booking, changed: boolean }
  | { kind: 'not_found' }

export interface SectionState {
  remaining: number
  price: number
  /** the event's organizer, stamped on its bookings for access checks ('' when none) */
  owner: string
}

/** What one batch changes, applied in one guarded write. */
export interface SectionEffects {
  /** seats taken by new bookings */
  taken: number
  /** seats given back by cancellations */
  returned: number
  inserts: StoredBooking[]
  /** ids of confirmed bookings that become cancelled */
  cancelled: string[]
  /** the batch's time: createdAt of the inserts, cancelledAt of the cancellations */
  at: Date
}

export interface SectionBatchResult {
  /** one result per operation, in order */
  results: OpResult[]
  /** seats left once the batch committed; null when the event has no such section */
  remaining: number | null
}

/** The primitives a store adapter supplies, all inside one transaction on one section. */
export interface SectionTx {
  /** Reads the section and keeps other writers off it until the transaction ends; null when the event has no such section. */
  lock: () => Promise<SectionState | null>
  /** Bookings stored under these idempotency keys. */
  findKeys: (keys: string[]) => Promise<StoredBooking[]>
  /** Bookings of this section with these ids, kept from other writers until the transaction ends. */
  lockBookings: (ids: string[]) => Promise<StoredBooking[]>
  /**
   * Applies the effects at once, guarded by the database: refused (null) when
   * `remaining - taken + returned` would fall below zero. Returns remaining after.
   */
  apply: (effects: SectionEffects) => Promise<number | null>
}

const NOT_FOUND: OpResult = { kind: 'not_found' }

/** Decides every operation of the batch; pure. */
function decideSection (input: {
  section: SectionState
  ops: readonly SectionOp[]
  /** bookings already stored under the batch's idempotency keys */
  existing: ReadonlyMap<string, StoredBooking>
  /** the bookings the batch's cancellations name */
  bookings: ReadonlyMap<string, StoredBooking>
  now: Date
  newId: () => string
}): { results: OpResult[], effects: SectionEffects } {
  const { ops, existing, bookings, now } = input
  const results: OpResult[] = new Array(ops.length)
  const cancelled: string[] = []
  let returned = 0
  // Seats given back first: the whole batch is decided at one moment, and they may serve its bookings.
  ops.forEach((op, i) => {
    if (op.kind !== 'cancel') return
    const booking = bookings.get(op.bookingId)
    if (booking === undefined) {
      results[i] = NOT_FOUND
      return
    }
    const stored = publicBooking(booking)
    if (booking.status === 'cancelled' || cancelled.includes(booking._id)) {
      const cancelledAt = booking.cancelledAt ?? now.toISOString()
      results[i] = { kind: 'cancelled', booking: { ...stored, status: 'cancelled', cancelledAt }, changed: false }
      return
    }
    cancelled.push(booking._id)
    returned += booking.qty
    results[i] = { kind: 'cancelled', booking: { ...stored, status: 'cancelled', cancelledAt: now.toISOString() }, changed: true }
  })

  const books = ops.flatMap((op, i) => op.kind === 'book' ? [{ request: op.request, i }] : [])
  const allocation = allocate({
    remaining: input.section.remaining + returned,
    unitPrice: input.section.price,
    requests: books.map(b => b.request),
    existing,
    now,
    newId: input.newId
  })
  allocation.decisions.forEach((decision, n) => { results[books[n].i] = decision })
  const inserts = allocation.inserts.map(b => ({ ...b, eventOwner: input.section.owner }))
  return { results, effects: { taken: allocation.taken, returned, inserts, cancelled, at: now } }
}

/** Runs one batch inside the adapter's transaction. Throws RetryableConflict if the guard refused. */
export async function runSectionBatch (tx: SectionTx, ops: readonly SectionOp[]): Promise<SectionBatchResult> {
  const section = await tx.lock()
  if (section === null) return { results: ops.map(() => NOT_FOUND), remaining: null }
  const keys = [...new Set(ops.flatMap(op => op.kind === 'book' && op.request.idempotencyKey !== undefined ? [op.request.idempotencyKey] : []))]
  const ids = [...new Set(ops.flatMap(op => op.kind === 'cancel' ? [op.bookingId] : []))]
  // one after the other: a MongoDB session runs one operation at a time
  const existing = keys.length === 0 ? [] : await tx.findKeys(keys)
  const booked = ids.length === 0 ? [] : await tx.lockBookings(ids)
  const { results, effects } = decideSection({
    section,
    ops,
    existing: new Map(existing.map(b => [b.idempotencyKey as string, b])),
    bookings: new Map(booked.map(b => [b._id, b])),
    now: new Date(),
    newId
  })
  if (effects.taken === 0 && effects.returned === 0) return { results, remaining: section.remaining }
  const remaining = await tx.apply(effects)
  // The section lock makes this unreachable; if it ever happens, decide again on fresh data.
  if (remaining === null) throw new RetryableConflict('remaining fell below the batch total')
  return { results, remaining }
}
