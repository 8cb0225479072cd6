/**
 * Deciding a batch of booking requests for one section: pure, shared by every
 * store adapter. The adapter supplies what it read inside its transaction
 * (remaining seats, unit price, bookings already stored under the batch's
 * idempotency keys); this decides each request first come first served.
 */
import { createHash } from 'node:crypto'
import { isoText } from '../support/iso-text.ts'
import type { Booking } from '../api/schemas.ts'
import type { SaleRefusal } from './sale-rules.ts'

export interface BookingRequest {
  eventId: string
  sectionId: string
  userId: string
  qty: number
  idempotencyKey?: string
  /** present when the request is a hold: its length unless the event sets holdSeconds (HOLD_TTL_MS) */
  holdDefaultMs?: number
}

/** A booking as stored: the API fields plus what idempotency and access need. */
export interface StoredBooking extends Booking {
  /** the client's Idempotency-Key, scoped to the principal that sent it */
  idempotencyKey?: string
  requestHash?: string
  /** `sub` of the organizer who owns the booking's event ('' when none) */
  eventOwner?: string
}

export type Decision =
  | { kind: 'confirmed', booking: Booking }
  | { kind: 'held', booking: Booking }
  | { kind: 'replayed', booking: Booking }
  | { kind: 'sold_out', remaining: number }
  | { kind: 'limit_exceeded', allowed: number }
  | { kind: 'key_reused' }
  /** the event's sale does not take bookings at the batch's moment (lib/domain/sale-rules.ts) */
  | { kind: 'not_open', opensAt: string }
  | { kind: 'closed' }
  | { kind: 'draft' }

export interface Allocation {
  decisions: Decision[]
  /** bookings to insert, in request order */
  inserts: StoredBooking[]
  /** seats taken by this batch (held ones included): the conditional update moves `remaining` down by this */
  taken: number
  /** of `taken`, the seats of holds */
  heldTaken: number
  remainingAfter: number
  /** seats each user took in this batch (only when the event caps them) */
  userSeats: Map<string, number>
}

/** The event's rules a batch is decided by. */
export interface SaleRules {
  /** the event's hold length, in seconds; null: the request's default */
  holdSeconds: number | null
  /** most seats one user may hold plus have confirmed in the event; null: no cap */
  maxPerUser: number | null
  /** the event's organizer ('' when none): stamped on every booking stored */
  owner: string
  /** why the sale takes no new booking at the batch's moment; null: it does */
  refusal: SaleRefusal | null
}

/** Fingerprint of a request body: a reused key must come with the same one. */
export function requestHash (r: BookingRequest): string {
  // a hold is another request than a booking of the same seats; plain bookings keep their old fingerprints
  const hold = r.holdDefaultMs === undefined ? '' : '\nhold'
  return createHash('sha256')
    .update(`${r.eventId}\n${r.sectionId}\n${r.userId}\n${r.qty}${hold}`)
    .digest('base64url')
}

/** A hold's end: `seconds` (the event's) after `now`, else `defaultMs`. */
export function holdEnd (now: Date, seconds: number | null, defaultMs: number): string {
  return new Date(now.getTime() + (seconds === null ? defaultMs : seconds * 1000)).toISOString()
}

export function roundMoney (n: number): number {
  return Math.round(n * 100) / 100
}

/** Strips storage-only fields so a stored booking can be answered. */
export function publicBooking (b: StoredBooking): Booking {
  const { idempotencyKey: _k, requestHash: _h, eventOwner: _o, ...booking } = b
  return booking
}

/** What an already-stored booking under `key` means for a request carrying that key. */
export function replayDecision (stored: StoredBooking, request: BookingRequest): Decision {
  return stored.requestHash === requestHash(request)
    ? { kind: 'replayed', booking: publicBooking(stored) }
    : { kind: 'key_reused' }
}

export function allocate (input: {
  remaining: number
  unitPrice: number
  requests: readonly BookingRequest[]
  /** bookings already stored under the idempotency keys of `requests` */
  existing: ReadonlyMap<string, StoredBooking>
  rules: SaleRules
  /** seats each user of `requests` holds plus has confirmed in the event (read only when maxPerUser is set) */
  userSeats: ReadonlyMap<string, number>
  now: Date
  newId: () => string
}): Allocation {
  const { unitPrice, requests, existing, now, newId, rules: { holdSeconds, maxPerUser, owner, refusal } } = input
  // a retry of a booking made while the sale took them is still answered with it (replayed below)
  const refused: Decision | null = refusal === null
    ? null
    : refusal.kind === 'not_open' ? { kind: 'not_open', opensAt: isoText(refusal.opensAt) } : refusal
  let remaining = input.remaining
  let heldTaken = 0
  const createdAt = isoText(now)
  const decisions: Decision[] = []
  const inserts: StoredBooking[] = []
  const userSeats = new Map<string, number>()
  // keys confirmed earlier in this same batch count as stored
  const byKey = new Map(existing)

  for (const request of requests) {
    const key = request.idempotencyKey
    const stored = key === undefined ? undefined : byKey.get(key)
    if (stored !== undefined) {
      decisions.push(replayDecision(stored, request))
      continue
    }
    if (refused !== null) {
      decisions.push(refused)
      continue
    }
    const takenInBatch = userSeats.get(request.userId) ?? 0
    if (maxPerUser !== null) {
      const allowed = Math.max(0, maxPerUser - (input.userSeats.get(request.userId) ?? 0) - takenInBatch)
      if (request.qty > allowed) {
        decisions.push({ kind: 'limit_exceeded', allowed })
        continue
      }
    }
    if (request.qty > remaining) {
      decisions.push({ kind: 'sold_out', remaining })
      continue
    }
    remaining -= request.qty
    if (maxPerUser !== null) userSeats.set(request.userId, takenInBatch + request.qty)
    const id = newId()
    const amount = roundMoney(unitPrice * request.qty)
    const { holdDefaultMs } = request
    const expiresAt = holdDefaultMs === undefined ? undefined : holdEnd(now, holdSeconds, holdDefaultMs)
    const status = expiresAt === undefined ? 'confirmed' : 'held'
    if (expiresAt !== undefined) heldTaken += request.qty
    const { eventId, sectionId, userId, qty } = request
    // the answer and the stored row, each written out (copying one into the other cost more than both)
    const booking: Booking = { _id: id, eventId, sectionId, userId, qty, unitPrice, amount, status, createdAt }
    const row: StoredBooking = { _id: id, eventId, sectionId, userId, qty, unitPrice, amount, status, createdAt, eventOwner: owner }
    if (expiresAt !== undefined) booking.expiresAt = row.expiresAt = expiresAt
    if (key !== undefined) {
      row.idempotencyKey = key
      row.requestHash = requestHash(request)
      byKey.set(key, row)
    }
    inserts.push(row)
    decisions.push({ kind: status, booking })
  }
  return { decisions, inserts, taken: input.remaining - remaining, heldTaken, remainingAfter: remaining, userSeats }
}
