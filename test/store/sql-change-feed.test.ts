/**
 * The SQL stores' outbox, where SQL can be made to misbehave on purpose:
 * - a record is part of its change's own statement, so a write that fails
 *   after its record was written (a deferred trigger refusing at commit)
 *   leaves neither the change nor the record;
 * - transactions that take their records' numbers in one order and commit in
 *   another (held open on a second connection) never make a reader that
 *   follows nextCursor skip a record or see one twice (PostgreSQL: PGlite
 *   runs one transaction at a time, so nothing interleaves there).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t from 'tap'
import { createSqlStore } from '../../lib/store/sql/sql-store.ts'
import type { Store } from '../../lib/store/store.ts'
import { createTestDatabase } from '../helpers/databases.ts'
import { sectionBatch } from '../helpers/section-batch.ts'
import { SQL_ADAPTERS } from '../helpers/sql-adapters.ts'
import { missing } from '../helpers/services.ts'
import { GuardedClient, pgClient } from '../../lib/store/sql/pg-client.ts'
import { readFeed } from './contract-changes.ts'

async function newSection (store: Store, capacity = 10) {
  const event = await store.createEvent({ name: 'Outbox', sections: [{ name: 'GA', price: 5, capacity }] }, 'organizer-1')
  return { eventId: event._id, sectionId: event.sections[0]._id }
}

for (const adapter of SQL_ADAPTERS) {
  t.test(`a write failing after its record leaves neither: ${adapter.name}`, { skip: adapter.skip }, async t => {
    const { client, kind, close } = await adapter.open(t)
    t.teardown(close)
    const store = createSqlStore(client, { kind })
    await store.init()
    const ids = await newSection(store)
    // refused at commit, once every row of the statement (the record's too) was written
    await client.query(`CREATE OR REPLACE FUNCTION refuse_marked_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.event_id = '${ids.eventId}' AND NEW.bookings IS NOT NULL THEN RAISE EXCEPTION 'refused after the record was written'; END IF;
        RETURN NEW;
      END $$`)
    await client.query(`CREATE CONSTRAINT TRIGGER changes_refuse_marked AFTER INSERT ON changes DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION refuse_marked_change()`)
    const { cursor } = await readFeed(store)
    await t.rejects(sectionBatch(store, ids.eventId, ids.sectionId, [{ kind: 'book', request: { ...ids, qty: 3, userId: 'u1' } }]), /refused after the record/)
    t.same((await readFeed(store, cursor)).items, [], 'no record')
    t.match((await store.getEvent(ids.eventId))?.sections[0], { remaining: 10, sold: 0 }, 'no seats taken')
    t.equal((await store.listBookings({ eventId: ids.eventId, page: 1, limit: 10 })).total, 0, 'no booking')
    await client.query('DROP TRIGGER changes_refuse_marked ON changes')
    const { results: [booked] } = await sectionBatch(store, ids.eventId, ids.sectionId, [{ kind: 'book', request: { ...ids, qty: 3, userId: 'u1' } }])
    t.equal(booked.kind, 'confirmed')
    t.same((await readFeed(store, cursor)).items.map(c => c.type), ['booking.confirmed'], 'the same write, allowed: both')
  })
}

t.test('records committed out of their numbers\' order are never passed over (PostgreSQL)', { skip: await missing('postgres') }, async t => {
  const url = await createTestDatabase(t)
  const pool = new pg.Pool({ connectionString: url, Client: GuardedClient, max: 12 })
  pool.on('error', () => {})
  t.teardown(async () => { await pool.end() })
  const store = createSqlStore(pgClient(pool), { kind: 'postgres' })
  await store.init()
  const ids = await newSection(store, 1000)
  const { cursor: start } = await readFeed(store)

  // one transaction numbers its record first and stays open while a booking's statement numbers and commits a later one
  const early = await pool.connect()
  await early.query('BEGIN')
  const { rows: [{ id: earlyId }] } = await early.query("INSERT INTO changes (type, event_id, data) VALUES ('event.updated', $1, '{}') RETURNING id::int8 AS id", [ids.eventId])
  await sectionBatch(store, ids.eventId, ids.sectionId, [{ kind: 'book', request: { ...ids, qty: 1, userId: 'late-number' } }])
  const { rows: committed } = await pool.query('SELECT id::int8 AS id FROM changes WHERE event_id = $1 AND id > $2', [ids.eventId, earlyId])
  t.equal(committed.length, 1, 'a higher number is committed while a lower one is not: the interleaving happened')
  const meanwhile = await readFeed(store, start)
  t.notOk(meanwhile.items.some(c => c.type === 'booking.confirmed'), 'the later number is held back while the earlier is uncommitted')
  await early.query('COMMIT')
  early.release()
  const after = await readFeed(store, meanwhile.cursor)
  t.same(after.items.filter(c => c.eventId === ids.eventId).map(c => c.type), ['event.updated', 'booking.confirmed'], 'both, in number order, once')

  // many writers, each holding its record uncommitted for a while, and a reader following its cursor all along
  const seen: string[] = []
  let cursor = after.cursor
  let writing = true
  const reader = (async () => {
    for (;;) {
      const done = !writing
      const page = await store.listChanges({ after: cursor, limit: 13 })
      seen.push(...page.items.map(c => c.id))
      cursor = page.nextCursor
      if (done && page.items.length === 0) return
      if (page.items.length === 0) await sleep(2)
    }
  })()
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; i < 25; i++) {
      if ((i + w) % 3 === 0) {
        await sectionBatch(store, ids.eventId, ids.sectionId, [{ kind: 'book', request: { ...ids, qty: 1, userId: `w${w}-${i}` } }])
        continue
      }
      const conn = await pool.connect()
      try {
        await conn.query('BEGIN')
        await conn.query("INSERT INTO changes (type, event_id, data) VALUES ('event.updated', $1, '{}')", [ids.eventId])
        await sleep(Math.floor(Math.random() * 15))
        await conn.query(Math.random() < 0.1 ? 'ROLLBACK' : 'COMMIT')
      } finally { conn.release() }
    }
  })
  await Promise.all(writers)
  writing = false
  await reader
  // a batch's bookings row holds one change per booking
  const { rows: all } = await pool.query(`SELECT 'chg_' || c.id || coalesce('_' || e.n, '') AS id
    FROM changes c LEFT JOIN LATERAL generate_series(1, length(c.statuses)) AS e(n) ON true WHERE c.id > $1`, [earlyId])
  const expected = all.map((r: { id: string }) => r.id).filter((id: string) => !after.items.some(c => c.id === id))
  t.equal(new Set(seen).size, seen.length, 'no record seen twice')
  t.same([...seen].sort(), [...expected].sort(), 'every committed record seen, none rolled back')
  t.ok(expected.length > 150, `${expected.length} records written by interleaved transactions`)
})
