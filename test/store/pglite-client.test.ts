/**
 * The embedded store's client (lib/store/sql/pglite-client.ts) on a real PGlite:
 * statements with parameters are prepared once and reused, a transaction has
 * the one session to itself, and a failed one leaves nothing and the session
 * usable.
 */
import { PGlite } from '@electric-sql/pglite'
import t from 'tap'
import { pgliteClient } from '../../lib/store/sql/pglite-client.ts'
import { createSqlStore } from '../../lib/store/sql/sql-store.ts'
import type { TestContext } from '../helpers/context.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { sectionBatch } from '../helpers/section-batch.ts'

async function open (t: TestContext) {
  const db = await PGlite.create(await pgliteDataDir(t))
  t.teardown(async () => { await db.close() })
  return { db, client: pgliteClient(db) }
}

const preparedCount = async (client: ReturnType<typeof pgliteClient>): Promise<number> =>
  (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_prepared_statements')).rows[0].n

t.test('a statement with parameters is prepared once, then reused', async t => {
  const { client } = await open(t)
  const store = createSqlStore(client, { kind: 'embedded' })
  await store.init()
  const event = await store.createEvent({ name: 'Prepared', sections: [{ name: 'A', price: 1, capacity: 100 }] }, 'organizer')
  const ids = { eventId: event._id, sectionId: event.sections[0]._id }
  const book = async (userId: string) => await sectionBatch(store, ids.eventId, ids.sectionId, [{ kind: 'book', request: { ...ids, qty: 1, userId } }])
  await book('u1')
  const afterOne = await preparedCount(client)
  t.ok(afterOne > 0, `the batch's statements are prepared (${afterOne})`)
  await book('u2')
  await book('u3')
  t.equal(await preparedCount(client), afterOne, 'two more batches of the same statements prepare nothing new')
  const { rows } = await client.query<{ remaining: number }>('SELECT remaining FROM sections WHERE id = $1', [ids.sectionId])
  t.equal(rows[0].remaining, 97, 'and they did their work')
})

t.test('a transaction has the session to itself: a statement sent meanwhile runs after its commit', async t => {
  const { client } = await open(t)
  await client.query('CREATE TABLE items (n int)')
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  let inside!: () => void
  const begun = new Promise<void>(resolve => { inside = resolve })
  const tx = client.transaction(async q => {
    await q.query('INSERT INTO items VALUES ($1)', [1])
    inside()
    await held
    await q.query('INSERT INTO items VALUES ($1)', [2])
    return 'committed'
  })
  await begun
  const counted = client.query<{ n: number }>('SELECT count(*)::int AS n FROM items')
  let countedEarly = false
  void counted.then(() => { countedEarly = true })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(countedEarly, false, 'the statement waits while the transaction is open')
  release()
  t.equal(await tx, 'committed')
  t.equal((await counted).rows[0].n, 2, 'it saw the whole transaction, committed')
})

t.test('a failed transaction leaves nothing, and the session goes on', async t => {
  const { client } = await open(t)
  await client.query('CREATE TABLE items (n int)')
  await t.rejects(client.transaction(async q => {
    await q.query('INSERT INTO items VALUES ($1)', [1])
    await q.query('INSERT INTO no_such_table VALUES ($1)', [2])
  }), { code: '42P01' }, 'the error that ended it')
  t.equal((await client.query<{ n: number }>('SELECT count(*)::int AS n FROM items')).rows[0].n, 0, 'rolled back')
  t.equal(await client.transaction(async q => { await q.query('INSERT INTO items VALUES ($1)', [3]); return 'ok' }), 'ok', 'the next transaction runs')
  t.equal((await client.query<{ n: number }>('SELECT count(*)::int AS n FROM items')).rows[0].n, 1)
})
