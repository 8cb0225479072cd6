/**
 * The SQL store: one implementation for PostgreSQL and the embedded PGlite,
 * which run the same SQL. The section row lock (SELECT ... FOR UPDATE) and the
 * conditional update (remaining >= taken) are the guard against overselling;
 * the distributed lock only keeps transactions from queueing on that row.
 */
import { allocate, publicBooking, type BookingRequest, type StoredBooking } from '../allocation.ts'
import { RetryableConflict } from '../errors.ts'
import { newId } from '../ids.ts'
import type { Booking, BookingListQuery, Event, EventInput, Page, PageQuery } from '../schemas.ts'
import { MIGRATION_LOCK_ID, SCHEMA_SQL } from './sql-schema.ts'
import { isRetryableSqlError, isSqlUnavailable, type SqlClient, type SqlQueryable } from './sql-client.ts'
import { newEvent, type BatchResult, type CancelResult, type Store, type StoreKind, type StoreObserver } from './store.ts'
import { storeRunner } from './store-errors.ts'

const BOOKING_COLUMNS = `id, event_id, section_id, user_id, qty, unit_price::float8 AS unit_price,
  amount::float8 AS amount, status, idempotency_key, request_hash, created_at, cancelled_at`

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
    createdAt: new Date(row.created_at).toISOString()
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

