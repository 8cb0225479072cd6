/**
 * PostgreSQL faults under a real server process and real load, on a throwaway
 * cluster (never the machine's shared server): sessions terminated
 * (pg_terminate_backend), the server stopped (-m immediate, -m fast) and
 * frozen (SIGSTOP). DESIGN.md, Faults: no crash, no 500, every request
 * answered within its deadline (a frozen server's requests all answered
 * while it is still frozen), recovery by itself, and the invariant holds.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t from 'tap'
import { isSqlUnavailable } from '../../lib/store/sql/client.ts'
import { GuardedClient, pgClient } from '../../lib/store/sql/pg-client.ts'
import { createEvent } from '../helpers/create-event.ts'
import { withSql } from '../helpers/databases.ts'
import { assertSurvived, figuresTable, underFault, type Answer, type FaultFigures, type FaultOptions } from '../helpers/fault-load.ts'
import { urlClient } from '../helpers/http-client.ts'
import { checkViaApi, checkViaSql } from '../helpers/invariant.ts'
import { pgClusterMissing, throwawayPgCluster, type PgCluster } from '../helpers/pg-cluster.ts'
import { startServer, type ServerProcess } from '../helpers/server-process.ts'
import { principals } from '../helpers/tokens.ts'
import type { Test } from 'tap'

const skip = pgClusterMissing()
if (skip !== undefined) console.log(`# SKIPPED PostgreSQL faults: ${skip}`)

const as = await principals()
const LOCK_WAIT_MS = 2000
const figures: FaultFigures[] = []
t.teardown(() => { if (figures.length > 0) console.log(`# PostgreSQL faults, LOCK_WAIT_MS=${LOCK_WAIT_MS}\n${figuresTable(figures).replace(/^/gm, '# ')}`) })

/** Every client backend of the cluster but the asking one. */
const CLIENT_BACKENDS = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"

t.test('a session terminated between two queries of a transaction: an error to the caller, not an uncaught error', { skip }, async t => {
  const cluster = await throwawayPgCluster(t)
  const pool = new pg.Pool({ connectionString: cluster.url, Client: GuardedClient, max: 2 })
  pool.on('error', () => {}) // idle clients: plugins/postgres.ts logs these
  t.teardown(async () => { await pool.end() })
  const client = pgClient(pool)
  const failure = await client.transaction(async tx => {
    const { rows: [{ pid }] } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    await cluster.admin('SELECT pg_terminate_backend($1)', [pid])
    // no query in flight: the session's end reaches the checked-out connection as an 'error' event
    await sleep(300)
    await tx.query('SELECT 1')
  }).then(() => undefined, (err: unknown) => err)
  t.ok(failure instanceof Error, 'the transaction fails')
  t.ok(isSqlUnavailable(failure), `as the database being out of reach (${(failure as Error).message})`)
  const { rows } = await client.transaction(async tx => await tx.query<{ one: number }>('SELECT 1 AS one'))
  t.same(rows, [{ one: 1 }], 'the pool serves a new session afterwards')
})

interface Setup { cluster: PgCluster, server: ServerProcess, client: ReturnType<typeof urlClient>, eventId: string, sectionId: string, /** every answer so far, for the invariant */ answers: Answer[] }

async function setup (t: Test, env: Record<string, string> = {}): Promise<Setup> {
  const cluster = await throwawayPgCluster(t)
  t.not(cluster.port, 5432, 'never the shared PostgreSQL')
  const server = await startServer({ STORE: 'postgres', DATABASE_URL: cluster.url, PG_POOL_SIZE: '4', LOCK_WAIT_MS: String(LOCK_WAIT_MS), ...env })
  t.teardown(async () => { await server.kill() })
  const client = urlClient(server.url, { headers: as.service, timeoutMs: 60_000 })
  const { eventId, sectionId } = await createEvent(urlClient(server.url, { headers: as.organizer }), [100_000], { name: 'PostgreSQL faults' })
  return { cluster, server, client, eventId, sectionId, answers: [] }
}

