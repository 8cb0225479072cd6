/**
 * The SQL stores' outbox and webhooks. Records are numbered by a sequence,
 * but sequence numbers are taken in one order and committed in another: the
 * feed therefore reads in (xid, id) order, and only records whose writing
 * transaction (xid) is below the oldest one still running anywhere
 * (pg_snapshot_xmin of the reader's snapshot). Every record below that line
 * is committed or never will be, and every record written later has a
 * higher xid: a reader following its cursor passes nothing and sees nothing
 * twice. A transaction left open holds the feed back (its lag), never
 * reorders it.
 */
import {
  STATUS_LETTERS, bookingChangeType, feedChange, packBookings, unpackBooking, type ChangeRecord, type ChangeType
} from '../../domain/changes.ts'
import type { BookingStatus } from '../../api/schemas.ts'
import type { SectionWrite } from '../section-batch.ts'
import { BOOKING_COLUMNS, isoColumn, toBooking, type BookingRow } from './booking-rows.ts'
import { InvalidInputError } from '../../domain/errors.ts'
import type { WebhookEndpoint } from '../../domain/webhooks.ts'
import type { ChangeStore } from '../driver.ts'
import type { SqlClient, SqlQueryable } from './client.ts'

/**
 * The batch write's records, as one more part of its statement, from one JSON
 * parameter (one value to send whatever the batch's size): per section, a
 * row of its bookings' ids and statuses, and a section.changed row with the
 * section as `upd` wrote it, and a waitlist.offered row per offer with its
 * entry. Inserted only when `guard` holds, at the batch's moment `at`.
 */
export const batchRecordsCte = (param: string, at: string, guard: string): string => `rec AS (
    INSERT INTO changes (type, event_id, event_owner, occurred_at, data, section_id, bookings, statuses)
    SELECT r.type, r.event_id, r.owner, ${at},
      CASE WHEN r.type IS NULL THEN NULL WHEN r.data IS NOT NULL THEN r.data ELSE (SELECT json_build_object('_id', u.id, 'name', u.name, 'price', u.price::float8,
        'capacity', u.capacity, 'remaining', u.remaining, 'held', u.held, 'sold', u.sold, 'waiting', u.waiting) FROM upd u WHERE u.id = r.section) END,
      CASE WHEN r.type IS NULL THEN r.section END, r.bookings, r.statuses
    FROM ROWS FROM (json_to_recordset(${param}::json) AS (type text, event_id text, owner text, section text, bookings text, statuses text, data json))
      WITH ORDINALITY AS r(type, event_id, owner, section, bookings, statuses, data, n)
    WHERE ${guard}
    ORDER BY r.n
    RETURNING 1
  )`

/** The batch's records as the write's parameter: a section's bookings row, then its section.changed row, then its offers. */
export function recordsParam (writes: readonly SectionWrite[]): string {
  const rows: unknown[] = []
  for (const { eventId, sectionId, owner, record } of writes) {
    if (record.bookings.length > 0) {
      const { ids, statuses } = packBookings(sectionId, record.bookings)
      rows.push({ event_id: eventId, owner, section: sectionId, bookings: ids, statuses })
    }
    if (record.section) rows.push({ type: 'section.changed', event_id: eventId, owner, section: sectionId })
    for (const entry of record.offers) rows.push({ type: 'waitlist.offered', event_id: eventId, owner, section: sectionId, data: entry })
  }
  return JSON.stringify(rows)
}

/** Records written inside a transaction of their change (an event's). */
export async function insertChanges (tx: SqlQueryable, records: readonly ChangeRecord[]): Promise<void> {
  if (records.length === 0) return
  await tx.query(`INSERT INTO changes (type, event_id, event_owner, data)
    SELECT r.type, r.event_id, r.owner, r.data
    FROM ROWS FROM (json_to_recordset($1::json) AS (type text, event_id text, owner text, data json)) WITH ORDINALITY AS r(type, event_id, owner, data, n)
    ORDER BY r.n`, [JSON.stringify(records.map(r => ({ type: r.type, event_id: r.eventId, owner: r.owner, data: r.data })))])
}

/** A place in the feed: the writing transaction, the row's number, and within a bookings row how many of its bookings. */
interface FeedPlace { xid: string, id: string, n: number }
const CURSOR = /^(\d{1,20})\.(\d{1,19})\.(\d{1,9})$/
const START: FeedPlace = { xid: '0', id: '0', n: 0 }
const XID_MAX = 2n ** 64n - 1n
const ID_MAX = 2n ** 63n - 1n

