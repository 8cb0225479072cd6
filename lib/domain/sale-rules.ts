/**
 * An event's lifecycle and sale window: which moves its status may make,
 * whether a booking decided at a moment (the database's clock, in its
 * section's batch) is refused, what a buyer is told of the sale, and which
 * dates are consistent. Pure: every store and the routes share it.
 */
import type { Event, EventStatus, SaleState } from '../api/schemas.ts'
import { InvalidInputError } from './errors.ts'

/** An event as stored: the API's fields but the derived saleState, and its organizer's sub ('' when none). */
export type StoredEvent = Omit<Event, 'saleState'> & { owner: string }

/** The fields of an event a change may set; null clears one. */
export interface EventFields {
  name?: string
  description?: string | null
  venue?: string | null
  startsAt?: string | null
  endsAt?: string | null
  salesStart?: string | null
  salesEnd?: string | null
  holdSeconds?: number | null
  maxPerUser?: number | null
  waitlistOfferSeconds?: number | null
  status?: EventStatus
}

/** What a batch needs of its event to decide bookings: its status and window. */
export interface SaleWindow {
  status: EventStatus
  salesStart: Date | null
  salesEnd: Date | null
}

/** Why a booking or a hold is refused at a moment; null: the sale takes it. */
export type SaleRefusal =
  /** a draft takes no booking: to buyers it does not exist */
  | { kind: 'draft' }
  | { kind: 'not_open', opensAt: Date }
  | { kind: 'closed' }

export function saleRefusal (window: SaleWindow, now: Date): SaleRefusal | null {
  if (window.status === 'draft') return { kind: 'draft' }
  if (window.status !== 'published') return { kind: 'closed' }
  if (window.salesStart !== null && now < window.salesStart) return { kind: 'not_open', opensAt: window.salesStart }
  if (window.salesEnd !== null && now >= window.salesEnd) return { kind: 'closed' }
  return null
}

/** The sale as a buyer is told it at `now`. */
export function saleStateAt (event: Omit<Event, 'saleState'>, now: number): SaleState {
  if (event.status !== 'published') return event.status
  if (event.salesStart !== undefined && now < Date.parse(event.salesStart)) return 'not_open'
  if (event.salesEnd !== undefined && now >= Date.parse(event.salesEnd)) return 'ended'
  return event.sections.every(s => s.remaining === 0) ? 'sold_out' : 'on_sale'
}

/** An event as answered: its owner left out, its saleState as of `now` (epoch ms). */
export function publicEvent (event: StoredEvent, now: number): Event {
  const { owner: _owner, ...rest } = event
  return { ...rest, saleState: saleStateAt(rest, now) }
}

/** The actions that move an event's status, and the statuses each may start from. */
export const STATUS_MOVES = {
  publish: { to: 'published', from: ['draft', 'closed'] },
  close: { to: 'closed', from: ['draft', 'published'] },
  cancel: { to: 'cancelled', from: ['draft', 'published', 'closed'] }
} as const satisfies Record<string, { to: EventStatus, from: readonly EventStatus[] }>
export type StatusMove = keyof typeof STATUS_MOVES

/**
 * The status an action leads to from `from`: the same status again is no
 * change (the action is idempotent); null when the move is not allowed.
 */
export function statusAfter (from: EventStatus, move: StatusMove): EventStatus | null {
  const { to, from: starts } = STATUS_MOVES[move]
  if (from === to) return to
  return (starts as readonly EventStatus[]).includes(from) ? to : null
}

/** Each later moment must come after its earlier one: the field of the first pair that does not, with why. */
const ORDERED: ReadonlyArray<[earlier: 'startsAt' | 'salesStart', later: 'endsAt' | 'salesEnd']> = [
  ['startsAt', 'endsAt'],
  ['salesStart', 'salesEnd']
]

/** Throws InvalidInputError naming the field when an event's dates (as they would be stored) are out of order. */
export function assertDatesInOrder (dates: Pick<EventFields, 'startsAt' | 'endsAt' | 'salesStart' | 'salesEnd'>): void {
  for (const [earlier, later] of ORDERED) {
    const from = dates[earlier]
    const to = dates[later]
    if (from == null || to == null) continue
    if (Date.parse(to) <= Date.parse(from)) throw new InvalidInputError(later, `${later} must be after ${earlier} (${from})`)
  }
}

/** The event with the change's fields set (null clears one): as it would be stored. */
export function withFields (event: StoredEvent, fields: EventFields): StoredEvent {
  const next: Record<string, unknown> = { ...event }
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue
    if (value === null) delete next[key]
    else next[key] = value
  }
  return next as StoredEvent
}

const MOMENTS = ['startsAt', 'endsAt', 'salesStart', 'salesEnd'] as const

/** The fields with each moment in the API's one form (UTC, milliseconds), as every store answers them. */
export function canonicalFields<F extends EventFields> (fields: F): F {
  const out: F = { ...fields }
  for (const key of MOMENTS) {
    const value = out[key]
    if (typeof value === 'string') out[key] = new Date(value).toISOString()
  }
  return out
}
