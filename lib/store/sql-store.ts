/**
 * The SQL store: one adapter for PostgreSQL and the embedded PGlite, which run
 * the same SQL. The section row lock (SELECT ... FOR UPDATE) and the guarded
 * update (remaining >= taken - returned, CHECK remaining >= 0) keep seats from
 * being sold twice; the distributed lock only keeps transactions from queueing
 * on that row.
 */
import type { StoredBooking } from '../allocation.ts'
import type { BookingStatus, Event, Page } from '../schemas.ts'
import type { SectionState, SectionTx } from '../section-batch.ts'
import type { StoreDriver } from './driver.ts'
import { MIGRATION_LOCK_ID, SCHEMA_STATEMENTS } from './sql-schema.ts'
import { isRetryableSqlError, isSqlUnavailable, type SqlClient, type SqlQueryable } from './sql-client.ts'
import { createStore, type Store, type StoreKind } from './store.ts'
import type { StoreObserver } from './store-errors.ts'

const BOOKING_COLUMNS = `id, event_id, section_id, user_id, qty, unit_price::float8 AS unit_price,
  amount::float8 AS amount, status, idempotency_key, request_hash, created_at, cancelled_at, event_owner,
  expires_at, confirmed_at, payment_ref`

interface BookingRow {
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
  created_at: Date | string
  cancelled_at: Date | string | null
  event_owner: string
  expires_at: Date | string | null
  confirmed_at: Date | string | null
  payment_ref: string | null
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
  held: number
  sold: number
  hold_seconds: number | null
  max_per_user: number | null
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
  if (row.expires_at !== null) booking.expiresAt = new Date(row.expires_at).toISOString()
  if (row.confirmed_at !== null) booking.confirmedAt = new Date(row.confirmed_at).toISOString()
  if (row.payment_ref !== null) booking.paymentRef = row.payment_ref
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
      if (row.hold_seconds !== null) event.holdSeconds = row.hold_seconds
      if (row.max_per_user !== null) event.maxPerUser = row.max_per_user
      events.set(row.id, event)
    }
    event.sections.push({
      _id: row.section_id,
      name: row.section_name,
      price: row.price,
      capacity: row.capacity,
      remaining: row.remaining,
      held: row.held,
      sold: row.sold
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

const EVENT_SELECT = `SELECT e.id, e.name, e.created_at, e.hold_seconds, e.max_per_user, s.id AS section_id, s.name AS section_name,
  s.price::float8 AS price, s.capacity, s.remaining, s.held, s.sold
  FROM events e JOIN sections s ON s.event_id = e.id`

/**
 * A batch's whole write in one statement: the guarded section update, then the
 * inserts (and the status changes and users' seats) only if it matched.
 * Batches that only insert, nearly all of them, use a statement that never
 * reads the bookings table: a plan cached while it was small stays cheap as it grows.
 */
const UPDATE_SECTION = `upd AS (
    UPDATE sections SET remaining = remaining + $2::int, held = held + $3::int, sold = sold + $4::int, bookings = bookings + $5::int,
      next_expiry = CASE WHEN $6::boolean THEN $7::timestamptz ELSE LEAST(next_expiry, $7::timestamptz) END
      WHERE id = $1 AND remaining + $2::int >= 0 RETURNING remaining
  )`
const INSERT_BOOKINGS = `ins AS (
    INSERT INTO bookings (id, event_id, section_id, user_id, qty, unit_price, amount, status,
                          idempotency_key, request_hash, created_at, event_owner, expires_at)
    SELECT b.id, $8::text, $1, b.user_id, b.qty, $9::numeric, b.amount, CASE WHEN b.expires_at IS NULL THEN 'confirmed' ELSE 'held' END,
           b.idempotency_key, b.request_hash, $10::timestamptz, $11::text, b.expires_at
    FROM unnest($12::text[], $13::text[], $14::int[], $15::numeric[], $16::text[], $17::text[], $18::timestamptz[])
         AS b(id, user_id, qty, amount, idempotency_key, request_hash, expires_at)
    WHERE EXISTS (SELECT 1 FROM upd)
    RETURNING 1
  )`
/**
 * A hold is confirmed only while its expires_at is after the batch's moment: the database decides, in this statement.
 * The ids were read as this section's (lock); no section_id here, for the same reason as there.
 */
const CHANGE_BOOKINGS = `chg AS (
    UPDATE bookings b SET status = c.to_status,
      cancelled_at = CASE WHEN c.to_status = 'cancelled' THEN $10::timestamptz ELSE b.cancelled_at END,
      confirmed_at = CASE WHEN c.confirms THEN $10::timestamptz ELSE b.confirmed_at END,
      payment_ref = CASE WHEN c.confirms THEN c.payment_ref ELSE b.payment_ref END
    FROM unnest($19::text[], $20::text[], $21::text[], $22::text[], $26::boolean[]) AS c(id, from_status, to_status, payment_ref, confirms)
    WHERE b.id = c.id AND b.status = c.from_status
      AND (NOT c.confirms OR b.expires_at > $10::timestamptz)
      AND EXISTS (SELECT 1 FROM upd)
    RETURNING 1
  )`
/**
 * Users' seats: gains inserted or added in userId order (the lock order of
 * every writer), each new total guarded by the cap; give-backs subtracted
 * apart, since a negative row would fail the table's CHECK before ON CONFLICT.
 */
const USER_SEATS = `usr_gain AS (
    INSERT INTO event_user_seats AS t (event_id, user_id, seats)
    SELECT $8::text, u.user_id, u.delta FROM unnest($23::text[], $24::int[]) AS u(user_id, delta)
    WHERE u.delta > 0 AND EXISTS (SELECT 1 FROM upd) ORDER BY u.user_id
    ON CONFLICT (event_id, user_id) DO UPDATE SET seats = t.seats + excluded.seats
      WHERE t.seats + excluded.seats <= $25::int
    RETURNING 1
  ), usr_back AS (
    UPDATE event_user_seats t SET seats = t.seats + u.delta
    FROM unnest($23::text[], $24::int[]) AS u(user_id, delta)
    WHERE u.delta < 0 AND t.event_id = $8::text AND t.user_id = u.user_id AND EXISTS (SELECT 1 FROM upd)
    RETURNING 1
  )`
const APPLY_SQL = `WITH ${UPDATE_SECTION}, ${INSERT_BOOKINGS}
  SELECT (SELECT remaining FROM upd) AS remaining, 0 AS changed, 0 AS users`
const APPLY_WITH_CHANGES_SQL = `WITH ${UPDATE_SECTION}, ${INSERT_BOOKINGS}, ${CHANGE_BOOKINGS}, ${USER_SEATS}
  SELECT (SELECT remaining FROM upd) AS remaining, (SELECT count(*)::int FROM chg) AS changed, (SELECT count(*)::int FROM usr_gain) + (SELECT count(*)::int FROM usr_back) AS users`

interface LockRow {
  remaining: number
  price: number
  owner: string
  hold_seconds: number | null
  max_per_user: number | null
  next_expiry: Date | null
  now: Date
  /** as JSON: timestamps are ISO strings there */
  bookings?: BookingRow[] | null
}

const LOCK_COLUMNS = `s.remaining, s.price::float8 AS price, e.owner_id AS owner, e.hold_seconds, e.max_per_user, s.next_expiry,
  clock_timestamp() AS now`
const LOCK_FROM = 'FROM sections s JOIN events e ON e.id = s.event_id WHERE s.id = $1 AND s.event_id = $2 FOR UPDATE OF s'
const LOCK_SQL = `SELECT ${LOCK_COLUMNS} ${LOCK_FROM}`
const LOCK_WITH_BOOKINGS_SQL = `SELECT ${LOCK_COLUMNS},
  (SELECT json_agg(b) FROM (SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = ANY($3::text[])) b) AS bookings ${LOCK_FROM}`

function sectionTx (tx: SqlQueryable, eventId: string, sectionId: string): SectionTx {
  let section: SectionState
  return {
    async lock (ids) {
      // The database's clock is the batch's: holds expire and are confirmed by it, never by an instance's.
      // The named bookings come in the same round trip, by id alone (with `section_id = ...` a planner
      // whose statistics predate a busy section scans its every booking), their section compared here.
      const { rows } = await tx.query<LockRow>(ids.length === 0 ? LOCK_SQL : LOCK_WITH_BOOKINGS_SQL,
        ids.length === 0 ? [sectionId, eventId] : [sectionId, eventId, ids])
      if (rows.length === 0) return null
      const row = rows[0]
      section = {
        remaining: row.remaining,
        price: row.price,
        owner: row.owner,
        holdSeconds: row.hold_seconds,
        maxPerUser: row.max_per_user,
        nextExpiry: row.next_expiry === null ? null : new Date(row.next_expiry),
        now: new Date(row.now)
      }
      const bookings = (row.bookings ?? []).filter(b => b.section_id === sectionId).map(toBooking)
      return { section, bookings }
    },
    async dueHolds (now) {
      // no FOR UPDATE here or below: every writer of a section's bookings holds its section row first
      const due = await tx.query<BookingRow>(
        `SELECT ${BOOKING_COLUMNS} FROM bookings WHERE section_id = $1 AND status = 'held' AND expires_at <= $2`, [sectionId, now])
      const next = await tx.query<{ next: Date | null }>(
        "SELECT min(expires_at) AS next FROM bookings WHERE section_id = $1 AND status = 'held' AND expires_at > $2", [sectionId, now])
      const at = next.rows[0]?.next ?? null
      return { due: due.rows.map(toBooking), next: at === null ? null : new Date(at) }
    },
    async findKeys (keys) {
      const { rows } = await tx.query<BookingRow>(`SELECT ${BOOKING_COLUMNS} FROM bookings WHERE idempotency_key = ANY($1::text[])`, [keys])
      return rows.map(toBooking)
    },
    async lockUserSeats (userIds) {
      const { rows } = await tx.query<{ user_id: string, seats: number }>(
        'SELECT user_id, seats FROM event_user_seats WHERE event_id = $1 AND user_id = ANY($2::text[]) ORDER BY user_id FOR UPDATE',
        [eventId, userIds])
      return new Map(rows.map(r => [r.user_id, r.seats]))
    },
    async apply (effects) {
      const { inserts, changes, userSeats, at } = effects
      const params: unknown[] = [
        sectionId, effects.remaining, effects.held, effects.sold, inserts.length, effects.nextExpiry.replace, effects.nextExpiry.at,
        eventId, section.price, at, section.owner,
        inserts.map(b => b._id), inserts.map(b => b.userId), inserts.map(b => b.qty), inserts.map(b => b.amount),
        inserts.map(b => b.idempotencyKey ?? null), inserts.map(b => b.requestHash ?? null), inserts.map(b => b.expiresAt ?? null)]
      if (changes.length === 0 && userSeats.length === 0) {
        const { rows: [row] } = await tx.query<{ remaining: number | null }>(APPLY_SQL, params)
        return row.remaining
      }
      params.push(
        changes.map(c => c.id), changes.map(c => c.from), changes.map(c => c.to), changes.map(c => c.paymentRef ?? null),
        userSeats.map(u => u.userId), userSeats.map(u => u.delta), effects.maxPerUser, changes.map(c => c.confirms))
      const { rows: [row] } = await tx.query<{ remaining: number | null, changed: number, users: number }>(APPLY_WITH_CHANGES_SQL, params)
      // every change was locked above and every user's row too: all of them apply, or a guard refused
      return row.remaining !== null && row.changed === changes.length && row.users === userSeats.length ? row.remaining : null
    }
  }
}

function sqlDriver (client: SqlClient, kind: StoreKind): StoreDriver {
  async function eventsById (ids: string[], signal?: AbortSignal): Promise<Event[]> {
    if (ids.length === 0) return []
    const { rows } = await client.query<EventRow>(
      `${EVENT_SELECT} WHERE e.id = ANY($1::text[]) ORDER BY e.created_at DESC, e.id DESC, s.position`, [ids], signal)
    return toEvents(rows)
  }

  return {
    kind,
    errors: { isRetryable: isRetryableSqlError, isUnavailable: isSqlUnavailable },

    async migrate () {
      await client.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID])
        for (const statement of SCHEMA_STATEMENTS) await tx.query(statement)
      })
      // Fresh planner statistics (sampled, so bounded in time): PGlite runs no
      // autovacuum, and without them list filters pick whole-index scans.
      await client.query('ANALYZE events, sections, bookings, event_user_seats')
    },

    async ping (signal) {
      await client.query('SELECT 1', [], signal)
    },

    async insertEvent (event, ownerId, signal) {
      await client.transaction(async (tx) => {
        await tx.query('INSERT INTO events (id, name, created_at, owner_id, hold_seconds, max_per_user) VALUES ($1, $2, $3, $4, $5, $6)',
          [event._id, event.name, event.createdAt, ownerId, event.holdSeconds ?? null, event.maxPerUser ?? null])
        await tx.query(
          `INSERT INTO sections (id, event_id, position, name, price, capacity, remaining)
           SELECT id, $1, position, name, price, capacity, capacity
           FROM unnest($2::text[], $3::int[], $4::text[], $5::numeric[], $6::int[]) AS s(id, position, name, price, capacity)`,
          [event._id, event.sections.map(s => s._id), event.sections.map((_, i) => i),
            event.sections.map(s => s.name), event.sections.map(s => s.price), event.sections.map(s => s.capacity)])
      }, signal)
    },

    async getEvent (id, signal) {
      const [event] = await eventsById([id], signal)
      return event ?? null
    },

    async listEvents ({ page, limit }, signal): Promise<Page<Event>> {
      const [ids, count] = await Promise.all([
        client.query<{ id: string }>('SELECT id FROM events ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2',
          [limit, (page - 1) * limit], signal),
        client.query<{ total: number }>('SELECT count(*)::int AS total FROM events', [], signal)
      ])
      const items = await eventsById(ids.rows.map(r => r.id), signal)
      return { items, total: count.rows[0].total, page, limit }
    },

    async findByIdempotencyKey (key, signal) {
      const { rows } = await client.query<BookingRow>(`SELECT ${BOOKING_COLUMNS} FROM bookings WHERE idempotency_key = $1`, [key], signal)
      return rows.length === 0 ? null : toBooking(rows[0])
    },

    async getBooking (id, signal) {
      const { rows } = await client.query<BookingRow>(`SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = $1`, [id], signal)
      return rows.length === 0 ? null : toBooking(rows[0])
    },

    async listBookings (query, signal) {
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
          [...params, query.limit, (query.page - 1) * query.limit], signal),
        counted === undefined
          ? client.query<{ total: number }>(`SELECT count(*)::int AS total FROM bookings ${clause}`, params, signal)
          : client.query<{ total: number }>(`SELECT coalesce(sum(bookings), 0)::int AS total FROM sections ${counted.clause}`, counted.params, signal)
      ])
      return { items: page.rows.map(toBooking), total: count.rows[0].total, page: query.page, limit: query.limit }
    },

    async dueSections (limit, signal) {
      const { rows } = await client.query<{ event_id: string, id: string }>(
        'SELECT event_id, id FROM sections WHERE next_expiry <= clock_timestamp() ORDER BY next_expiry LIMIT $1', [limit], signal)
      return rows.map(r => ({ eventId: r.event_id, sectionId: r.id }))
    },

    inSection: async (eventId, sectionId, fn, signal) => await client.transaction(async (tx) => await fn(sectionTx(tx, eventId, sectionId)), signal)
  }
}

/** A Store on PostgreSQL or PGlite; the client belongs to the caller. */
export function createSqlStore (client: SqlClient, options: { kind: StoreKind, observer?: StoreObserver }): Store {
  return createStore(sqlDriver(client, options.kind), options.observer)
}
