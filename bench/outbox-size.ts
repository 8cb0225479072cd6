/**
 * What the outbox costs in bytes: books BOOKINGS bookings (qty 1, batches of
 * 100, as the hot scenario's batches) through the store on a fresh embedded
 * store and, when PostgreSQL answers, a fresh PostgreSQL database; then
 * compares the changes table (rows, index, TOAST) with the bookings table
 * per booking. A batch's bookings are one row of the changes table (their ids
 * and statuses packed), so the figure is per change, its row's share included.
 * Prints one line per store; progress on stderr.
 *
 *   npx tsx bench/outbox-size.ts [bookings]      (default 20,000)
 */
import { rmSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { GuardedClient, pgClient } from '../lib/store/sql/pg-client.ts'
import { pgliteClient } from '../lib/store/sql/pglite-client.ts'
import type { SqlClient } from '../lib/store/sql/client.ts'
import { createSqlStore } from '../lib/store/sql/sql-store.ts'
import type { StoreKind } from '../lib/store/store.ts'
import { createPgDatabase, newTempDir } from '../test/helpers/databases.ts'
import { missing } from '../test/helpers/services.ts'

const BOOKINGS = Number(process.argv[2] ?? 20_000)
const BATCH = 100

async function measure (kind: StoreKind, client: SqlClient): Promise<string> {
  const store = createSqlStore(client, { kind })
  await store.init()
  const event = await store.createEvent({ name: 'Outbox size', sections: [{ name: 'GA', price: 10, capacity: BOOKINGS }] }, 'organizer')
  const ids = { eventId: event._id, sectionId: event.sections[0]._id }
  for (let done = 0; done < BOOKINGS; done += BATCH) {
    const ops = Array.from({ length: Math.min(BATCH, BOOKINGS - done) }, (_, i) => ({ kind: 'book' as const, request: { ...ids, qty: 1, userId: `user-${done + i}` } }))
    await store.sectionsBatch([{ ...ids, ops }])
    if (done % 5000 === 0) process.stderr.write(`${kind}: ${done} of ${BOOKINGS} booked\n`)
  }
  await client.query('VACUUM ANALYZE changes, bookings')
  const { rows: [row] } = await client.query<{ rows: number, changes: number, bookings: number, changes_bytes: number, bookings_bytes: number }>(
    `SELECT (SELECT count(*) FROM changes)::int AS rows,
       (SELECT coalesce(sum(length(statuses)), 0) + count(*) FILTER (WHERE statuses IS NULL) FROM changes)::int AS changes,
       (SELECT count(*) FROM bookings)::int AS bookings,
       pg_total_relation_size('changes')::float8 AS changes_bytes, pg_total_relation_size('bookings')::float8 AS bookings_bytes`)
  const perChange = row.changes_bytes / row.changes
  const perBooking = row.bookings_bytes / row.bookings
  return `${kind}: ${row.changes} changes in ${row.rows} rows for ${row.bookings} bookings; ${perChange.toFixed(1)} B per change on disk (table + index), ` +
    `a booking ${Math.round(perBooking)} B (table + 5 indexes): the outbox adds ${(100 * perChange / perBooking).toFixed(1)}% to what a booking stores`
}

const lines: string[] = []
const dir = newTempDir('outbox-size-')
const lite = await PGlite.create(dir)
try {
  lines.push(await measure('embedded', pgliteClient(lite)))
} finally {
  await lite.close()
  rmSync(dir, { recursive: true, force: true })
}
if (await missing('postgres') === undefined) {
  const db = await createPgDatabase('outbox_size')
  const pool = new pg.Pool({ connectionString: db.url, Client: GuardedClient, max: 2 })
  try {
    lines.push(await measure('postgres', pgClient(pool)))
  } finally {
    await pool.end()
    await db.drop()
  }
} else {
  lines.push('postgres: skipped (not answering on 127.0.0.1:5432)')
}
console.log(lines.join('\n'))
