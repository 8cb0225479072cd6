/**
 * A booking as the SQL stores read it: its columns (moments as the API
 * writes them, made by the database) and the row they come back as.
 */
import type { StoredBooking } from '../../domain/allocation.ts'
import type { BookingStatus } from '../../api/schemas.ts'

/**
 * A moment as the API writes it (toISOString's text, milliseconds, UTC), made by the database: no
 * Date to parse and print again. Named `<column>_iso`; `table` qualifies the column in a join.
 */
export const isoColumn = (column: string, table?: string): string =>
  `to_char(${table === undefined ? '' : `${table}.`}${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ${column}_iso`

export const BOOKING_COLUMNS = `id, event_id, section_id, user_id, qty, unit_price::float8 AS unit_price,
  amount::float8 AS amount, status, idempotency_key, request_hash, ${isoColumn('created_at')}, ${isoColumn('cancelled_at')}, event_owner,
  ${isoColumn('expires_at')}, ${isoColumn('confirmed_at')}, payment_ref, waitlist_id`

export interface BookingRow {
  id: string
  event_id: string
  section_id: string
  user_id: string
  qty: number
  unit_price: number
  amount: number
  status: BookingStatus
  idempotency_key: string | null
  request_hash: string | null
  created_at_iso: string
  cancelled_at_iso: string | null
  event_owner: string
  expires_at_iso: string | null
  confirmed_at_iso: string | null
  payment_ref: string | null
  waitlist_id: string | null
}

export function toBooking (row: BookingRow): StoredBooking {
  const booking: StoredBooking = {
    _id: row.id,
    eventId: row.event_id,
    sectionId: row.section_id,
    userId: row.user_id,
    qty: row.qty,
    unitPrice: row.unit_price,
    amount: row.amount,
    status: row.status,
    createdAt: row.created_at_iso,
    eventOwner: row.event_owner
  }
  if (row.expires_at_iso !== null) booking.expiresAt = row.expires_at_iso
  if (row.confirmed_at_iso !== null) booking.confirmedAt = row.confirmed_at_iso
  if (row.payment_ref !== null) booking.paymentRef = row.payment_ref
  if (row.cancelled_at_iso !== null) booking.cancelledAt = row.cancelled_at_iso
  if (row.idempotency_key !== null) booking.idempotencyKey = row.idempotency_key
  if (row.request_hash !== null) booking.requestHash = row.request_hash
  if (row.waitlist_id !== null) booking.waitlistId = row.waitlist_id
  return booking
}
