import fp from 'fastify-plugin'
import pg from 'pg'

declare module 'fastify' {
  interface FastifyInstance {
    /** the PostgreSQL pool, when the PostgreSQL store is selected */
    pg?: pg.Pool
  }
}

/** One pg Pool for the PostgreSQL store, ended on close. */
export default fp(async (fastify) => {
  const { STORE, DATABASE_URL, PG_POOL_SIZE } = fastify.config
  if (STORE !== 'postgres') return
  const pool = new pg.Pool({
    connectionString: DATABASE_URL,
    max: PG_POOL_SIZE,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000
  })
  // an idle client losing its server must not crash the process; the next query reports it
  pool.on('error', (err) => fastify.log.warn({ err: err.message }, 'postgres idle client error'))
  fastify.decorate('pg', pool)
  fastify.addHook('onClose', async () => { await pool.end() })
}, { name: 'postgres', dependencies: ['config'] })
