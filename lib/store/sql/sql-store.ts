/**
 * The SQL store: one adapter for PostgreSQL and the embedded PGlite, which run
 * the same SQL. The guarded write (each section still at the version its
 * batch read, never below zero, CHECK remaining >= 0) keeps seats from being
 * sold twice; the distributed lock only keeps batches from meeting on those
 * rows. A batch of many sections costs the same two statements as a batch of
 * one: a read, then one write, each its own transaction, and only the write
 * when its sections are remembered from this store's last batches
 * (./section-memory.ts) and the bookings it confirms or cancels are holds it
 * wrote (./held-bookings.ts); when another writer came between, it runs again
 * as BEGIN, SELECT ... FOR UPDATE (in id order), the write, COMMIT.
 */
import type { StoredBooking } from '../../domain/allocation.ts'
import type { EventStatus, ListPosition, Page, Section } from '../../api/schemas.ts'
import { listPage } from '../../domain/list-cursor.ts'
import { saleRefusal, withFields, type StoredEvent } from '../../domain/sale-rules.ts'
import type { SectionState } from '../../domain/section-ops.ts'
import type { SectionAsk, SectionsTx, SectionWrite } from '../section-batch.ts'
import { nextExpiryAfter } from '../../domain/section-decision.ts'
import { byText } from '../../support/text-order.ts'
import type { StoreDriver } from '../driver.ts'
import { createHeldBookings, type HeldBookings } from './held-bookings.ts'
import { createSectionMemory, type KnownSection, type SectionMemory } from './section-memory.ts'
import { MIGRATION_LOCK_ID, SCHEMA_STATEMENTS } from './schema.ts'
import { BOOKING_COLUMNS, isoColumn, toBooking, type BookingRow } from './booking-rows.ts'
import { batchRecordsCte, insertChanges, recordsParam, sqlChangeStore } from './change-feed.ts'
import {
  listWaitEntries, readWaitlist, waitEntriesById, waitlistCtes, waitlistParam, waitlistWritten, writesWaitlist
} from './waitlist-rows.ts'
import { eventChangeRecord, eventCreatedRecord } from '../../domain/changes.ts'
import { isRetryableSqlError, isSqlUnavailable, sqlState, type SqlClient, type SqlQueryable } from './client.ts'
import { createStore, type Store, type StoreKind } from '../store.ts'
import type { StoreObserver } from '../store-errors.ts'

/**
 * Bookings read as one JSON array (null when none), in `order` if given: the
 * database writes one value, parsed natively here, rather than sixteen text
 * columns a row, each decoded apart (a crowd of confirms' shared read of ~37
 * bookings, embedded: 1041 -> 722 us). `rest`: what follows FROM bookings.
 */
const bookingsJson = (rest: string, order?: string): string =>
  `SELECT json_agg(b${order === undefined ? '' : ` ORDER BY ${order}`}) AS bookings FROM (SELECT ${BOOKING_COLUMNS} FROM bookings ${rest}) b`

interface EventRow {
  id: string
  name: string
  owner_id: string
  status: EventStatus
  description: string | null
  venue: string | null
  starts_at_iso: string | null
  ends_at_iso: string | null
  sales_start_iso: string | null
  sales_end_iso: string | null
  created_at_iso: string
  section_id: string
  section_name: string
  price: number
  capacity: number
  remaining: number
  held: number
  sold: number
  hold_seconds: number | null
  max_per_user: number | null
  waitlist_offer_seconds: number | null
  waiting: number
}

/** The one row of a bookingsJson read. */
interface JsonBookings { bookings: BookingRow[] | null }
const toBookings = (rows: JsonBookings[]): StoredBooking[] => (rows[0]?.bookings ?? []).map(toBooking)

