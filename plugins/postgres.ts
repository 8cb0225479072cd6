import fp from 'fastify-plugin'
import pg from 'pg'
import { GuardedClient, pgClient } from '../lib/store/sql/pg-client.ts'
import { createSqlStore } from '../lib/store/sql/sql-store.ts'
import type { StoreObserver } from '../lib/store/store-errors.ts'

/** The PostgreSQL store: one pg Pool on DATABASE_URL, ended on shutdown. */
export default fp<{ observer: StoreObserver }>(async (fastify, { observer }) => {
  const { DATABASE_URL, PG_POOL_SIZE } = fastify.config
  if (DATABASE_URL === undefined) throw new Error('STORE=postgres needs DATABASE_URL (e.g. postgres://postgres@localhost:5432/postgres)')
  const pool = new pg.Pool({
    connectionString: DATABASE_URL,
    Client: GuardedClient,
    max: PG_POOL_SIZE,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000
  })
  // an idle client losing its server must not crash the process; the next query reports it
  pool.on('error', (err) => fastify.log.warn({ err: err.message }, 'postgres idle client error'))
  fastify.addHook('onClose', async () => { await pool.end() })
  fastify.decorate('store', createSqlStore(pgClient(pool), { kind: 'postgres', observer }))
}, { name: 'postgres', dependencies: ['config'] })
