/** pg's clients as the pool gets them: an `error` with nobody else listening must not end the process. */
import t from 'tap'
import pg from 'pg'
import { GuardedClient } from '../../lib/store/sql/pg-client.ts'

t.test('an error emitted on a client nobody listens to is heard', async t => {
  const dropped = new Error('terminating connection due to administrator command')
  t.throws(() => new pg.Client().emit('error', dropped), /terminating connection/, 'a plain pg Client would throw it to the process')
  t.doesNotThrow(() => new GuardedClient().emit('error', dropped), 'a GuardedClient hears it')
})
