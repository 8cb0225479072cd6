/**
 * A batch of operations on one section, decided in one transaction: written
 * once here, run by every store adapter through the few primitives of
 * `SectionTx`. The batch reads what it needs under the section's lock,
 * lib/section-decision.ts decides every operation at one moment (the
 * database's clock), and everything is applied in one guarded write.
 */
import type { BookingRequest, Decision, StoredBooking } from './allocation.ts'
import { RetryableConflict } from './errors.ts'
import { newId } from './ids.ts'
import type { Booking, BookingStatus } from './schemas.ts'
import { decideSection, earliest } from './section-decision.ts'

export type SectionOp =
  | { kind: 'book', request: BookingRequest }
  /** a held booking becomes confirmed, with the payment's reference */
  | { kind: 'confirm', bookingId: string, paymentRef?: string }
  /** a held booking is released, a confirmed one cancelled: its seats go back */
  | { kind: 'cancel', bookingId: string }
  /** nothing but what every batch does first: expire the section's due holds (the sweeper sends it) */
  | { kind: 'expire' }

export type OpResult =
  | Decision
  /** `from`: the status it was cancelled from; changed false when there was nothing to give back */
  | { kind: 'cancelled', booking: Booking, changed: boolean, from: BookingStatus }
  | { kind: 'hold_confirmed', booking: Booking, changed: boolean }
  | { kind: 'hold_expired', booking: Booking }
  | { kind: 'invalid_state', booking: Booking }
  | { kind: 'swept' }
  | { kind: 'not_found' }

export interface SectionState {
  remaining: number
  price: number
  /** the event's organizer, stamped on its bookings for access checks ('' when none) */
  owner: string
  /** the event's hold length in seconds; null: HOLD_TTL_MS */
  holdSeconds: number | null
  /** the event's cap of seats per user; null: none */
  maxPerUser: number | null
  /** no later than the earliest expiresAt of the section's holds; null when it has none */
  nextExpiry: Date | null
  /** the database's clock, read with the lock: the one moment the batch is decided at */
  now: Date
}

/**
 * A stored booking moving from one status to another, applied only if it
 * still has `from`: one per booking and batch (a hold confirmed and then
 * cancelled in one batch is one change from held to cancelled that confirms).
 */
export interface BookingChange {
  id: string
  from: BookingStatus
  to: BookingStatus
  /** the batch confirms the hold (confirmedAt, paymentRef), guarded by its expiresAt being after the batch's moment */
  confirms: boolean
  paymentRef?: string
}

/** What one batch changes, applied in one guarded write. */
export interface SectionEffects {
  /** changes of the section's counters: remaining + held + sold stays capacity */
  remaining: number
  held: number
  sold: number
  inserts: StoredBooking[]
  changes: BookingChange[]
  /** seats each user gains (or gives back) in the event, in userId order: the lock order of their rows */
  userSeats: Array<{ userId: string, delta: number }>
  /** the cap the users' new totals are guarded by; null when the event has none */
  maxPerUser: number | null
  /** the section's next expiry: replaced when `replace` (its due holds were read), else the earlier of the two */
  nextExpiry: { replace: boolean, at: Date | null }
  /** the batch's moment: createdAt of the inserts, confirmedAt/cancelledAt of the changes */
  at: Date
}

/** A hold the batch found past its expiresAt: expired, its seats back on sale. */
export interface ExpiredHold {
  qty: number
  expiresAt: string
}

export interface SectionBatchResult {
  /** one result per operation, in order */
  results: OpResult[]
  /** seats left once the batch committed; null when the event has no such section */
  remaining: number | null
  expired: ExpiredHold[]
  /** seats given back by the batch's expiries, releases and cancellations */
  returned: number
  /** no later than the earliest expiresAt of the section's holds after the batch; null when it has none */
  nextExpiry: Date | null
  /** the batch's moment, on the database's clock */
  at: Date
}

