/**
 * The waiting list on the SQL stores: its rows, the batch's read of them,
 * the parts of the batch's guarded statement that write them, and its lists.
 * Entries are written only by their section's batch (joins, offers, their
 * holds' outcomes, leaves), in the statement that writes the section's row:
 * the section's version guards joins and positions, each entry's change its
 * `from`, and a partial unique index one active entry per user and section.
 */
import type { SectionWrite } from '../section-batch.ts'
import type { StoredEntry, WaitlistRead, WaitStatus } from '../../domain/waitlist.ts'
import { isoColumn } from './booking-rows.ts'
import type { SqlClient, SqlQueryable } from './client.ts'

export const WAITLIST_SCHEMA: readonly string[] = [
  'ALTER TABLE events ADD COLUMN IF NOT EXISTS waitlist_offer_seconds int CHECK (waitlist_offer_seconds > 0)',
  // waiting entries of the section's list: how many wait is shown, and a batch reads the list only when some do
  'ALTER TABLE sections ADD COLUMN IF NOT EXISTS waiting int NOT NULL DEFAULT 0 CHECK (waiting >= 0)',
  // an offer's hold names its entry: the batch that confirms, expires or releases it moves the entry too
  'ALTER TABLE bookings ADD COLUMN IF NOT EXISTS waitlist_id text',
  `CREATE TABLE IF NOT EXISTS waitlist (
    id          text PRIMARY KEY,
    event_id    text NOT NULL,
    section_id  text NOT NULL,
    user_id     text NOT NULL,
    qty         int NOT NULL CHECK (qty > 0),
    position    int NOT NULL CHECK (position > 0),
    status      text NOT NULL CHECK (status IN ('waiting', 'offered', 'confirmed', 'lapsed', 'skipped', 'left')),
    booking_id  text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    event_owner text NOT NULL DEFAULT ''
  )`,
  'CREATE UNIQUE INDEX IF NOT EXISTS waitlist_position ON waitlist (section_id, position)',
  "CREATE UNIQUE INDEX IF NOT EXISTS waitlist_active ON waitlist (section_id, user_id) WHERE status IN ('waiting', 'offered')",
  "CREATE INDEX IF NOT EXISTS waitlist_waiting ON waitlist (section_id, position) WHERE status = 'waiting'",
  'CREATE INDEX IF NOT EXISTS waitlist_event ON waitlist (event_id, section_id, position)'
]

const ENTRY_COLUMNS = `id, event_id, section_id, user_id, qty, position, status, booking_id, ${isoColumn('created_at')}, event_owner`

interface EntryRow {
  id: string
  event_id: string
  section_id: string
  user_id: string
  qty: number
  position: number
  status: WaitStatus
  booking_id: string | null
  created_at_iso: string
  event_owner: string
}

function toEntry (row: EntryRow): StoredEntry {
  const entry: StoredEntry = {
    _id: row.id,
    eventId: row.event_id,
    sectionId: row.section_id,
    userId: row.user_id,
    qty: row.qty,
    position: row.position,
    status: row.status,
    createdAt: row.created_at_iso,
    eventOwner: row.event_owner
  }
  if (row.booking_id !== null) entry.bookingId = row.booking_id
  return entry
}

/** Entries read as one JSON array (null when none), in their sections' and positions' order. */
const entriesJson = (rest: string): string =>
  `(SELECT json_agg(w ORDER BY w.section_id, w.position) FROM (SELECT ${ENTRY_COLUMNS} FROM waitlist ${rest}) w)`

/** The batch's read, one round trip: the first waiting entries that may fit, the named ones and the joining users', the last position. */
const READ_SQL = `SELECT
  ${entriesJson("WHERE section_id = $1 AND status = 'waiting' AND qty <= $2 ORDER BY position LIMIT $3")} AS waiting,
  ${entriesJson("WHERE section_id = $1 AND (id = ANY($4::text[]) OR (user_id = ANY($5::text[]) AND status IN ('waiting', 'offered')))")} AS named,
  (SELECT coalesce(max(position), 0) FROM waitlist WHERE section_id = $1 AND cardinality($5::text[]) > 0) AS last`

