/** pg's clients as the pool gets them: an `error` with nobody else listening must not end the process. */
import t from 'tap'
import pg from 'pg'
import { PGlite } from '@electric-sql/pglite'
import { GuardedClient, arrayLiteral, preparedStatements } from '../../lib/store/sql/pg-client.ts'
import { pgliteClient } from '../../lib/store/sql/pglite-client.ts'
import { PG_ADMIN_URL } from '../helpers/databases.ts'

t.test('an error emitted on a client nobody listens to is heard', async t => {
  const dropped = new Error('terminating connection due to administrator command')
  t.throws(() => new pg.Client().emit('error', dropped), /terminating connection/, 'a plain pg Client would throw it to the process')
  t.doesNotThrow(() => new GuardedClient().emit('error', dropped), 'a GuardedClient hears it')
})

t.test('array parameters written as literals read back as the arrays given, on PGlite and PostgreSQL', async t => {
  const texts = ['plain', '', 'with "quotes"', 'back\\slash', '\\"', 'a,b', '{braces}', ' spaced ', 'NULL', 'ünïcødé', null, '\'single\'']
  const numbers = [0, -3, 150.25, 1e6, null]
  const flags = [true, false, null]
  const at = new Date('2026-12-08T01:02:03.456Z')
  const check = async (name: string, query: (text: string, params: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>): Promise<void> => {
    const { rows: [row] } = await query('SELECT $1::text[] AS texts, $2::float8[] AS numbers, $3::int[] AS ints, $4::boolean[] AS flags, $5::timestamptz[] AS times, cardinality($6::text[]) AS empty',
      [texts, numbers, [1, 2, null], flags, [at, null], []])
    t.same(row.texts, texts, `${name}: text[]`)
    t.same(row.numbers, numbers, `${name}: float8[]`)
    t.same(row.ints, [1, 2, null], `${name}: int[]`)
    t.same(row.flags, flags, `${name}: boolean[]`)
    t.same((row.times as Array<Date | null>).map(d => d?.toISOString() ?? null), [at.toISOString(), null], `${name}: timestamptz[]`)
    t.equal(row.empty, 0, `${name}: an empty array`)
  }
  const db = new PGlite()
  t.teardown(async () => await db.close())
  await check('PGlite', pgliteClient(db).query)
  const pool = new pg.Pool({ connectionString: PG_ADMIN_URL, max: 1 })
  t.teardown(async () => await pool.end())
  await check('PostgreSQL', preparedStatements()(pool).query)
})

t.test('an array of anything else is left to pg', async t => {
  const objects = [{ a: 1 }]
  t.equal(arrayLiteral(objects), objects)
  t.equal(arrayLiteral(['a', 'b"c', 'd\\e', 7, null]), '{"a","b\\"c","d\\\\e","7",NULL}')
})
