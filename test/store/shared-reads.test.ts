/**
 * Bookings and events read by id at the same moment share one query
 * (lib/store/shared-reads.ts): a crowd of confirms each reading its booking,
 * or of buyers reading an event's availability, costs one statement per turn
 * of the event loop, not one per request. A real embedded store; its client
 * counts the statements that read bookings, or events, by id.
 */
import { PGlite } from '@electric-sql/pglite'
import t from 'tap'
import { IDS_PER_READ } from '../../lib/store/shared-reads.ts'
import { pgliteClient } from '../../lib/store/sql/pglite-client.ts'
import type { SqlClient } from '../../lib/store/sql/client.ts'
import { createSqlStore } from '../../lib/store/sql/sql-store.ts'
import type { TestContext } from '../helpers/context.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { sectionBatch } from '../helpers/section-batch.ts'

const BOOKINGS_BY_IDS = 'WHERE id = ANY('
const EVENTS_BY_IDS = 'e.id = ANY('

/** A real embedded store whose client counts the statements that contain `marker`. */
async function countingStore (t: TestContext, marker: string) {
  const db = await PGlite.create(await pgliteDataDir(t))
  t.teardown(async () => { await db.close() })
  const client = pgliteClient(db)
  const queries = { count: 0 }
  const counting: SqlClient = {
    ...client,
    query: async (text, params, signal) => {
      if (text.includes(marker)) queries.count++
      return await client.query(text, params, signal)
    }
  }
  const store = createSqlStore(counting, { kind: 'embedded' })
  await store.init()
  return { store, queries }
}

t.test('reads asked for together are one query, each answered with its own booking', async t => {
  const { store, queries } = await countingStore(t, BOOKINGS_BY_IDS)
  const event = await store.createEvent({ name: 'Reads', sections: [{ name: 'A', price: 1, capacity: 1000 }] }, 'organizer')
  const ids = { eventId: event._id, sectionId: event.sections[0]._id }
  const count = IDS_PER_READ + 20
  const { results } = await sectionBatch(store, ids.eventId, ids.sectionId,
    Array.from({ length: count }, (_, i) => ({ kind: 'book' as const, request: { ...ids, qty: 1, userId: `u${i}` } })))
  const bookingIds = results.map(r => r.kind === 'confirmed' ? r.booking._id : '')
  t.equal(bookingIds.filter(id => id !== '').length, count, 'all booked')

  queries.count = 0
  const few = await Promise.all(bookingIds.slice(0, 50).map(async id => await store.getBooking(id, Date.now() + 5000)))
  t.same(few.map(b => b?.userId), bookingIds.slice(0, 50).map((_, i) => `u${i}`), 'each its own booking')
  t.equal(queries.count, 1, '50 reads at once: one query')

  queries.count = 0
  const many = await Promise.all(bookingIds.map(async id => await store.getBooking(id)))
  t.equal(many.filter((b, i) => b?._id === bookingIds[i]).length, count, 'every read answered')
  t.equal(queries.count, 2, `${count} reads at once: ${IDS_PER_READ} per query`)

  queries.count = 0
  t.same(await store.getBooking(bookingIds[0]).then(b => b?.userId), 'u0')
  t.equal(await store.getBooking('0123456789abcdef01234567'), null, 'unknown: null')
  t.equal(queries.count, 2, 'reads one after the other: one query each')
})

t.test('reads of events asked for together are one query; reads of one event share its answer', async t => {
  const { store, queries } = await countingStore(t, EVENTS_BY_IDS)
  const made = await Promise.all(['One', 'Two', 'Three'].map(async name =>
    await store.createEvent({ name, sections: [{ name: 'A', price: 1, capacity: 10 }, { name: 'B', price: 2, capacity: 20 }] }, 'organizer')))

  queries.count = 0
  const crowd = await Promise.all(Array.from({ length: 60 }, async (_, i) => await store.getEvent(made[i % 3]._id, Date.now() + 5000)))
  t.same(crowd.map(e => e?.name), Array.from({ length: 60 }, (_, i) => made[i % 3].name), 'each read answered with its own event')
  t.same(crowd[0]?.sections.map(s => [s.name, s.remaining]), [['A', 10], ['B', 20]], 'with its sections, in order')
  t.equal(queries.count, 1, '60 reads of 3 events at once: one query')

  queries.count = 0
  await sectionBatch(store, made[0]._id, made[0].sections[0]._id, [{ kind: 'book', request: { eventId: made[0]._id, sectionId: made[0].sections[0]._id, qty: 3, userId: 'u' } }])
  t.equal((await store.getEvent(made[0]._id))?.sections[0].remaining, 7, 'a read after a booking sees it')
  t.equal(await store.getEvent('0123456789abcdef01234567'), null, 'unknown: null')
  t.equal(queries.count, 2, 'reads one after the other: one query each')
})