/** Groups joined event/section rows into events, keeping the order of first appearance. */
function toEvents (rows: EventRow[]): StoredEvent[] {
  const events = new Map<string, StoredEvent>()
  for (const row of rows) {
    let event = events.get(row.id)
    if (event === undefined) {
      event = withFields({ _id: row.id, name: row.name, sections: [], status: row.status, owner: row.owner_id, createdAt: row.created_at_iso }, {
        description: row.description,
        venue: row.venue,
        startsAt: row.starts_at_iso,
        endsAt: row.ends_at_iso,
        salesStart: row.sales_start_iso,
        salesEnd: row.sales_end_iso,
        holdSeconds: row.hold_seconds,
        maxPerUser: row.max_per_user,
        waitlistOfferSeconds: row.waitlist_offer_seconds
      })
      events.set(row.id, event)
    }
    event.sections.push({
      _id: row.section_id,
      name: row.section_name,
      price: row.price,
      capacity: row.capacity,
      remaining: row.remaining,
      held: row.held,
      sold: row.sold,
      waiting: row.waiting
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

/**
 * `where` narrowed to the rows after a cursor's position (its two values added
 * to `params`): one row comparison, in the lists' order, which the
 * (..., created_at DESC, id DESC) indexes take as the start of their range.
 * Exact: every created_at is written in milliseconds, as the cursor's text has it.
 */
function andAfter (where: string, params: unknown[], after: ListPosition | undefined): string {
  if (after === undefined) return where
  params.push(after.createdAt, after.id)
  const keyset = `(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::text)`
  return where === '' ? `WHERE ${keyset}` : `${where} AND ${keyset}`
}

const EVENT_SELECT = `SELECT e.id, e.name, ${isoColumn('created_at', 'e')}, e.hold_seconds, e.max_per_user, e.waitlist_offer_seconds, e.owner_id, e.status,
  e.description, e.venue, ${isoColumn('starts_at', 'e')}, ${isoColumn('ends_at', 'e')}, ${isoColumn('sales_start', 'e')}, ${isoColumn('sales_end', 'e')},
  s.id AS section_id, s.name AS section_name,
  s.price::float8 AS price, s.capacity, s.remaining, s.held, s.sold, s.waiting
  FROM events e JOIN sections s ON s.event_id = e.id`

/**
 * A batch's whole write in one statement: the guarded updates of its sections
 * (each still at the version its batch read, and never below zero), then
 * the inserts (and the status changes and users' seats); unless every one of
 * them was written, the statement raises and none of it stays. Batches that
 * only insert, nearly all of them, use a statement that never reads the
 * bookings table: a plan cached while it was small stays cheap as it grows.
 */
/** `waiting`: the parameter of each section's change of its waiting count (the waiting list's statement only). */
const updateSections = (waiting?: string): string => `upd AS (
    UPDATE sections s SET remaining = s.remaining + d.remaining, held = s.held + d.held, sold = s.sold + d.sold,
      bookings = s.bookings + d.bookings, version = s.version + 1,
      capacity = s.capacity + d.capacity, name = coalesce(d.name, s.name), price = coalesce(d.price, s.price),
      next_expiry = CASE WHEN d.replace THEN d.next_expiry ELSE LEAST(s.next_expiry, d.next_expiry) END${waiting === undefined ? '' : ',\n      waiting = s.waiting + d.waiting'}
    FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::int[], $6::boolean[], $7::timestamptz[], $8::int8[],
                $9::int[], $10::text[], $11::numeric[]${waiting === undefined ? '' : `, ${waiting}::int[]`})
         AS d(id, remaining, held, sold, bookings, replace, next_expiry, read_version, capacity, name, price${waiting === undefined ? '' : ', waiting'})
    WHERE s.id = d.id AND s.version = d.read_version AND s.remaining + d.remaining >= 0
    RETURNING s.id, s.remaining, s.name, s.price, s.capacity, s.held, s.sold, s.waiting
  )`
/** Every section's guard passed. */
const ALL_UPDATED = '(SELECT count(*) FROM upd) = $12::int'
/** `waitlistIds`: the parameter of each insert's waiting-list entry (an offer's; the waiting list's statement only). */
const insertBookings = (waitlistIds?: string): string => `ins AS (
    INSERT INTO bookings (id, event_id, section_id, user_id, qty, unit_price, amount, status,
                          idempotency_key, request_hash, created_at, event_owner, expires_at${waitlistIds === undefined ? '' : ', waitlist_id'})
    SELECT b.id, b.event_id, b.section_id, b.user_id, b.qty, b.unit_price, b.amount,
           CASE WHEN b.expires_at IS NULL THEN 'confirmed' ELSE 'held' END,
           b.idempotency_key, b.request_hash, $13::timestamptz, b.event_owner, b.expires_at${waitlistIds === undefined ? '' : ', b.waitlist_id'}
    FROM unnest($14::text[], $15::text[], $16::text[], $17::text[], $18::int[], $19::numeric[], $20::numeric[],
                $21::text[], $22::text[], $23::timestamptz[], $24::text[]${waitlistIds === undefined ? '' : `, ${waitlistIds}::text[]`})
         AS b(id, event_id, section_id, user_id, qty, unit_price, amount, idempotency_key, request_hash, expires_at, event_owner${waitlistIds === undefined ? '' : ', waitlist_id'})
    WHERE ${ALL_UPDATED}
    RETURNING 1
  )`
/**
 * A hold is confirmed only while its expires_at is after the batch's moment and
 * the database's clock as the statement runs: the database decides, in this statement.
 * The ids were read as their sections' (lock); no section_id here, for the same reason as there.
 */
const CHANGE_BOOKINGS = `chg AS (
    UPDATE bookings b SET status = c.to_status,
      cancelled_at = CASE WHEN c.to_status = 'cancelled' THEN $13::timestamptz ELSE b.cancelled_at END,
      confirmed_at = CASE WHEN c.confirms THEN $13::timestamptz ELSE b.confirmed_at END,
      payment_ref = CASE WHEN c.confirms THEN c.payment_ref ELSE b.payment_ref END
    FROM unnest($25::text[], $26::text[], $27::text[], $28::text[], $29::boolean[]) AS c(id, from_status, to_status, payment_ref, confirms)
    WHERE b.id = c.id AND b.status = c.from_status
      AND (NOT c.confirms OR b.expires_at > GREATEST($13::timestamptz, clock_timestamp()))
      AND ${ALL_UPDATED}
    RETURNING 1
  )`
/**
 * Users' seats, one net change per event and user: gains inserted or added in
 * (eventId, userId) order (the lock order of every writer), each new total
 * guarded by the event's cap; give-backs subtracted apart, since a negative
 * row would fail the table's CHECK before ON CONFLICT.
 */
const USER_SEATS = `usr_gain AS (
    INSERT INTO event_user_seats AS t (event_id, user_id, seats)
    SELECT u.event_id, u.user_id, u.delta FROM unnest($30::text[], $31::text[], $32::int[]) AS u(event_id, user_id, delta)
    WHERE u.delta > 0 AND ${ALL_UPDATED} ORDER BY u.event_id, u.user_id
    ON CONFLICT (event_id, user_id) DO UPDATE SET seats = t.seats + excluded.seats
      WHERE t.seats + excluded.seats <= (SELECT e.max_per_user FROM events e WHERE e.id = t.event_id)
    RETURNING 1
  ), usr_back AS (
    UPDATE event_user_seats t SET seats = t.seats + u.delta
    FROM unnest($30::text[], $31::text[], $32::int[]) AS u(event_id, user_id, delta)
    WHERE u.delta < 0 AND t.event_id = u.event_id AND t.user_id = u.user_id AND ${ALL_UPDATED}
    RETURNING 1
  )`
/** With the database's clock once written: the moment a remembered section is known at. */
const REMAINING = '(SELECT json_object_agg(id, remaining) FROM upd) AS remaining, clock_timestamp() AS now'
/**
 * Raised unless every section, change and user's row was written, and the
 * batch's moment is not in the database's future (it may be this process's
 * reckoning of that clock): nothing of the statement stays.
 */
const GUARDED = (all: string): string => `booking_batch_guard(${all} AND $13::timestamptz <= clock_timestamp()) AS ok`
const CHANGES_WRITTEN = `${ALL_UPDATED}
    AND (SELECT count(*) FROM chg) = cardinality($25::text[])
    AND (SELECT count(*) FROM usr_gain) + (SELECT count(*) FROM usr_back) = cardinality($30::text[])`
const APPLY_SQL = `WITH ${updateSections()}, ${insertBookings()}, ${batchRecordsCte('$25', '$13::timestamptz', ALL_UPDATED)}
  SELECT ${REMAINING}, ${GUARDED(ALL_UPDATED)}`
const APPLY_WITH_CHANGES_SQL = `WITH ${updateSections()}, ${insertBookings()}, ${CHANGE_BOOKINGS}, ${USER_SEATS},
  ${batchRecordsCte('$33', '$13::timestamptz', ALL_UPDATED)}
  SELECT ${REMAINING}, ${GUARDED(CHANGES_WRITTEN)}`
/** A batch that touches a waiting list: the same, with its entries ($35), the sections' waiting counts ($34), the offers' entries ($36). */
const APPLY_WITH_WAITLIST_SQL = `WITH ${updateSections('$34')}, ${insertBookings('$36')}, ${CHANGE_BOOKINGS}, ${USER_SEATS},
  ${waitlistCtes('$35', '$13::timestamptz', ALL_UPDATED)},
  ${batchRecordsCte('$33', '$13::timestamptz', ALL_UPDATED)}
  SELECT ${REMAINING}, ${GUARDED(`${CHANGES_WRITTEN} AND ${waitlistWritten('$35')}`)}`

/** Runs what a batch learnt once its write is committed. */
type AfterCommit = (fn: () => void) => void
const now: AfterCommit = fn => { fn() }

/** A section as the batch read it (or remembered it), with the version its write is guarded by. */
type ReadSection = SectionState & { version: number }

interface LockedRow {
  id: string
  event_id: string
  remaining: number
  capacity: number
  price: number
  status: EventStatus
  /** as JSON: ISO strings */
  sales_start: string | null
  sales_end: string | null
  owner: string
  hold_seconds: number | null
  max_per_user: number | null
  /** as JSON: an ISO string */
  next_expiry: string | null
  version: number
  waiting: number
  offer_seconds: number | null
}

/**
 * The batch's sections with their events' rules; locked (`FOR UPDATE`) in id
 * order (ORDER BY under FOR UPDATE locks rows in that order) when the batch
 * runs as a transaction. The database's clock, read once the locks are had,
 * is the batch's: holds expire and are confirmed by it, never by an instance's.
 */
const readSections = (lock: boolean): string => `WITH locked AS (
    SELECT s.id, s.event_id, s.remaining, s.capacity, s.price::float8 AS price, e.owner_id AS owner, e.hold_seconds, e.max_per_user,
      e.status, e.sales_start, e.sales_end, s.next_expiry, s.version, s.waiting, e.waitlist_offer_seconds AS offer_seconds
    FROM sections s JOIN events e ON e.id = s.event_id
    WHERE s.id = ANY($1::text[]) ORDER BY s.id${lock ? ' FOR UPDATE OF s' : ''}
  )
  SELECT (SELECT json_agg(l) FROM locked l) AS sections`
const sectionsOnly = (lock: boolean): string => `${readSections(lock)}, NULL::json AS bookings, clock_timestamp() AS now`
/**
 * The same, with the bookings the batch names, in the same round trip: by id
 * alone (with `section_id = ...` a planner whose statistics predate a busy
 * section scans its every booking), their sections compared after. A
 * statement of its own: a plan cached while the bookings table was empty
 * (the batches before the first confirm) would scan it whole.
 */
const withBookings = (lock: boolean): string => `${readSections(lock)},
    (${bookingsJson('WHERE id = ANY($2::text[])')}) AS bookings,
    clock_timestamp() AS now`
/** The four texts, each prepared once per connection: [locked][with bookings] */
const READ_SQL = {
  locked: { sections: sectionsOnly(true), bookings: withBookings(true) },
  unlocked: { sections: sectionsOnly(false), bookings: withBookings(false) }
}

/**
 * A batch that needs its rows locked for its reads to stay true: it guards
 * users' seats (maxPerUser), whose rows the write cannot check against what
 * was read. Thrown by an unlocked batch before it writes; it then runs as a
 * transaction.
 */
class NeedsLocks extends Error {}

/** SQLSTATE check_violation */
const CHECK_VIOLATION = '23514'

/** The inserted bookings as the write's eleven column arrays ($14 to $24), in one pass. */
function insertColumns (inserts: readonly StoredBooking[]): unknown[][] {
  const columns: unknown[][] = Array.from({ length: 11 }, () => new Array(inserts.length))
  inserts.forEach((b, i) => {
    columns[0][i] = b._id
    columns[1][i] = b.eventId
    columns[2][i] = b.sectionId
    columns[3][i] = b.userId
    columns[4][i] = b.qty
    columns[5][i] = b.unitPrice
    columns[6][i] = b.amount
    columns[7][i] = b.idempotencyKey ?? null
    columns[8][i] = b.requestHash ?? null
    columns[9][i] = b.expiresAt ?? null
    columns[10][i] = b.eventOwner ?? ''
  })
  return columns
}

/** Each event's users' net change of seats over the batch's sections, in (eventId, userId) order. */
function netUserSeats (writes: readonly SectionWrite[]): Array<{ eventId: string, userId: string, delta: number }> {
  const net = new Map<string, { eventId: string, userId: string, delta: number }>()
  for (const { eventId, effects } of writes) {
    for (const { userId, delta } of effects.userSeats) {
      const key = `${eventId}\n${userId}`
      const entry = net.get(key) ?? { eventId, userId, delta: 0 }
      entry.delta += delta
      net.set(key, entry)
    }
  }
  return [...net.values()].filter(u => u.delta !== 0)
    .sort((a, b) => byText(a.eventId, b.eventId) || byText(a.userId, b.userId))
}

/**
 * A batch's primitives on one connection. `locked`: inside a transaction that
 * locks what it reads; else each statement is its own transaction, and the
 * write, guarded by every section still being at the version read (or
 * remembered: lib/store/sql/section-memory.ts), proves the reads were still true
 * when it was made (or raises, and nothing stays): every write of a section
 * raises its version, so no field the write replaces (next_expiry) or the
 * batch decided by (remaining) can have changed in between.
 */
function sectionsTx (tx: SqlQueryable, locked: boolean, memory: SectionMemory, held: HeldBookings, committed: AfterCommit): SectionsTx {
  /** the sections as read or remembered: the write is guarded by each one's version */
  let read = new Map<string, ReadSection>()
  /** those of them taken from memory */
  let recalledIds: string[] = []
  const texts = locked ? READ_SQL.locked : READ_SQL.unlocked
  return {
    async lock (sections, ids, seen) {
      // unlocked, bookings read after their requests came, and holds this store wrote, stand for a read
      // of them (their changes are guarded by status)
      const given = locked ? seen : withHeld(seen, ids, held)
      const readsBookings = ids.some(id => locked || !given.has(id))
      const known = locked ? new Map<string, KnownSection>() : recalled(memory, sections, memory.databaseNow())
      recalledIds = [...known.keys()]
      const toRead = sections.filter(s => !known.has(s.sectionId)).map(s => s.sectionId)
      const reckoned = toRead.length === 0 && !readsBookings ? memory.databaseNow() : undefined
      let now: Date
      let rows: LockedRow[] = []
      let bookings: StoredBooking[] = []
      if (reckoned !== undefined) {
        now = reckoned
      } else {
        const { rows: [row] } = await tx.query<{ sections: LockedRow[] | null, bookings: BookingRow[] | null, now: Date }>(
          readsBookings ? texts.bookings : texts.sections, readsBookings ? [toRead, ids] : [toRead])
        now = new Date(row.now)
        rows = row.sections ?? []
        if (readsBookings) bookings = toBookings([row])
      }
      if (!readsBookings) bookings = ids.map(id => given.get(id) as StoredBooking)
      const eventOf = new Map(sections.map(s => [s.sectionId, s.eventId]))
      const fresh = new Map<string, KnownSection>()
      for (const s of rows) {
        if (eventOf.get(s.id) !== s.event_id) continue
        fresh.set(s.id, {
          eventId: s.event_id,
          remaining: s.remaining,
          capacity: s.capacity,
          price: s.price,
          sale: { status: s.status, salesStart: dateOrNull(s.sales_start), salesEnd: dateOrNull(s.sales_end) },
          owner: s.owner,
          holdSeconds: s.hold_seconds,
          maxPerUser: s.max_per_user,
          nextExpiry: dateOrNull(s.next_expiry),
          version: s.version,
          waiting: s.waiting,
          offerSeconds: s.offer_seconds
        })
      }
      if (rows.length > 0) memory.remember(fresh, now)
      const found = new Map<string, ReadSection>()
      for (const { sectionId } of sections) {
        const state = fresh.get(sectionId) ?? known.get(sectionId)
        if (state !== undefined) found.set(sectionId, { ...state, now })
      }
      read = found
      return { sections: found, bookings: bookings.filter(b => found.has(b.sectionId)), now }
    },
    async dueHolds ({ sectionId }, now) {
      // no FOR UPDATE here or below: every writer of a section's bookings holds its section row first
      const due = await tx.query<JsonBookings>(bookingsJson("WHERE section_id = $1 AND status = 'held' AND expires_at <= $2"), [sectionId, now])
      const next = await tx.query<{ next: Date | null }>(
        "SELECT min(expires_at) AS next FROM bookings WHERE section_id = $1 AND status = 'held' AND expires_at > $2", [sectionId, now])
      const at = next.rows[0]?.next ?? null
      return { due: toBookings(due.rows), next: at === null ? null : new Date(at) }
    },
    async findKeys (keys) {
      const { rows } = await tx.query<JsonBookings>(bookingsJson('WHERE idempotency_key = ANY($1::text[])'), [keys])
      return toBookings(rows)
    },
    // not locked: every change of an entry is guarded by its status, a join by its section's version
    waitlist: async ({ sectionId }, ask) => await readWaitlist(tx, sectionId, ask),
    async lockUserSeats (users) {
      if (!locked) throw new NeedsLocks()
      const pairs = users.flatMap(({ eventId, userIds }) => userIds.map(userId => ({ eventId, userId })))
      const { rows } = await tx.query<{ event_id: string, user_id: string, seats: number }>(
        `SELECT t.event_id, t.user_id, t.seats FROM event_user_seats t
         JOIN unnest($1::text[], $2::text[]) AS u(event_id, user_id) ON t.event_id = u.event_id AND t.user_id = u.user_id
         ORDER BY t.event_id, t.user_id FOR UPDATE OF t`,
        [pairs.map(p => p.eventId), pairs.map(p => p.userId)])
      const seats = new Map(users.map(({ eventId }) => [eventId, new Map<string, number>()]))
      for (const r of rows) seats.get(r.event_id)?.set(r.user_id, r.seats)
      return seats
    },
    async apply (writes) {
      const inserts = writes.flatMap(w => w.effects.inserts)
      const changes = writes.flatMap(w => w.effects.changes)
      const users = netUserSeats(writes)
      const params: unknown[] = [
        writes.map(w => w.sectionId), writes.map(w => w.effects.remaining), writes.map(w => w.effects.held), writes.map(w => w.effects.sold),
        writes.map(w => w.effects.inserts.length), writes.map(w => w.effects.nextExpiry.replace), writes.map(w => w.effects.nextExpiry.at),
        writes.map(w => read.get(w.sectionId)?.version), writes.map(w => w.effects.capacity), writes.map(w => w.effects.name ?? null),
        writes.map(w => w.effects.price ?? null), writes.length, writes[0].effects.at, ...insertColumns(inserts)]
      const withWaitlist = writesWaitlist(writes)
      const withChanges = withWaitlist || changes.length > 0 || users.length > 0
      if (withChanges) {
        params.push(
          changes.map(c => c.id), changes.map(c => c.from), changes.map(c => c.to), changes.map(c => c.paymentRef ?? null), changes.map(c => c.confirms),
          users.map(u => u.eventId), users.map(u => u.userId), users.map(u => u.delta))
      }
      // the outbox's records, in the same statement: all of it stays, or none
      params.push(recordsParam(writes))
      if (withWaitlist) params.push(writes.map(w => w.effects.waiting), waitlistParam(writes), inserts.map(b => b.waitlistId ?? null))
      // all of it is written, or the statement raises (booking_batch_guard); either way, or neither
      // known (an error on the way), what was remembered of these sections may be stale now
      memory.forget(writes.map(w => w.sectionId))
      held.forget(changes.map(c => c.id))
      let row: { remaining: Record<string, number> | null, now: Date }
      try {
        ({ rows: [row] } = await tx.query<{ remaining: Record<string, number> | null, now: Date }>(
          withWaitlist ? APPLY_WITH_WAITLIST_SQL : withChanges ? APPLY_WITH_CHANGES_SQL : APPLY_SQL, params))
      } catch (err) {
        // refused on what memory said, most likely: another writer shares these sections
        if (recalledIds.length > 0 && (isRetryableSqlError(err) || sqlState(err) === CHECK_VIOLATION)) memory.refused(recalledIds)
        throw err
      }
      const after = new Map(Object.entries(row.remaining ?? {}))
      const sections = new Map(writes.map(w => [w.sectionId, written(read.get(w.sectionId) as ReadSection, w, after.get(w.sectionId) as number)]))
      const at = new Date(row.now)
      // remembered once committed: a memory describes only what the database holds
      committed(() => {
        held.written(inserts)
        memory.remember(sections, at)
      })
      return after
    }
  }
}

/** The bookings seen, and those of the other ids this store wrote as holds and has not changed since. */
function withHeld (seen: ReadonlyMap<string, StoredBooking>, ids: readonly string[], held: HeldBookings): ReadonlyMap<string, StoredBooking> {
  let known: Map<string, StoredBooking> | undefined
  for (const id of ids) {
    if (seen.has(id)) continue
    const hold = held.recall(id)
    if (hold === undefined) continue
    known ??= new Map(seen)
    known.set(id, hold)
  }
  return known ?? seen
}

/**
 * Sections remembered from this store's last batches, where every decision is
 * a guarded write (SectionAsk): no sweep, the seats asked are there, and the
 * sale takes bookings (a refusal writes nothing, so nothing would prove it).
 */
function recalled (memory: SectionMemory, sections: readonly SectionAsk[], dbNow: Date | undefined): Map<string, KnownSection> {
  const known = new Map<string, KnownSection>()
  if (dbNow === undefined) return known
  for (const ask of sections) {
    if (ask.sweeps) continue
    const state = memory.recall(ask)
    if (state !== undefined && state.remaining >= ask.seats && saleRefusal(state.sale, dbNow) === null) known.set(ask.sectionId, state)
  }
  return known
}

const dateOrNull = (text: string | null): Date | null => text === null ? null : new Date(text)

/** A section as a write left it: the remaining it returned, its next expiry as the write set it, its version raised. */
function written (before: ReadSection, write: SectionWrite, remaining: number): KnownSection {
  const { now: _now, ...rules } = before
  const { effects } = write
  return {
    ...rules,
    eventId: write.eventId,
    remaining,
    capacity: before.capacity + effects.capacity,
    price: effects.price ?? before.price,
    waiting: before.waiting + effects.waiting,
    nextExpiry: nextExpiryAfter(before.nextExpiry, effects.nextExpiry),
    version: before.version + 1
  }
}

const EVENTS_ORDER = 'ORDER BY e.created_at DESC, e.id DESC, s.position'

/** The event's own fields, as they are (null where one has none). */
async function writeEventFields (tx: SqlQueryable, event: StoredEvent): Promise<void> {
  await tx.query(`UPDATE events SET name = $2, status = $3, description = $4, venue = $5, starts_at = $6, ends_at = $7,
    sales_start = $8, sales_end = $9, hold_seconds = $10, max_per_user = $11, waitlist_offer_seconds = $12 WHERE id = $1`,
  [event._id, event.name, event.status, event.description ?? null, event.venue ?? null, event.startsAt ?? null, event.endsAt ?? null,
    event.salesStart ?? null, event.salesEnd ?? null, event.holdSeconds ?? null, event.maxPerUser ?? null, event.waitlistOfferSeconds ?? null])
}

/** New sections of an event, after its `after` first ones. */
async function insertSections (tx: SqlQueryable, eventId: string, after: number, sections: readonly Section[]): Promise<void> {
  await tx.query(
    `INSERT INTO sections (id, event_id, position, name, price, capacity, remaining)
     SELECT id, $1, position, name, price, capacity, capacity
     FROM unnest($2::text[], $3::int[], $4::text[], $5::numeric[], $6::int[]) AS s(id, position, name, price, capacity)`,
    [eventId, sections.map(s => s._id), sections.map((_, i) => after + i),
      sections.map(s => s.name), sections.map(s => s.price), sections.map(s => s.capacity)])
}

function sqlDriver (client: SqlClient, kind: StoreKind, memory: SectionMemory, held: HeldBookings): StoreDriver {
  async function eventsById (ids: readonly string[], signal?: AbortSignal): Promise<StoredEvent[]> {
    if (ids.length === 0) return []
    const { rows } = await client.query<EventRow>(`${EVENT_SELECT} WHERE e.id = ANY($1::text[]) ${EVENTS_ORDER}`, [ids], signal)
    return toEvents(rows)
  }

  return {
    kind,
    errors: { isRetryable: isRetryableSqlError, isUnavailable: isSqlUnavailable },
    ...sqlChangeStore(client),

    async migrate () {
      await client.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID])
        for (const statement of SCHEMA_STATEMENTS) await tx.query(statement)
      })
      // Fresh planner statistics (sampled, so bounded in time): PGlite runs no
      // autovacuum, and without them list filters pick whole-index scans.
      await client.query('ANALYZE events, sections, bookings, event_user_seats, changes, waitlist')
    },

    async ping (signal) {
      await client.query('SELECT 1', [], signal)
    },

    async insertEvent (event, signal) {
      await client.transaction(async (tx) => {
        await tx.query('INSERT INTO events (id, name, created_at, owner_id, status) VALUES ($1, $2, $3, $4, $5)',
          [event._id, event.name, event.createdAt, event.owner, event.status])
        await writeEventFields(tx, event)
        await insertSections(tx, event._id, 0, event.sections)
        await insertChanges(tx, [eventCreatedRecord(event, Date.now())])
      }, signal)
    },

    getEvents: eventsById,

    getWaitEntries: async (ids, signal) => await waitEntriesById(client, ids, signal),
    listWaitEntries: async (query, signal) => await listWaitEntries(client, query, signal),

    async changeEvent (id, decide, signal) {
      return await client.transaction(async (tx) => {
        // the event's row locked: changes of one event are decided one after the other
        const { rows } = await tx.query<EventRow>(`${EVENT_SELECT} WHERE e.id = $1 ORDER BY s.position FOR UPDATE OF e`, [id])
        const [current] = toEvents(rows)
        if (current === undefined) return null
        const change = decide(current)
        const next = withFields(current, change.fields)
        await writeEventFields(tx, next)
        // every section's version raised (waiting for batches that hold them): a batch that read the
        // event's rules before fails its guarded write and decides again on these
        await tx.query('UPDATE sections SET version = version + 1 WHERE event_id = $1', [id])
        if (next.maxPerUser !== undefined && current.maxPerUser === undefined) {
          // the cap's guard counts anew: seats were not counted while the event had none
          await tx.query('DELETE FROM event_user_seats WHERE event_id = $1', [id])
          await tx.query(`INSERT INTO event_user_seats (event_id, user_id, seats)
            SELECT event_id, user_id, sum(qty) FROM bookings WHERE event_id = $1 AND status IN ('held', 'confirmed') GROUP BY event_id, user_id`, [id])
        }
        if (change.addSections.length > 0) await insertSections(tx, id, current.sections.length, change.addSections)
        const { rows: after } = await tx.query<EventRow>(`${EVENT_SELECT} WHERE e.id = $1 ${EVENTS_ORDER}`, [id])
        const [changed] = toEvents(after)
        const record = eventChangeRecord(current, changed, Date.now())
        if (record !== null) await insertChanges(tx, [record])
        return { event: changed, recorded: record?.type ?? null }
      }, signal)
    },

    async listEvents (query, signal): Promise<Page<StoredEvent>> {
      const { page, limit, drafts, after } = query
      const where = drafts === 'all' ? '' : drafts === 'none' ? "WHERE status <> 'draft'" : "WHERE (status <> 'draft' OR owner_id = $3)"
      const params: unknown[] = typeof drafts === 'object' ? [drafts.owner] : []
      const listed = [limit, (page - 1) * limit, ...params]
      const [ids, count] = await Promise.all([
        client.query<{ id: string }>(`SELECT id FROM events ${andAfter(where, listed, after)} ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2`,
          listed, signal),
        // the total counts the whole list, not what is left after a cursor
        client.query<{ total: number }>(`SELECT count(*)::int AS total FROM events ${where.replace('$3', '$1')}`, params, signal)
      ])
      const items = await eventsById(ids.rows.map(r => r.id), signal)
      return listPage(items, count.rows[0].total, query)
    },

    async findByIdempotencyKey (key, signal) {
      const { rows } = await client.query<JsonBookings>(bookingsJson('WHERE idempotency_key = $1'), [key], signal)
      return toBookings(rows)[0] ?? null
    },

    async getBookings (ids, signal) {
      const { rows } = await client.query<JsonBookings>(bookingsJson('WHERE id = ANY($1::text[])'), [ids], signal)
      return toBookings(rows)
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
      const listed: unknown[] = [...params, query.limit, (query.page - 1) * query.limit]
      const [page, count] = await Promise.all([
        client.query<JsonBookings>(
          // the ISO texts sort as the moments they write
          bookingsJson(`${andAfter(clause, listed, query.after)} ORDER BY created_at DESC, id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
            'b.created_at_iso DESC, b.id DESC'),
          listed, signal),
        counted === undefined
          ? client.query<{ total: number }>(`SELECT count(*)::int AS total FROM bookings ${clause}`, params, signal)
          : client.query<{ total: number }>(`SELECT coalesce(sum(bookings), 0)::int AS total FROM sections ${counted.clause}`, counted.params, signal)
      ])
      return listPage(toBookings(page.rows), count.rows[0].total, query)
    },

    async dueSections (limit, signal) {
      const { rows } = await client.query<{ event_id: string, id: string }>(
        'SELECT event_id, id FROM sections WHERE next_expiry <= clock_timestamp() ORDER BY next_expiry LIMIT $1', [limit], signal)
      return rows.map(r => ({ eventId: r.event_id, sectionId: r.id }))
    },

    /**
     * First without a transaction: a read, then the one guarded write, which
     * holds only if no one wrote the batch's sections in between (the section
     * lock makes that rare). If someone did, or the batch guards users' seats,
     * it runs again as one transaction that locks its rows as it reads them.
     */
    async inSections (fn, signal, onRetry) {
      try {
        // each statement its own transaction: what the write leaves is committed once it answers
        return await client.session(async (conn) => await fn(sectionsTx(conn, false, memory, held, now)), signal)
      } catch (err) {
        // a counter's CHECK refusing the write (23514) is a read gone stale too: a booking's status
        // changed since, and the sections' counters, updated first, fell below zero before its guard
        if (!(err instanceof NeedsLocks) && !isRetryableSqlError(err) && sqlState(err) !== CHECK_VIOLATION) throw err
        // guarding users' seats is not a conflict: the batch needed locks from the start
        if (!(err instanceof NeedsLocks)) onRetry?.()
      }
      const afterCommit: Array<() => void> = []
      const result = await client.transaction(async (tx) => await fn(sectionsTx(tx, true, memory, held, f => afterCommit.push(f))), signal)
      for (const f of afterCommit) f()
      return result
    }
  }
}

/**
 * How long a section this store read or wrote is taken as known (about a turn
 * of the section batcher), and how long one whose memory a write found stale
 * is read instead (several instances take turns on it).
 */
const SECTION_MEMORY = { freshMs: 50, sharedMs: 10_000 }

/** Holds kept as written, for their confirm or release (a hint: a few tens of MB at most). */
const HOLDS_KEPT = 100_000

/** A Store on PostgreSQL or PGlite; the client belongs to the caller. */
export function createSqlStore (client: SqlClient, options: {
  kind: StoreKind
  observer?: StoreObserver
  sectionMemory?: { freshMs: number, sharedMs: number }
}): Store {
  const { freshMs, sharedMs } = options.sectionMemory ?? SECTION_MEMORY
  return createStore(sqlDriver(client, options.kind, createSectionMemory(freshMs, sharedMs), createHeldBookings(HOLDS_KEPT)), options.observer)
}
