/**
 * A database made by the previous schema is brought up to date by init: its
 * bookings lose the foreign key to sections (a query per inserted booking)
 * and the (event, user) index (a user's index range serves it), and the
 * idempotency key's unique constraint becomes a unique index over the keys
 * that are set; a key is still stored once. Events from before the lifecycle
 * are published, with no sale window, and on sale. Embedded (PGlite) and PostgreSQL.
 */
import t from 'tap'
import { createSqlStore } from '../../lib/store/sql/sql-store.ts'
import { sectionBatch } from '../helpers/section-batch.ts'
import { SQL_ADAPTERS } from '../helpers/sql-adapters.ts'

/** The constraints and indexes of the bookings table, by name. */
const SHAPE_SQL = `SELECT conname AS name, contype::text AS kind FROM pg_constraint WHERE conrelid = 'bookings'::regclass
  UNION ALL SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'bookings'`

for (const adapter of SQL_ADAPTERS) {
  if (adapter.skip !== undefined) console.log(`# SKIPPED schema migration on ${adapter.name}: ${adapter.skip}`)
  t.test(`schema migration: ${adapter.name}`, { skip: adapter.skip }, async t => {
    const { client, kind, close } = await adapter.open(t)
    t.teardown(close)
    const store = createSqlStore(client, { kind })
    await store.init()
    // the bookings table as the previous schema made it
    await client.query('DROP INDEX bookings_idempotency_key')
    await client.query('ALTER TABLE bookings ADD CONSTRAINT bookings_section_id_fkey FOREIGN KEY (section_id) REFERENCES sections (id)')
    await client.query('ALTER TABLE bookings ADD CONSTRAINT bookings_idempotency_key_key UNIQUE (idempotency_key)')
    await client.query('CREATE INDEX bookings_event_user ON bookings (event_id, user_id, created_at DESC, id DESC)')
    const shape = async (): Promise<Map<string, string>> =>
      new Map((await client.query<{ name: string, kind: string }>(SHAPE_SQL)).rows.map(r => [r.name, r.kind]))
    const before = await shape()
    t.equal(before.get('bookings_section_id_fkey'), 'f', 'the old foreign key is there to begin with')
    t.ok(before.has('bookings_event_user'), 'and the old (event, user) index')

    await store.init()
    const after = await shape()
    t.notOk(after.has('bookings_section_id_fkey'), 'no foreign key to sections')
    t.notOk(after.has('bookings_idempotency_key_key'), 'no unique constraint over every row')
    t.notOk(after.has('bookings_event_user'), 'no (event, user) index')
    t.match(after.get('bookings_idempotency_key'), /UNIQUE INDEX.*\(idempotency_key\) WHERE \(idempotency_key IS NOT NULL\)/)

    const event = await store.createEvent({ name: 'Migrated', sections: [{ name: 'S', price: 10, capacity: 5 }] }, 'organizer-1')
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const book = { kind: 'book', request: { ...ids, qty: 1, userId: 'u1', idempotencyKey: 'key-1' } } as const
    const [first] = (await sectionBatch(store, ids.eventId, ids.sectionId, [book])).results
    const [again] = (await sectionBatch(store, ids.eventId, ids.sectionId, [book])).results
    t.equal(first.kind, 'confirmed')
    t.match(again, { kind: 'replayed', booking: { _id: first.kind === 'confirmed' ? first.booking._id : '' } }, 'the key is replayed, not stored twice')
    const copy = client.query(`INSERT INTO bookings (id, event_id, section_id, user_id, qty, unit_price, amount, status, idempotency_key, created_at)
      VALUES ('copy', $1, $2, 'u2', 1, 10, 10, 'confirmed', 'key-1', now())`, [event._id, event.sections[0]._id])
    await t.rejects(copy, { code: '23505' }, 'a second row with the key is refused by the database')
    const keyless = `INSERT INTO bookings (id, event_id, section_id, user_id, qty, unit_price, amount, status, created_at)
      VALUES ($1, $2, $3, 'u3', 1, 10, 10, 'confirmed', now())`
    await client.query(keyless, ['no-key-1', event._id, event.sections[0]._id])
    await client.query(keyless, ['no-key-2', event._id, event.sections[0]._id])
    t.pass('rows without a key are many')
  })
}

for (const adapter of SQL_ADAPTERS) {
  t.test(`events from before the lifecycle: ${adapter.name}`, { skip: adapter.skip }, async t => {
    const { client, kind, close } = await adapter.open(t)
    t.teardown(close)
    const store = createSqlStore(client, { kind })
    await store.init()
    // the events table as it was before events had a status, details and a sale window, with one event in it
    for (const column of ['status', 'description', 'venue', 'starts_at', 'ends_at', 'sales_start', 'sales_end']) {
      await client.query(`ALTER TABLE events DROP COLUMN ${column}`)
    }
    await client.query("INSERT INTO events (id, name, created_at, owner_id) VALUES ('aaaaaaaaaaaaaaaaaaaaaaaa', 'Old', now(), 'organizer-1')")
    await client.query(`INSERT INTO sections (id, event_id, position, name, price, capacity, remaining)
      VALUES ('bbbbbbbbbbbbbbbbbbbbbbbb', 'aaaaaaaaaaaaaaaaaaaaaaaa', 0, 'S', 10, 5, 5)`)

    await store.init()
    const event = await store.getEvent('aaaaaaaaaaaaaaaaaaaaaaaa')
    t.match(event, { name: 'Old', status: 'published', owner: 'organizer-1' }, 'published, as every event was')
    t.notOk(event !== null && 'salesStart' in event, 'no sale window')
    const request = { eventId: 'aaaaaaaaaaaaaaaaaaaaaaaa', sectionId: 'bbbbbbbbbbbbbbbbbbbbbbbb', qty: 1, userId: 'u1' }
    const [booked] = (await sectionBatch(store, request.eventId, request.sectionId, [{ kind: 'book', request }])).results
    t.equal(booked.kind, 'confirmed', 'on sale as before')
  })
}