function parseCursor (cursor: string | undefined, field: string): FeedPlace {
  if (cursor === undefined) return START
  const match = CURSOR.exec(cursor)
  // xid8 is unsigned 64-bit, the record's number a bigint: out of range is no cursor of ours (and no 500)
  if (match === null || BigInt(match[1]) > XID_MAX || BigInt(match[2]) > ID_MAX) throw new InvalidInputError(field, `${field} must be a cursor this service answered (nextCursor)`)
  return { xid: match[1], id: match[2], n: Number(match[3]) }
}
const cursorOf = (place: FeedPlace): string => `${place.xid}.${place.id}.${place.n}`

interface ChangeRow {
  id: string
  xid: string
  /** 0 on a row of its own; the booking's place (from 1) in a bookings row */
  n: number
  type: ChangeType | null
  occurred_at_iso: string
  event_id: string
  event_owner: string
  data: unknown
  /** a bookings row's: its section, its packed bookings */
  section_id: string | null
  bookings: string | null
  statuses: string | null
}

/** The change type of a bookings row's `n`th booking, in SQL (its status letter, either case). */
const BOOKING_TYPE_SQL = `CASE lower(substr(c.statuses, e.n, 1)) ${Object.entries(STATUS_LETTERS)
  .map(([status, letter]) => `WHEN '${letter}' THEN '${bookingChangeType(status as BookingStatus)}'`).join(' ')} END`

/** Below every transaction still running: only what is surely committed. */
const SETTLED = 'c.xid < pg_snapshot_xmin(pg_current_snapshot())'

interface WebhookRow {
  id: string
  owner_id: string
  url: string
  types: ChangeType[]
  secret: string
  created_at_iso: string
  cursor_xid: string
  cursor_id: string
  cursor_n: number
  failures: number
  failing_since_iso: string | null
  next_attempt_at_iso: string
  last_error: string | null
  delivered: string
  disabled: boolean
  disabled_reason: string | null
}

const WEBHOOK_COLUMNS = `id, owner_id, url, types, secret, ${isoColumn('created_at')}, cursor_xid::text AS cursor_xid, cursor_id::text AS cursor_id,
  cursor_n, failures, ${isoColumn('failing_since')}, ${isoColumn('next_attempt_at')}, last_error, delivered::text AS delivered, disabled, disabled_reason`

function toWebhook (row: WebhookRow): WebhookEndpoint {
  const endpoint: WebhookEndpoint = {
    _id: row.id,
    owner: row.owner_id,
    url: row.url,
    types: row.types,
    secret: row.secret,
    createdAt: row.created_at_iso,
    cursor: cursorOf({ xid: row.cursor_xid, id: row.cursor_id, n: row.cursor_n }),
    failures: row.failures,
    nextAttemptAt: row.next_attempt_at_iso,
    delivered: Number(row.delivered),
    disabled: row.disabled
  }
  if (row.failing_since_iso !== null) endpoint.failingSince = row.failing_since_iso
  if (row.last_error !== null) endpoint.lastError = row.last_error
  if (row.disabled_reason !== null) endpoint.disabledReason = row.disabled_reason
  return endpoint
}

/** A lease is had when nobody holds it, its holder's ran out, or it is the holder's own. */
const LEASE_FREE = '(lease_owner IS NULL OR lease_until < clock_timestamp() OR lease_owner = $1)'