export async function readWaitlist (tx: SqlQueryable, sectionId: string, ask: { seats: number, limit: number, ids: string[], userIds: string[] }): Promise<WaitlistRead> {
  const limit = ask.seats === 0 ? 0 : ask.limit
  const { rows: [row] } = await tx.query<{ waiting: EntryRow[] | null, named: EntryRow[] | null, last: number }>(
    READ_SQL, [sectionId, ask.seats, limit, ask.ids, ask.userIds])
  const waiting = (row.waiting ?? []).map(toEntry)
  return { waiting, complete: waiting.length < limit || limit === 0, named: (row.named ?? []).map(toEntry), lastPosition: row.last }
}

/**
 * The entries' parts of the batch's statement, from one JSON parameter:
 * joins inserted, moves applied only from the status they were decided on.
 * `guard`: every section's guard passed.
 */
export const waitlistCtes = (param: string, at: string, guard: string): string => `wl_chg AS (
    UPDATE waitlist w SET status = c.to_status, booking_id = coalesce(c.booking_id, w.booking_id), updated_at = ${at}
    FROM json_to_recordset(${param}::json -> 'changes') AS c(id text, from_status text, to_status text, booking_id text)
    WHERE w.id = c.id AND w.status = c.from_status AND ${guard}
    RETURNING 1
  ), wl_ins AS (
    INSERT INTO waitlist (id, event_id, section_id, user_id, qty, position, status, created_at, updated_at, event_owner)
    SELECT e.id, e.event_id, e.section_id, e.user_id, e.qty, e.position, 'waiting', ${at}, ${at}, e.event_owner
    FROM json_to_recordset(${param}::json -> 'inserts') AS e(id text, event_id text, section_id text, user_id text, qty int, position int, event_owner text)
    -- after the moves (reading their count makes them run first): a user whose entry left in this batch may join again
    WHERE ${guard} AND (SELECT count(*) FROM wl_chg) >= 0
    RETURNING 1
  )`
export const waitlistWritten = (param: string): string =>
  `(SELECT count(*) FROM wl_ins) = json_array_length(${param}::json -> 'inserts') AND (SELECT count(*) FROM wl_chg) = json_array_length(${param}::json -> 'changes')`

/** The batch's entries' writes as the statement's parameter. */
export function waitlistParam (writes: readonly SectionWrite[]): string {
  const inserts = writes.flatMap(w => w.effects.waitlist.inserts.map(e => ({
    id: e._id, event_id: e.eventId, section_id: e.sectionId, user_id: e.userId, qty: e.qty, position: e.position, event_owner: e.eventOwner
  })))
  const changes = writes.flatMap(w => w.effects.waitlist.changes.map(c => ({ id: c.id, from_status: c.from, to_status: c.to, booking_id: c.bookingId ?? null })))
  return JSON.stringify({ inserts, changes })
}

/** Whether any write of the batch touches a waiting list (its waiting count moves only with an entry joined or moved). */
export const writesWaitlist = (writes: readonly SectionWrite[]): boolean =>
  writes.some(w => w.effects.waitlist.inserts.length > 0 || w.effects.waitlist.changes.length > 0)

export async function waitEntriesById (db: SqlClient, ids: readonly string[], signal?: AbortSignal): Promise<StoredEntry[]> {
  if (ids.length === 0) return []
  const { rows: [row] } = await db.query<{ entries: EntryRow[] | null }>(`SELECT ${entriesJson('WHERE id = ANY($1::text[])')} AS entries`, [ids], signal)
  return (row.entries ?? []).map(toEntry)
}

/** An event's entries by section and position, after a place in that order, of one user if given. */
export async function listWaitEntries (db: SqlClient, query: {
  eventId: string, sectionId?: string, userId?: string, after?: { sectionId: string, position: number }, limit: number
}, signal?: AbortSignal): Promise<StoredEntry[]> {
  const params: unknown[] = [query.eventId, query.limit]
  const where = ['event_id = $1']
  if (query.sectionId !== undefined) where.push(`section_id = $${params.push(query.sectionId)}`)
  if (query.userId !== undefined) where.push(`user_id = $${params.push(query.userId)}`)
  if (query.after !== undefined) {
    params.push(query.after.sectionId, query.after.position)
    where.push(`(section_id, position) > ($${params.length - 1}::text, $${params.length}::int)`)
  }
  const { rows: [row] } = await db.query<{ entries: EntryRow[] | null }>(
    `SELECT ${entriesJson(`WHERE ${where.join(' AND ')} ORDER BY section_id, position LIMIT $2`)} AS entries`, params, signal)
  return (row.entries ?? []).map(toEntry)
}
