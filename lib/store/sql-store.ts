/**
 * The SQL store: one adapter for PostgreSQL and the embedded PGlite, which run
 * the same SQL. The section row lock (SELECT ... FOR UPDATE) and the guarded
 * update (remaining >= taken - returned, CHECK remaining >= 0) keep seats from
 * being sold twice; the distributed lock only keeps transactions from queueing
 * on that row.
 */
import type { StoredBooking } from '../allocation.ts'
import type { Event, Page } from '../schemas.ts'
import type { SectionState, SectionTx } from '../section-batch.ts'
import type { StoreDriver } from './driver.ts'
import { MIGRATION_LOCK_ID, SCHEMA_SQL } from './sql-schema.ts'
import { isRetryableSqlError, isSqlUnavailable, type SqlClient, type SqlQueryable } from './sql-client.ts'
import { createStore, type Store, type StoreKind } from './store.ts'
import type { StoreObserver } from './store-errors.ts'

const BOOKING_COLUMNS = `id, event_id, section_id, user_id, qty, unit_price::float8 AS unit_price,
  amount::float8 AS amount, status, idempotency_key, request_hash, created_at, cancelled_at, event_owner`

interface BookingRow {
  id: string
  event_id: string
  section_id: string
  user_id: string
  qty: number
  unit_price: number
  amount: number
  status: 'confirmed' | 'cancelled'
  idempotency_key: string | null
  request_hash: string | null
  created_at: Date
  cancelled_at: Date | null
  event_owner: string
}

interface EventRow {
  id: string
  name: string
  created_at: Date
  section_id: string
  section_name: string
  price: number
  capacity: number
  remaining: number
}

function toBooking (row: BookingRow): StoredBooking {
  const booking: StoredBooking = {
    _id: row.id,
    eventId: row.event_id,
    sectionId: row.section_id,
    userId: row.user_id,
    qty: row.qty,
    unitPrice: row.unit_price,
    amount: row.amount,
    status: row.status,
    createdAt: new Date(row.created_at).toISOString(),
    eventOwner: row.event_owner
  }
  if (row.cancelled_at !== null) booking.cancelledAt = new Date(row.cancelled_at).toISOString()
  if (row.idempotency_key !== null) booking.idempotencyKey = row.idempotency_key
  if (row.request_hash !== null) booking.requestHash = row.request_hash
  return booking
}

/** Groups joined event/section rows into events, keeping the order of first appearance. */
function toEvents (rows: EventRow[]): Event[] {
  const events = new Map<string, Event>()
  for (const row of rows) {
    let event = events.get(row.id)
    if (event === undefined) {
      event = { _id: row.id, name: row.name, sections: [], createdAt: new Date(row.created_at).toISOString() }
      events.set(row.id, event)
    }
    event.sections.push({
      _id: row.section_id,
      name: row.section_name,
      price: row.price,
      capacity: row.capacity,
      remaining: row.remaining
    })
  }
  return [...events.values()]
}