/** What every fault must leave: only 201, 409 and 503 answered, the process up, recovered, and the invariant. */
async function afterFault (t: Test, { cluster, server, client, eventId }: Setup, answers: Answer[], recoverMs: number | null): Promise<void> {
  const created = assertSurvived(t, server, answers, recoverMs, 'again once PostgreSQL is back')
  // a 503 at the deadline may follow a commit whose answer never came: stored or not
  const unknown = answers.filter(a => a.status === 503 || a.status === 0).length
  const viaApi = await checkViaApi(client, eventId, { expected: { created, unanswered: unknown } })
  t.same(viaApi.problems, [], `invariant via the API (${viaApi.storedBookings} stored, ${created} answered 201)`)
  const viaSql = await withSql(cluster.url, async sql => await checkViaSql(sql, eventId, { created, unanswered: unknown }))
  t.same(viaSql.problems, [], 'invariant in SQL')
}

async function faultRun (t: Test, s: Setup, options: Omit<FaultOptions, 'client' | 'target'>, refusedDuring: boolean): Promise<void> {
  const run = await underFault({ ...options, client: s.client, target: { eventId: s.eventId, sectionId: s.sectionId } })
  figures.push(run.figures)
  t.comment(figuresTable([run.figures]))
  if (refusedDuring) {
    t.equal(run.unansweredBeforeClear, 0, 'every request sent during the fault was answered while it lasted')
    t.same(run.burst.filter(a => a.status !== 503), [], 'each of them with 503')
  }
  s.answers.push(...run.load, ...run.burst, ...run.recovery)
  await afterFault(t, s, s.answers, run.figures.recoverMs)
}

t.test('pg_terminate_backend on the sessions of running bookings', { skip }, async t => {
  const s = await setup(t)
  await faultRun(t, s, {
    fault: 'pg_terminate_backend x20',
    duringApply: true,
    apply: async () => {
      for (let i = 0; i < 20; i++) {
        await s.cluster.admin(CLIENT_BACKENDS)
        await sleep(50)
      }
    },
    clear: async () => {}
  }, false)
})

for (const mode of ['immediate', 'fast'] as const) {
  t.test(`pg_ctl stop -m ${mode} under load, then start`, { skip }, async t => {
    const s = await setup(t)
    await faultRun(t, s, {
      fault: `pg_ctl stop -m ${mode}`,
      apply: async () => { await s.cluster.stop(mode) },
      clear: async () => { await s.cluster.start() }
    }, true)
  })
}

t.test('PostgreSQL frozen (SIGSTOP): every request answered 503 while it is frozen, queued ones too', { skip }, async t => {
  // small batches: the burst queues behind a stalled batch of its section
  const s = await setup(t, { BATCH_MAX: '4' })
  const start = Date.now()
  const made = await s.client.request<{ _id: string }>('POST', '/bookings', { eventId: s.eventId, sectionId: s.sectionId, qty: 1, userId: 'before-freeze' })
  t.equal(made.status, 201)
  s.answers.push({ status: made.status, start, end: Date.now() })
  const bookingId = made.body.data?._id ?? ''
  await faultRun(t, s, {
    fault: 'PostgreSQL SIGSTOP',
    apply: async () => { await s.cluster.freeze() },
    whileFaulty: async () => {
      const read = await s.client.request('GET', `/api/events/${s.eventId}`)
      t.equal(read.status, 503, 'a read answers 503 while frozen')
      // bookings read by id share a query: it too ends by the requests' deadline
      const reads = await Promise.all([bookingId, '0123456789abcdef01234567'].map(async id => await s.client.request('GET', `/api/bookings/${id}`)))
      t.same(reads.map(r => r.status), [503, 503], 'reads of bookings by id answer 503 while frozen')
    },
    clear: async () => { s.cluster.thaw() }
  }, true)
})