/** The primitives a store adapter supplies, all inside one transaction on one section. */
export interface SectionTx {
  /**
   * Reads the section (and its event's rules) and keeps other writers off it
   * until the transaction ends, and reads the section's bookings with these
   * ids (every writer of a booking takes its section first); null when the
   * event has no such section. The bookings may be read as they were just
   * before the section lock was had: each change is guarded by its `from`, so
   * a stale read costs a rerun, never a wrong write.
   */
  lock: (bookingIds: string[]) => Promise<{ section: SectionState, bookings: StoredBooking[] } | null>
  /** The section's held bookings whose expiresAt <= now; and the earliest expiresAt after now of its other holds. */
  dueHolds: (now: Date) => Promise<{ due: StoredBooking[], next: Date | null }>
  /** Bookings stored under these idempotency keys. */
  findKeys: (keys: string[]) => Promise<StoredBooking[]>
  /** Seats each of these users holds plus has confirmed in the event, their rows locked in userId order. */
  lockUserSeats: (userIds: string[]) => Promise<Map<string, number>>
  /**
   * Applies the effects at once, guarded by the database: refused (null) when
   * remaining would fall below zero, a change finds its booking no longer in
   * `from` (or a hold to confirm past its expiresAt), or a user's seats would
   * pass maxPerUser. Returns remaining after.
   */
  apply: (effects: SectionEffects) => Promise<number | null>
}

const NOT_FOUND: OpResult = { kind: 'not_found' }

/** Runs one batch inside the adapter's transaction. Throws RetryableConflict if the guard refused. */
export async function runSectionBatch (tx: SectionTx, ops: readonly SectionOp[]): Promise<SectionBatchResult> {
  const ids = [...new Set(ops.flatMap(op => op.kind === 'cancel' || op.kind === 'confirm' ? [op.bookingId] : []))]
  const locked = await tx.lock(ids)
  if (locked === null) return { results: ops.map(() => NOT_FOUND), remaining: null, expired: [], returned: 0, nextExpiry: null, at: new Date() }
  const { section, bookings: named } = locked
  const { now } = section
  // one after the other, in the lock order every writer keeps: section, its bookings, then users
  // (and a MongoDB session runs one operation at a time)
  const dueRead = section.nextExpiry !== null && section.nextExpiry <= now
  const { due, next } = dueRead ? await tx.dueHolds(now) : { due: [], next: null }
  const keys = [...new Set(ops.flatMap(op => op.kind === 'book' && op.request.idempotencyKey !== undefined ? [op.request.idempotencyKey] : []))]
  const existing = keys.length === 0 ? [] : await tx.findKeys(keys)
  let userSeats = new Map<string, number>()
  if (section.maxPerUser !== null) {
    const users = new Set([...due, ...named].map(b => b.userId))
    for (const op of ops) if (op.kind === 'book') users.add(op.request.userId)
    if (users.size > 0) userSeats = await tx.lockUserSeats([...users].sort())
  }
  const { results, effects, expired, returned } = decideSection({
    section,
    ops,
    existing: new Map(existing.map(b => [b.idempotencyKey as string, b])),
    bookings: new Map([...due, ...named].map(b => [b._id, b])),
    userSeats,
    nextExpiry: dueRead ? { replace: true, at: next } : { replace: false, at: null },
    newId
  })
  const changed = effects.inserts.length > 0 || effects.changes.length > 0 || effects.nextExpiry.replace
  const nextExpiry = effects.nextExpiry.replace ? effects.nextExpiry.at : earliest(section.nextExpiry, effects.nextExpiry.at)
  if (!changed) return { results, remaining: section.remaining, expired, returned, nextExpiry, at: now }
  const remaining = await tx.apply(effects)
  // The section lock makes this unreachable; if it ever happens, decide again on fresh data.
  if (remaining === null) throw new RetryableConflict('the guarded write refused the batch')
  return { results, remaining, expired, returned, nextExpiry, at: now }
}