export function sqlChangeStore (client: SqlClient): ChangeStore<AbortSignal> {
  return {
    async listChanges ({ after, limit, types, owner }, signal) {
      const from = parseCursor(after, 'after')
      const params: unknown[] = [from.xid, from.id, from.n, limit]
      // the index's range from the cursor's row on; within that row, past the bookings already read
      const where = ['(c.xid, c.id) >= ($1::xid8, $2::int8)', '(c.xid, c.id, coalesce(e.n, 0)) > ($1::xid8, $2::int8, $3::int8)', SETTLED]
      if (types !== undefined) where.push(`coalesce(c.type, ${BOOKING_TYPE_SQL}) = ANY($${params.push(types)}::text[])`)
      if (owner !== undefined) where.push(`c.event_owner = $${params.push(owner)}`)
      const { rows } = await client.query<ChangeRow>(
        `SELECT c.id::text AS id, c.xid::text AS xid, coalesce(e.n, 0)::int AS n, c.type, ${isoColumn('occurred_at', 'c')},
           c.event_id, c.event_owner, c.data, c.section_id, c.bookings, c.statuses
         FROM changes c LEFT JOIN LATERAL generate_series(1, length(c.statuses)) AS e(n) ON true
         WHERE ${where.join(' AND ')} ORDER BY c.xid, c.id, n LIMIT $4`, params, signal)
      // each booking as it is now, read once for the page, then as it was at its change
      const named = rows.map(r => r.statuses === null ? null : unpackBooking(r.section_id as string, { ids: r.bookings as string, statuses: r.statuses }, r.n))
      const ids = [...new Set(named.flatMap(b => b === null ? [] : [b.id]))]
      const { rows: found } = ids.length === 0
        ? { rows: [] }
        : await client.query<BookingRow>(`SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = ANY($1::text[])`, [ids], signal)
      const bookings = new Map(found.map(r => [r.id, toBooking(r)]))
      const items = rows.map((r, i) => {
        const entry = named[i]
        return feedChange({
          row: r.id,
          occurredAt: r.occurred_at_iso,
          eventId: r.event_id,
          owner: r.event_owner,
          cursor: cursorOf(r),
          type: r.type,
          data: r.data,
          booking: entry === null ? null : { n: r.n, status: entry.status, stored: bookings.get(entry.id) }
        })
      })
      return { items, nextCursor: items.at(-1)?.cursor ?? cursorOf(from) }
    },

    async createWebhook ({ _id, owner, url, types, secret }, signal) {
      // the feed's head: every transaction below the oldest one running has written all it will
      const { rows } = await client.query<WebhookRow>(
        `INSERT INTO webhooks (id, owner_id, url, types, secret, cursor_xid, cursor_id, cursor_n)
         VALUES ($1, $2, $3, $4, $5, pg_snapshot_xmin(pg_current_snapshot()), 0, 0) RETURNING ${WEBHOOK_COLUMNS}`,
        [_id, owner, url, types, secret], signal)
      return toWebhook(rows[0])
    },

    async listWebhooks (owner, signal) {
      const { rows } = owner === null
        ? await client.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id`, [], signal)
        : await client.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE owner_id = $1 ORDER BY created_at, id`, [owner], signal)
      return rows.map(toWebhook)
    },

    async getWebhook (id, signal) {
      const { rows } = await client.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1`, [id], signal)
      return rows.length === 0 ? null : toWebhook(rows[0])
    },

    async deleteWebhook (id, signal) {
      const { rows } = await client.query('DELETE FROM webhooks WHERE id = $1 RETURNING 1', [id], signal)
      return rows.length > 0
    },

    async claimWebhooks (holder, leaseMs, limit, signal) {
      const { rows } = await client.query<WebhookRow>(
        `UPDATE webhooks SET lease_owner = $1, lease_until = clock_timestamp() + $2 * interval '1 millisecond'
         WHERE id IN (SELECT id FROM webhooks WHERE NOT disabled AND next_attempt_at <= clock_timestamp() AND ${LEASE_FREE}
                      ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING ${WEBHOOK_COLUMNS}`, [holder, leaseMs, limit], signal)
      return rows.map(toWebhook)
    },

    async saveWebhook (id, holder, progress, leaseMs, signal) {
      const place = parseCursor(progress.cursor, 'cursor')
      const { rows } = await client.query(
        `UPDATE webhooks SET cursor_xid = $3::xid8, cursor_id = $4::int8, cursor_n = $13, failures = $5, failing_since = $6, next_attempt_at = $7,
           last_error = $8, disabled = $9, disabled_reason = $10, delivered = delivered + $11,
           lease_until = clock_timestamp() + $12 * interval '1 millisecond'
         WHERE id = $1 AND lease_owner = $2 AND lease_until >= clock_timestamp() RETURNING 1`,
        [id, holder, place.xid, place.id, progress.failures, progress.failingSince ?? null, progress.nextAttemptAt,
          progress.lastError ?? null, progress.disabled, progress.disabledReason ?? null, progress.delivered, leaseMs, place.n], signal)
      return rows.length > 0
    },

    async releaseWebhooks (holder, signal) {
      await client.query('UPDATE webhooks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [holder], signal)
    },

    async pruneChanges (before, limit, signal) {
      // from the feed's front only, a small batch by its index: a delete never holds many rows (nor any
      // a write is making), and a feed with nothing old enough costs `limit` index entries, not a scan
      const { rows } = await client.query(
        `DELETE FROM changes WHERE ctid = ANY(ARRAY(
           SELECT c.ctid FROM (SELECT ctid, xid, id, occurred_at FROM changes ORDER BY xid, id LIMIT $2) c
           WHERE c.occurred_at < $1 AND ${SETTLED}
             AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE NOT w.disabled AND (c.xid, c.id) >= (w.cursor_xid, w.cursor_id))))
         RETURNING 1`, [before, limit], signal)
      return rows.length
    }
  }
}