/** `WHERE a = $1 AND b = $2` over the filters that are set. */
function whereClause (filters: Array<[string, string | undefined]>): { clause: string, params: string[] } {
  const params: string[] = []
  const where: string[] = []
  for (const [column, value] of filters) {
    if (value === undefined) continue
    params.push(value)
    where.push(`${column} = $${params.length}`)
  }
  return { clause: where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`, params }
}

const EVENT_SELECT = `SELECT e.id, e.name, e.created_at, s.id AS section_id, s.name AS section_name,
  s.price::float8 AS price, s.capacity, s.remaining
  FROM events e JOIN sections s ON s.event_id = e.id`

/**
 * A batch's whole write in one statement: the guarded section update, then the
 * inserts (and the cancellations) only if it matched. Batches without
 * cancellations, nearly all of them, use a statement that never reads the
 * bookings table: a plan cached while it was small stays cheap as it grows.
 */
const UPDATE_SECTION = `upd AS (
    UPDATE sections SET remaining = remaining - $2::int + $3::int, bookings = bookings + $4::int
      WHERE id = $1 AND remaining >= $2::int - $3::int RETURNING remaining
  )`
const INSERT_BOOKINGS = `ins AS (
    INSERT INTO bookings (id, event_id, section_id, user_id, qty, unit_price, amount, status,
                          idempotency_key, request_hash, created_at, event_owner)
    SELECT b.id, $5::text, $1, b.user_id, b.qty, $6::numeric, b.amount, 'confirmed', b.idempotency_key, b.request_hash, $7::timestamptz, $14::text
    FROM unnest($8::text[], $9::text[], $10::int[], $11::numeric[], $12::text[], $13::text[])
         AS b(id, user_id, qty, amount, idempotency_key, request_hash)
    WHERE EXISTS (SELECT 1 FROM upd)
    RETURNING 1
  )`
const CANCEL_BOOKINGS = `cancelled AS (
    UPDATE bookings SET status = 'cancelled', cancelled_at = $7::timestamptz
      WHERE id = ANY($15::text[]) AND status = 'confirmed' AND EXISTS (SELECT 1 FROM upd)
      RETURNING 1
  )`
const APPLY_SQL = `WITH ${UPDATE_SECTION}, ${INSERT_BOOKINGS}
  SELECT (SELECT remaining FROM upd) AS remaining, 0 AS cancelled`
const APPLY_WITH_CANCELS_SQL = `WITH ${UPDATE_SECTION}, ${INSERT_BOOKINGS}, ${CANCEL_BOOKINGS}
  SELECT (SELECT remaining FROM upd) AS remaining, (SELECT count(*)::int FROM cancelled) AS cancelled`

function sectionTx (tx: SqlQueryable, eventId: string, sectionId: string): SectionTx {
  let section: SectionState = { remaining: 0, price: 0, owner: '' }
  return {
    async lock () {
      const { rows } = await tx.query<SectionState>(
        `SELECT s.remaining, s.price::float8 AS price, e.owner_id AS owner
         FROM sections s JOIN events e ON e.id = s.event_id WHERE s.id = $1 AND s.event_id = $2 FOR UPDATE OF s`,
        [sectionId, eventId])
      if (rows.length === 0) return null
      section = rows[0]
      return section
    },
    async findKeys (keys) {
      const { rows } = await tx.query<BookingRow>(`SELECT ${BOOKING_COLUMNS} FROM bookings WHERE idempotency_key = ANY($1::text[])`, [keys])
      return rows.map(toBooking)
    },
    async lockBookings (ids) {
      // after the section row, as every writer does: the two locks are always taken in one order
      const { rows } = await tx.query<BookingRow>(
        `SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = ANY($1::text[]) AND section_id = $2 FOR UPDATE`, [ids, sectionId])
      return rows.map(toBooking)
    },
    async apply ({ taken, returned, inserts, cancelled, at }) {
      const params = [
        sectionId, taken, returned, inserts.length, eventId, section.price, at.toISOString(),
        inserts.map(b => b._id), inserts.map(b => b.userId), inserts.map(b => b.qty), inserts.map(b => b.amount),
        inserts.map(b => b.idempotencyKey ?? null), inserts.map(b => b.requestHash ?? null), section.owner]
      const { rows: [row] } = cancelled.length === 0
        ? await tx.query<{ remaining: number | null, cancelled: number }>(APPLY_SQL, params)
        : await tx.query<{ remaining: number | null, cancelled: number }>(APPLY_WITH_CANCELS_SQL, [...params, cancelled])
      // every cancelled booking was locked above: all of them change, or the section guard refused
      return row.remaining !== null && row.cancelled === cancelled.length ? row.remaining : null
    }
  }
}

function sqlDriver (client: SqlClient, kind: StoreKind): StoreDriver {
  async function eventsById (ids: string[]): Promise<Event[]> {
    if (ids.length === 0) return []
    const { rows } = await client.query<EventRow>(
      `${EVENT_SELECT} WHERE e.id = ANY($1::text[]) ORDER BY e.created_at DESC, e.id DESC, s.position`, [ids])
    return toEvents(rows)
  }

  return {
    kind,
    errors: { isRetryable: isRetryableSqlError, isUnavailable: isSqlUnavailable },

    async migrate () {
      await client.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID])
        for (const statement of SCHEMA_SQL.split(';').map(s => s.trim()).filter(Boolean)) {
          await tx.query(statement)
        }
      })
      // Fresh planner statistics (sampled, so bounded in time): PGlite runs no
      // autovacuum, and without them list filters pick whole-index scans.
      await client.query('ANALYZE events, sections, bookings')
    },

    async ping () {
      await client.query('SELECT 1')
    },

    async insertEvent (event, ownerId) {
      await client.transaction(async (tx) => {
        await tx.query('INSERT INTO events (id, name, created_at, owner_id) VALUES ($1, $2, $3, $4)', [event._id, event.name, event.createdAt, ownerId])
        await tx.query(
          `INSERT INTO sections (id, event_id, position, name, price, capacity, remaining)
           SELECT id, $1, position, name, price, capacity, capacity
           FROM unnest($2::text[], $3::int[], $4::text[], $5::numeric[], $6::int[]) AS s(id, position, name, price, capacity)`,
          [event._id, event.sections.map(s => s._id), event.sections.map((_, i) => i),
            event.sections.map(s => s.name), event.sections.map(s => s.price), event.sections.map(s => s.capacity)])
      })
    },

    async getEvent (id) {
      const [event] = await eventsById([id])
      return event ?? null
    },

    async listEvents ({ page, limit }): Promise<Page<Event>> {
      const [ids, count] = await Promise.all([
        client.query<{ id: string }>('SELECT id FROM events ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2',
          [limit, (page - 1) * limit]),
        client.query<{ total: number }>('SELECT count(*)::int AS total FROM events')
      ])
      const items = await eventsById(ids.rows.map(r => r.id))
      return { items, total: count.rows[0].total, page, limit }
    },

    async findByIdempotencyKey (key) {
      const { rows } = await client.query<BookingRow>(`SELECT ${BOOKING_COLUMNS} FROM bookings WHERE idempotency_key = $1`, [key])
      return rows.length === 0 ? null : toBooking(rows[0])
    },

    async getBooking (id) {
      const { rows } = await client.query<BookingRow>(`SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = $1`, [id])
      return rows.length === 0 ? null : toBooking(rows[0])
    },

    async listBookings (query) {
      const { clause, params } = whereClause([
        ['event_id', query.eventId], ['section_id', query.sectionId], ['user_id', query.userId], ['status', query.status],
        ['event_owner', query.eventOwner]
      ])
      // Filtered by event and/or section only: the sections' booking counters give the total.
      const counted = query.userId === undefined && query.status === undefined && query.eventOwner === undefined
        ? whereClause([['event_id', query.eventId], ['id', query.sectionId]])
        : undefined
      const [page, count] = await Promise.all([
        client.query<BookingRow>(
          `SELECT ${BOOKING_COLUMNS} FROM bookings ${clause} ORDER BY created_at DESC, id DESC
           LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
          [...params, query.limit, (query.page - 1) * query.limit]),
        counted === undefined
          ? client.query<{ total: number }>(`SELECT count(*)::int AS total FROM bookings ${clause}`, params)
          : client.query<{ total: number }>(`SELECT coalesce(sum(bookings), 0)::int AS total FROM sections ${counted.clause}`, counted.params)
      ])
      return { items: page.rows.map(toBooking), total: count.rows[0].total, page: query.page, limit: query.limit }
    },

    inSection: async (eventId, sectionId, fn) => await client.transaction(async (tx) => await fn(sectionTx(tx, eventId, sectionId)))
  }
}

/** A Store on PostgreSQL or PGlite; the client belongs to the caller. */
export function createSqlStore (client: SqlClient, options: { kind: StoreKind, observer?: StoreObserver }): Store {
  return createStore(sqlDriver(client, options.kind), options.observer)
}