export function createSqlStore (client: SqlClient, options: { kind: StoreKind, observer?: StoreObserver }): Store {
  const { kind, observer } = options

  const run = storeRunner({ isRetryable: isRetryableSqlError, isUnavailable: isSqlUnavailable }, observer)
  const transaction = async <T>(operation: string, fn: (tx: SqlQueryable) => Promise<T>): Promise<T> =>
    await run.transaction(operation, async () => await client.transaction(fn))
  const read = run.read

  async function eventsById (db: SqlQueryable, ids: string[]): Promise<Event[]> {
    if (ids.length === 0) return []
    const { rows } = await db.query<EventRow>(
      `${EVENT_SELECT} WHERE e.id = ANY($1::text[]) ORDER BY e.created_at DESC, e.id DESC, s.position`, [ids])
    return toEvents(rows)
  }

  return {
    kind,

    async init () {
      await transaction('migrate', async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID])
        for (const statement of SCHEMA_SQL.split(';').map(s => s.trim()).filter(Boolean)) {
          await tx.query(statement)
        }
      })
      // Fresh planner statistics (sampled, so bounded in time): PGlite runs no
      // autovacuum, and without them list filters pick whole-index scans.
      await read(() => client.query('ANALYZE events, sections, bookings'))
    },

    close: () => client.close(),

    async ping () {
      await read(() => client.query('SELECT 1'))
    },

    async createEvent (input: EventInput) {
      const event = newEvent(input)
      await transaction('create_event', async (tx) => {
        await tx.query('INSERT INTO events (id, name, created_at) VALUES ($1, $2, $3)', [event._id, event.name, event.createdAt])
        await tx.query(
          `INSERT INTO sections (id, event_id, position, name, price, capacity, remaining)
           SELECT id, $1, position, name, price, capacity, capacity
           FROM unnest($2::text[], $3::int[], $4::text[], $5::numeric[], $6::int[]) AS s(id, position, name, price, capacity)`,
          [event._id, event.sections.map(s => s._id), event.sections.map((_, i) => i),
            event.sections.map(s => s.name), event.sections.map(s => s.price), event.sections.map(s => s.capacity)])
      })
      return event
    },

    async getEvent (id) {
      const [event] = await read(() => eventsById(client, [id]))
      return event ?? null
    },

    async listEvents ({ page, limit }: PageQuery): Promise<Page<Event>> {
      return await read(async () => {
        const [ids, count] = await Promise.all([
          client.query<{ id: string }>('SELECT id FROM events ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2',
            [limit, (page - 1) * limit]),
          client.query<{ total: number }>('SELECT count(*)::int AS total FROM events')
        ])
        const items = await eventsById(client, ids.rows.map(r => r.id))
        return { items, total: count.rows[0].total, page, limit }
      })
    },

    async bookBatch (eventId, sectionId, requests: readonly BookingRequest[]): Promise<BatchResult> {
      return await transaction('book', async (tx) => {
        const section = await tx.query<{ remaining: number, price: number }>(
          'SELECT remaining, price::float8 AS price FROM sections WHERE id = $1 AND event_id = $2 FOR UPDATE',
          [sectionId, eventId])
        if (section.rows.length === 0) return { decisions: null, remaining: 0 }
        const { remaining, price } = section.rows[0]

        const keys = [...new Set(requests.flatMap(r => r.idempotencyKey ?? []))]
        const existing = new Map<string, StoredBooking>()
        if (keys.length > 0) {
          const { rows } = await tx.query<BookingRow>(
            `SELECT ${BOOKING_COLUMNS} FROM bookings WHERE idempotency_key = ANY($1::text[])`, [keys])
          for (const row of rows) existing.set(row.idempotency_key as string, toBooking(row))
        }

        const allocation = allocate({ remaining, unitPrice: price, requests, existing, now: new Date(), newId })
        if (allocation.taken === 0) return { decisions: allocation.decisions, remaining }

        const rows = allocation.inserts
        // One statement: the conditional update, then all inserts only if it matched.
        const { rows: [result] } = await tx.query<{ remaining: number | null }>(
          `WITH upd AS (
             UPDATE sections SET remaining = remaining - $2, bookings = bookings + $12
               WHERE id = $1 AND remaining >= $2 RETURNING remaining
           ), ins AS (
             INSERT INTO bookings (id, event_id, section_id, user_id, qty, unit_price, amount, status,
                                   idempotency_key, request_hash, created_at)
             SELECT b.id, $3, $1, b.user_id, b.qty, $4, b.amount, 'confirmed', b.idempotency_key, b.request_hash, $5
             FROM unnest($6::text[], $7::text[], $8::int[], $9::numeric[], $10::text[], $11::text[])
                  AS b(id, user_id, qty, amount, idempotency_key, request_hash)
             WHERE EXISTS (SELECT 1 FROM upd)
             RETURNING 1
           )
           SELECT (SELECT remaining FROM upd) AS remaining, (SELECT count(*) FROM ins) AS inserted`,
          [sectionId, allocation.taken, eventId, price, rows[0].createdAt,
            rows.map(b => b._id), rows.map(b => b.userId), rows.map(b => b.qty), rows.map(b => b.amount),
            rows.map(b => b.idempotencyKey ?? null), rows.map(b => b.requestHash ?? null), rows.length])
        // The row lock makes this unreachable; if it ever happens, decide again on fresh data.
        if (result.remaining === null) throw new RetryableConflict('remaining fell below the batch total')
        return { decisions: allocation.decisions, remaining: result.remaining }
      })
    },

    async findByIdempotencyKey (key) {
      const { rows } = await read(() => client.query<BookingRow>(
        `SELECT ${BOOKING_COLUMNS} FROM bookings WHERE idempotency_key = $1`, [key]))
      return rows.length === 0 ? null : toBooking(rows[0])
    },

    async getBooking (id) {
      const { rows } = await read(() => client.query<BookingRow>(`SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = $1`, [id]))
      return rows.length === 0 ? null : publicBooking(toBooking(rows[0]))
    },

    async listBookings (query: BookingListQuery): Promise<Page<Booking>> {
      const { clause, params } = whereClause([
        ['event_id', query.eventId], ['section_id', query.sectionId], ['user_id', query.userId], ['status', query.status]
      ])
      // Filtered by event and/or section only: the sections' booking counters give the total.
      const counted = query.userId === undefined && query.status === undefined
        ? whereClause([['event_id', query.eventId], ['id', query.sectionId]])
        : undefined
      return await read(async () => {
        const [page, count] = await Promise.all([
          client.query<BookingRow>(
            `SELECT ${BOOKING_COLUMNS} FROM bookings ${clause} ORDER BY created_at DESC, id DESC
             LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
            [...params, query.limit, (query.page - 1) * query.limit]),
          counted === undefined
            ? client.query<{ total: number }>(`SELECT count(*)::int AS total FROM bookings ${clause}`, params)
            : client.query<{ total: number }>(`SELECT coalesce(sum(bookings), 0)::int AS total FROM sections ${counted.clause}`, counted.params)
        ])
        return { items: page.rows.map(r => publicBooking(toBooking(r))), total: count.rows[0].total, page: query.page, limit: query.limit }
      })
    },

    async cancelBooking (id): Promise<CancelResult | null> {
      return await transaction('cancel', async (tx) => {
        const found = await tx.query<{ section_id: string }>('SELECT section_id FROM bookings WHERE id = $1', [id])
        if (found.rows.length === 0) return null
        // Same lock order as bookBatch (section, then bookings), so the two cannot deadlock.
        await tx.query('SELECT 1 FROM sections WHERE id = $1 FOR UPDATE', [found.rows[0].section_id])
        const { rows: [row] } = await tx.query<BookingRow>(`SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = $1 FOR UPDATE`, [id])
        if (row.status === 'cancelled') return { booking: publicBooking(toBooking(row)), changed: false }
        const { rows: [updated] } = await tx.query<BookingRow>(
          `UPDATE bookings SET status = 'cancelled', cancelled_at = now() WHERE id = $1 RETURNING ${BOOKING_COLUMNS}`, [id])
        await tx.query('UPDATE sections SET remaining = remaining + $2 WHERE id = $1', [row.section_id, row.qty])
        return { booking: publicBooking(toBooking(updated)), changed: true }
      })
    }
  }
}

